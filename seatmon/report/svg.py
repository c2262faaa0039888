"""Charts as inline SVG text, drawn in Python.

Inline SVG keeps the monthly page one self-contained file: no script, no
chart library, no CDN, nothing fetched when it opens, and it prints and
zooms sharply. Every chart is an <svg class="chart"> with a <title> per
mark, so hovering a bar or cell shows its figure.
"""

from __future__ import annotations

import math
from html import escape

FONT = 'font-family="sans-serif" font-size="11"'
BLUE, RED, GREY = "#2b6cb0", "#c53030", "#a0aec0"


def _svg(name: str, width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg class="chart" data-chart="{escape(name)}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>")


def _text(x, y, s, anchor="start", extra="") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(str(s))}</text>'


def _rect(x, y, w, h, fill, title) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}">'
            f"<title>{escape(title)}</title></rect>")


def bars(name: str, label: str, items: list[tuple[str, float | None, str]], *, y_max: float | None = None,
         y_format=lambda v: f"{v:.0f}", width: int = 760, height: int = 240, colour=BLUE) -> str:
    """Vertical bars: items are (x label, value or None, hover text)."""
    left, bottom, top = 44, 36, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    values = [v for _l, v, _t in items if v is not None]
    y_max = y_max or (max(values) if values else 1) or 1
    body = [_text(4, top + 4, y_format(y_max)), _text(4, top + plot_h, y_format(0))]
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#444"/>')
    step = plot_w / max(len(items), 1)
    every = max(1, len(items) // 16)  # at most ~16 x labels
    for i, (lab, value, title) in enumerate(items):
        x = left + i * step
        if value is not None:
            h = plot_h * value / y_max
            body.append(_rect(x + step * 0.1, top + plot_h - h, step * 0.8, h,
                              colour(value) if callable(colour) else colour, title))
        if i % every == 0:
            body.append(_text(x + step / 2, height - bottom + 14, lab, "middle"))
    return _svg(name, width, height, body, label)


def hbars(name: str, label: str, items: list[tuple[str, float | None, str]], *, x_max: float = 1.0,
          x_format=lambda v: f"{v * 100:.0f}%", width: int = 760, row: int = 16, colour=BLUE) -> str:
    """Horizontal bars, one row per item (label, value, hover text)."""
    left, right = 90, 60
    plot_w = width - left - right
    height = row * len(items) + 8
    body = []
    for i, (lab, value, title) in enumerate(items):
        y = 4 + i * row
        body.append(_text(left - 6, y + row * 0.75, lab, "end"))
        if value is not None:
            body.append(_rect(left, y + 2, plot_w * value / x_max, row - 4,
                              colour(value) if callable(colour) else colour, title))
            body.append(_text(left + plot_w * value / x_max + 4, y + row * 0.75, x_format(value)))
    return _svg(name, width, height, body, label)


def heatmap(name: str, label: str, rows: list[str], cols: list[str], cells: dict[tuple[int, int], tuple[float, str]],
            *, width: int = 760, cell_h: int = 14) -> str:
    """rows x cols grid; cells maps (row, col) -> (value, hover text); the
    colour runs from white (0) to dark blue (the largest value)."""
    left, top = 84, 18
    cell_w = (width - left - 8) / max(len(cols), 1)
    height = top + cell_h * len(rows) + 4
    peak = max((v for v, _t in cells.values()), default=0) or 1
    body = [_text(left + (j + 0.5) * cell_w, top - 6, c, "middle") for j, c in enumerate(cols)]
    for i, r in enumerate(rows):
        body.append(_text(left - 6, top + i * cell_h + cell_h * 0.8, r, "end"))
        for j in range(len(cols)):
            value, title = cells.get((i, j), (0, f"{r} {cols[j]}: no calls"))
            shade = int(255 - 200 * value / peak)
            fill = f"rgb({shade},{shade + (255 - shade) // 3},255)"
            body.append(_rect(left + j * cell_w, top + i * cell_h, cell_w - 1, cell_h - 1, fill, title))
    return _svg(name, width, height, body, label)


def stacked(name: str, label: str, items: list[tuple[str, list[tuple[float, str, str]]]], *,
            legend: list[tuple[str, str]], width: int = 760, height: int = 240) -> str:
    """Vertical stacked bars: items are (x label, [(value, colour, hover)])."""
    left, bottom, top = 44, 36, 24
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(v for v, _c, _t in parts) for _l, parts in items), default=0) or 1
    body = [_text(4, top + 4, f"{peak:.0f}"), _text(4, top + plot_h, "0")]
    x = left
    for name_, colour in legend:
        body.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>')
        body.append(_text(x + 14, 13, name_))
        x += 20 + 7 * len(name_)
    step = plot_w / max(len(items), 1)
    widest = max((len(lab) for lab, _p in items), default=1) * 7 + 6  # about 7 px a character
    every = max(1, len(items) // 16, math.ceil(widest / step))  # labels that would overlap are skipped
    for i, (lab, parts) in enumerate(items):
        base = top + plot_h
        for value, colour, title in parts:
            h = plot_h * value / peak
            body.append(_rect(left + i * step + step * 0.1, base - h, step * 0.8, h, colour, title))
            base -= h
        if i % every == 0:
            body.append(_text(left + i * step + step / 2, height - bottom + 14, lab, "middle"))
    return _svg(name, width, height, body, label)


GREEN, AMBER = "#2f855a", "#d69e2e"


def rate_colour(rate: float) -> str:
    """Green at or above 90 %, amber from 80 %, red below, judged on the rate
    as the pages print it (one decimal: 79.96 % reads 80.0 % and is amber)."""
    shown = float(f"{rate * 100:.1f}")
    return GREEN if shown >= 90 else AMBER if shown >= 80 else RED
