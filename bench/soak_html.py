"""The soak's HTML page: the fault timeline, delivery lag per simulated hour,
events per minute, heap per board and the accounting table. Inline SVG, no
external assets."""

from __future__ import annotations

import html


def _polyline(points: list[tuple[float, float]], x_max: float, y_max: float, w: int, h: int, colour: str) -> str:
    if not points or x_max <= 0 or y_max <= 0:
        return ""
    pts = " ".join(f"{30 + x / x_max * (w - 40):.1f},{h - 20 - y / y_max * (h - 30):.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>'


def _chart(title: str, lines: dict[str, list[tuple[float, float]]], x_label: str, w: int = 900, h: int = 220) -> str:
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    xs = [x for pts in lines.values() for x, _ in pts] or [1]
    ys = [y for pts in lines.values() for _, y in pts] or [1]
    x_max, y_max = max(xs) or 1, max(ys) or 1
    body = [_polyline(pts, x_max, y_max, w, h, colours[i % len(colours)]) for i, pts in enumerate(lines.values())]
    legend = " ".join(f'<tspan fill="{colours[i % len(colours)]}">{html.escape(k)}</tspan>'
                      for i, k in enumerate(lines))
    return (f'<h2>{html.escape(title)}</h2><svg role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
            f'<line x1="30" y1="{h - 20}" x2="{w - 10}" y2="{h - 20}" stroke="#999"/>'
            f'<text x="30" y="12" font-size="11">max {y_max:g}  {legend}</text>'
            f'<text x="{w - 10}" y="{h - 5}" font-size="11" text-anchor="end">{html.escape(x_label)} (max {x_max:g})</text>'
            + "".join(body) + "</svg>")


def _timeline(faults: list[dict], end_s: float, w: int = 900) -> str:
    kinds = sorted({f["kind"] for f in faults})
    h = 20 * len(kinds) + 30
    end_s = max([end_s] + [f["end_s"] or 0 for f in faults]) or 1
    body = []
    for row, kind in enumerate(kinds):
        y = 10 + row * 20
        body.append(f'<text x="0" y="{y + 12}" font-size="11">{html.escape(kind)}</text>')
        for f in faults:
            if f["kind"] != kind:
                continue
            x0 = 220 + f["start_s"] / end_s * (w - 230)
            x1 = 220 + (f["end_s"] if f["end_s"] is not None else end_s) / end_s * (w - 230)
            title = html.escape(f"{kind} {f['target']} {f['start_s']}-{f['end_s']} s {f['note']}")
            body.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(2.0, x1 - x0):.1f}" height="14" fill="#d62728">'
                        f"<title>{title}</title></rect>")
    return (f'<h2>Faults (real seconds from the start, {end_s:.0f} s)</h2>'
            f'<svg role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}">' + "".join(body) + "</svg>")


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(result: dict) -> str:
    samples = result["series"]["samples"]
    per_min = []
    for a, b in zip(samples, samples[1:]):
        if b["t"] > a["t"] and b["events"] >= a["events"]:
            per_min.append((b["t"], (b["events"] - a["events"]) / (b["t"] - a["t"]) * 60))
    lag = result["lag"]
    heap = {u: [(t / 1000, v / 1024) for t, v in pts] for u, pts in result["series"]["heap"].items()}
    if heap:
        t0 = min(p[0] for pts in heap.values() for p in pts if pts) if any(heap.values()) else 0
        heap = {u: [(t - t0, v) for t, v in pts] for u, pts in heap.items()}
    status = "passed" if result["ok"] else "FAILED"
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in result["failures"][:200])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>seatmon soak</title><style>"
            "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style></head><body>"
            f"<h1>seatmon soak: {status}</h1><p>{html.escape(str(result['config']))}; wall {result['wall_s']} s</p>"
            + (f"<ul>{failures}</ul>" if failures else "")
            + _timeline(result["faults"], samples[-1]["t"] if samples else 1)
            + _chart("Delivery lag, first ring to queryable, per simulated hour of the ring (simulated s)",
                     {"p50": [(r["hour"], r["p50_sim_s"]) for r in lag], "p99": [(r["hour"], r["p99_sim_s"]) for r in lag]},
                     "simulated hour")
            + _chart("Events stored per real minute (all collectors)", {"events/min": per_min}, "real s")
            + _chart("Free heap per board (KiB, from its heartbeats)", heap, "real s")
            + "<h2>Accounting</h2>" + _table(result["accounting"])
            + "<h2>Reports against the ground truth</h2>"
            + _table([dict(name=k, **v) for k, v in result["reports"].items()])
            + ("<h2>Boards (made on the pins = stored)</h2>" + _table(result["boards"]["table"]) if result["boards"] else "")
            + "<h2>Delivery lag per hour</h2>" + _table(lag)
            + "<h2>Fault timeline</h2>" + _table(result["faults"])
            + "</body></html>")
