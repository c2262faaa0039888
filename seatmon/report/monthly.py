"""The monthly report: one self-contained HTML page (inline CSS and SVG, no
script, nothing fetched) with a summary, the charts and the three reports.
Also renders any single report as a page (`--format html`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from html import escape

from collector.influx import InfluxV1
from seatmon.report import agents as agents_mod
from seatmon.report import answers as answers_mod
from seatmon.report import oldschema
from seatmon.report import render, svg
from seatmon.report import safety as safety_mod
from seatmon.report import staffing as staffing_mod
from seatmon.report import units as units_mod
from seatmon.pseudonym import identity
from seatmon.report.query import Scope

CSS = """
body{font-family:sans-serif;margin:24px auto;max-width:820px;color:#1a202c}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #cbd5e0}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{padding:2px 6px;border-bottom:1px solid #e2e8f0;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.total td{font-weight:bold;border-top:2px solid #4a5568}
.summary{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}
.summary div{background:#edf2f7;padding:8px;border-radius:4px}
.summary b{display:block;font-size:20px}
figure{margin:12px 0}figcaption{font-size:13px;color:#4a5568;margin-bottom:4px}
.note{font-size:12px;color:#4a5568;margin:2px 0}
.warn{font-size:13px;color:#9b2c2c;font-weight:bold}
"""

WORST_SEATS = 25


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _sec(v) -> str:
    return "-" if v is None else f"{v / 1000:.1f} s"


def html_table(rows: list[dict], columns, tz=None, total: dict | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for _k, h, _kind in columns)
    out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for r in rows + ([total] if total is not None else []):
        cls = ' class="total"' if r is total else ""
        # The group (first column) is never cut: a page has the room the terminal lacks.
        first = f"<td>{escape(str(r.get(columns[0][0])))}</td>"
        out.append(f"<tr{cls}>{first}" + "".join(f"<td>{escape(render.cell(r.get(k), kind, tz))}</td>"
                                                 for k, _h, kind in columns[1:]) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def _answers_table(rep) -> str:
    """Counts, rates and times; then abandonment and the house rules."""
    d = rep.as_dict()
    cols = render.ANSWER_COUNTS + render.ANSWER_TIMES[1:]
    return (html_table(render.times_rows(d["groups"]), cols, total=render.times_rows([d["total"]])[0])
            + html_table(d["groups"], render.ANSWER_RULES, total=d["total"]))


def _notes(lines: list[str]) -> str:
    return "".join(f'<p class="{"warn" if n.startswith("WARNING") else "note"}">{escape(n)}</p>' for n in lines)


STAFFING_LEGEND = [("needed and staffed", "#2b6cb0"), ("staffed beyond the need", "#a0aec0"),
                   ("needed, not staffed", "#c53030")]


def staffing_chart(rep, name: str = "staffing") -> str:
    """Per row: the seats needed that were staffed, the staffed seats beyond
    the need, the seats needed but not staffed (stacked)."""
    items = []
    for g in rep.groups:
        staffed, needed = g.seats_staffed, g.seats_needed or 0
        short = g.shortfall or 0.0
        covered = min(staffed, needed)
        if rep.by == "interval":  # whole hours as "07", others as "07:30", so the labels fit
            label = g.group[11:13] if g.group[14:16] == "00" else g.group[11:16]
        else:
            label = g.group[5:] if rep.by == "day" else g.group[8:]  # "10-25"; "24/night" of 2026-10-24/night
        head = f"{g.group}: {g.offered} calls, {staffed:.1f} seats staffed, {needed} needed"
        items.append((label, [(covered, STAFFING_LEGEND[0][1], head),
                              (max(staffed - needed, 0.0), STAFFING_LEGEND[1][1], head),
                              (short, STAFFING_LEGEND[2][1], f"{head}, {short:.1f} short")]))
    return svg.stacked(name, f"seats staffed and needed per {rep.by}", items, legend=STAFFING_LEGEND)


def staffing_tables(rep) -> str:
    d = rep.as_dict()
    return (html_table(d["groups"], render.STAFFING_LOAD, total=d["total"])
            + html_table(d["groups"], render.STAFFING_SEATS, total=d["total"]) + _notes(render.staffing_notes(rep)))


def single_page(report) -> str:
    """Any one report as an HTML page (`--format html`)."""
    scope = report.scope
    if isinstance(report, answers_mod.AnswersReport):
        title = f"Answers by {report.by}, {scope.describe()}"
        table = _answers_table(report) + _notes(render.answers_notes(report))
    elif isinstance(report, staffing_mod.StaffingReport):
        title = f"Busy, idle and staffing by {report.by}, {scope.describe()}"
        table = (f'<figure><figcaption>{escape("Seats staffed and needed (Erlang C) per " + report.by)}'
                 f"</figcaption>{staffing_chart(report)}</figure>" + staffing_tables(report))
    elif isinstance(report, safety_mod.SafetyReport):
        d = report.as_dict()
        title = f"Shift-end safety by {report.by}, {scope.describe()}"
        table = html_table(d["groups"], render.SAFETY, total=d["total"]) + _notes(render.SAFETY_LEGEND.split("\n"))
    else:
        title = f"Units, {scope.describe()}"
        table = html_table(report.as_dict()["units"], render.UNITS, tz=scope.zone)
    return page(title, [f"<h1>{escape(title)}</h1>", zone_paragraph(scope), table])


def zone_paragraph(scope: Scope) -> str:
    """The range and the zone of a page; a warning when the zone is only the UTC fallback."""
    return f'<p class="{"note" if scope.zone_known else "warn"}">{escape(scope.describe())}; ' \
           f"{escape(scope.zone_note())}.</p>"


def charts(by_day, by_seat, by_hour, dist, safety_day, scope: Scope) -> dict[str, str]:
    """The five charts of the monthly page, as SVG text (pure)."""
    out = {}
    out["rate-per-day"] = svg.bars(
        "rate-per-day", "answer timeliness rate per day",
        [(g.group[8:], g.timeliness_rate, f"{g.group}: {_pct(g.timeliness_rate)} of {g.calls} calls")
         for g in by_day.groups], y_max=1.0, y_format=lambda v: f"{v * 100:.0f}%",
        colour=svg.rate_colour)
    labels = [f"{lo // 1000}-{hi // 1000}" if hi is not None else f"{lo // 1000}+" for lo, hi, _n in dist]
    out["answer-times"] = svg.bars(
        "answer-times", "answered calls per answer time (seconds)",
        [(lab, n, f"{lab} s: {n} calls") for lab, (_lo, _hi, n) in zip(labels, dist)])
    ranked = sorted((g for g in by_seat.groups if g.calls), key=lambda g: (g.timeliness_rate, g.group))
    out["seat-ranking"] = svg.hbars(
        "seat-ranking", "per-seat timeliness rate, worst first",
        [(g.group, g.timeliness_rate, f"{g.group}: {_pct(g.timeliness_rate)} of {g.calls} calls")
         for g in ranked[:WORST_SEATS]], colour=svg.rate_colour)
    days = [g.group for g in by_day.groups]
    # The hour repeated when DST ends is two groups in one cell: add up both
    # hours' calls and calls in time, and take the rate over the sum.
    sums: dict[tuple[int, int], list[int]] = {}
    for g in by_hour.groups:
        local = datetime.fromtimestamp(g.sort_key / 1000, scope.zone)
        day = local.date().isoformat()
        if day in days:
            acc = sums.setdefault((days.index(day), local.hour), [0, 0])
            acc[0] += g.calls
            acc[1] += g.answered_in_time
    cells = {}
    for (i, hour), (calls, in_time) in sums.items():
        rate = in_time / calls if calls else None
        cells[(i, hour)] = (calls, f"{days[i]} {hour:02d}h: {calls} calls, rate {_pct(rate)}")
    out["hour-heatmap"] = svg.heatmap("hour-heatmap", "calls per local hour of day", days,
                                      [f"{h:02d}" for h in range(24)], cells)
    colours = [("off in time", "#2f855a"), ("postponed, off", "#68d391"), ("handover", "#90cdf4"),
               ("logged on", "#718096"), ("reminded", "#d69e2e"), ("cut", "#c53030"),
               ("sensor unreadable", "#9f7aea")]
    items = []
    for r in safety_day.groups:
        values = (r.off_in_time, r.postponed, r.handovers, r.logged, r.reminded, r.cut, r.sensor_unreadable)
        what = ("off in time", "found off after granted overtime", "handovers to the next shift",
                "left on, logged", "left on, reminded", "left on, cut", "power sensor unreadable")
        items.append((r.group[8:], [(v, c, f"{r.group}: {v} {w}") for v, (_n, c), w in zip(values, colours, what)]))
    out["shift-end"] = svg.stacked("shift-end", "shift ends per day by outcome", items, legend=colours)
    return out


def monthly(db: InfluxV1, scope: Scope, conv: answers_mod.Conventions = answers_mod.Conventions(),
            target: staffing_mod.Target = staffing_mod.Target(), shown=identity) -> str | None:
    """The month's page, or None when the month has no calls. `shown` maps
    the agent table's ids to what the page shows (pseudonym.Shown)."""
    with ThreadPoolExecutor(max_workers=5) as pool:
        # The other reports run alongside the answers: InfluxDB answers
        # statements on its own threads while this process groups rows.
        # Safety by seat and by day: one read, grouped twice.
        others = [pool.submit(safety_mod.read, db, scope), pool.submit(units_mod.units, db, scope),
                  pool.submit(staffing_mod.staffing, db, scope, "day", 60, target)]
        if answers_mod.has_old_schema(db):  # data not yet migrated: the previous statements
            oldschema.note("monthly")
            by_day, by_seat, by_hour, by_shift = (answers_mod.legacy_answers(db, scope, by, conv)
                                                  for by in ("day", "seat", "hour", "shift"))
            by_agent = None  # per-agent figures need migrated data
            dist = answers_mod.legacy_distribution(db, scope)
        else:
            # Days, seats, shifts and the answer-time distribution from one pull
            # of the day roll-ups; the hour grid (calls and calls in time only:
            # the charts use nothing else of it) from the 15-minute ones.
            hours = pool.submit(answers_mod.hour_grid, db, scope, conv)
            # The agent table when the month has a roster: agents.py attributes the
            # rows all four groupings read; the roster is read beside them.
            tl = pool.submit(agents_mod.timeline, db, scope) if agents_mod.has_roster(db, scope) else None
            bys = ("day", "seat", "shift") + (("agent",) if tl else ())
            pulled = answers_mod.pull(db, scope, bys, conv, hist=True, timeline=tl)
            by_hour = hours.result()
            by_day, by_seat, by_shift = (pulled.reports[by] for by in ("day", "seat", "shift"))
            by_agent = pulled.reports.get("agent")
            for g in by_agent.groups if by_agent else ():
                g.group = shown(g.group)
            dist = answers_mod.bins_from_hist(pulled.hist)
        if by_day.empty:
            for f in others:
                f.cancel()
            return None
        safety_rows, units, staffing_day = (f.result() for f in others)
        safety_seat, safety_day = (safety_mod.build(safety_rows, scope, by) for by in ("seat", "day"))
    return render_monthly(scope, by_day, by_seat, by_hour, by_shift, dist, safety_seat, safety_day, units,
                          staffing_day, by_agent)


# The agent table: counts and rates per agent, the site's row last.
AGENT_COLUMNS = [("group", "agent", "text")] + render.ANSWER_COUNTS[1:] + [("asa_ms", "ASA s", "ms")]


def agent_table(rep) -> str:
    d = rep.as_dict()
    return html_table(d["groups"], AGENT_COLUMNS, total={**d["total"], "group": "site"})


def render_monthly(scope, by_day, by_seat, by_hour, by_shift, dist, safety_seat, safety_day, units,
                   staffing_day=None, by_agent=None) -> str:
    t = by_day.total
    month = scope.first.strftime("%B %Y")
    site = f", site {scope.site}" if scope.site else ""
    ch = charts(by_day, by_seat, by_hour, dist, safety_day, scope)
    worst = sorted((g for g in by_seat.groups if g.calls), key=lambda g: (g.timeliness_rate, g.group))[:3]
    st = safety_seat.total
    summary = [
        ("answer timeliness rate", _pct(t.timeliness_rate)),
        (f"service level (abandons {t.treatment})", _pct(t.service_level)),
        ("calls", f"{t.calls:,}"), ("ASA / p90", f"{_sec(t.asa_ms)} / {_sec(t.p90_ms)}"
                                   + (f" ±{t.percentile_resolution_ms / 1000:g} s" if t.percentile_resolution_ms else "")),
        ("answered late", f"{t.answered_late:,}"), ("missed / abandoned in limit", f"{t.missed:,} / {t.abandoned:,}"),
        ("caller abandoned, all", f"{t.caller_abandoned:,}"),
        ("short / long abandons", f"{t.abandoned_short:,} / {t.abandoned_long:,}"),
        ("abandon rate / ATA", f"{_pct(t.abandon_rate)} / {_sec(t.avg_abandon_ms)}"),
        ("agent hung up first", "no input" if t.hung_up_first is None else
         f"{t.hung_up_first:,} of {t.hangup_known:,}"),
        ("unsynced clock", f"{t.unsynced:,} calls"),
        ("past the limit: time / rings / both", f"{t.exceeded_time:,} / {t.exceeded_rings:,} / {t.exceeded_both:,}"),
        ("left on / shift ends", f"{st.left_on:,} / {st.shift_ends:,}"),
        ("off % / handovers", f"{_pct(st.compliance)} / {st.handovers:,}"),
        ("units offline now", f"{len(units.offline)} of {len(units.units)}"),
    ]
    body = [f"<h1>seatmon monthly report: {escape(month)}{escape(site)}</h1>",
            zone_paragraph(scope),
            '<div class="summary">' + "".join(f"<div>{escape(k)}<b>{escape(v)}</b></div>" for k, v in summary)
            + "</div>",
            "<p>" + escape(f"{t.calls:,} calls rang; {_pct(t.timeliness_rate)} were answered within the limit. "
                           "Lowest seats: " + ", ".join(f"{g.group} ({_pct(g.timeliness_rate)})" for g in worst)
                           + ".") + "</p>",
            ]
    if t.unsynced:
        body.append(f'<p class="warn">{t.unsynced:,} of {t.calls:,} calls were stamped without a synchronised '
                    "clock: their day, hour and shift are uncertain.</p>")
    if by_seat.no_disconnect_input:
        body.append('<p class="note">' + escape("Who hung up first is unknown where the disconnect input is not "
                                                 "installed (no data): " + ", ".join(by_seat.no_disconnect_input))
                    + ".</p>")
    body.append("<h2>Charts</h2>")
    captions = {"rate-per-day": "Answer timeliness rate per day (green at or above 90 %, amber from 80 %)",
                "answer-times": "Answer-time distribution of answered calls (seconds from first ring)",
                "seat-ranking": f"Per-seat timeliness rate, the {WORST_SEATS} lowest",
                "hour-heatmap": "Calls per local hour (darker = busier); hover for the rate",
                "shift-end": "Shift-end compliance per day"}
    for key, caption in captions.items():
        body.append(f'<figure><figcaption>{escape(caption)}</figcaption>{ch[key]}</figure>')
    if staffing_day is not None:
        body.append('<figure><figcaption>Seats staffed (average) and needed at the busiest hour (Erlang C) '
                    f"per day</figcaption>{staffing_chart(staffing_day)}</figure>")
    body += ["<h2>Answers by day</h2>", _answers_table(by_day),
             "<h2>Answers by shift</h2>", _answers_table(by_shift),
             "<h2>Answers by seat</h2>", _answers_table(by_seat), _notes(render.answers_notes(by_seat))]
    if by_agent is not None:
        body += ["<h2>Answers by agent</h2>", agent_table(by_agent),
                 _notes(["A call counts for the agent the roster puts at its seat at its first ring; "
                         f"{agents_mod.UNASSIGNED}: calls at a seat nobody was assigned to. site = every call."])]
    if staffing_day is not None:
        body += ["<h2>Busy, idle and staffing by day</h2>", staffing_tables(staffing_day)]
    sd = safety_seat.as_dict()
    body += ["<h2>Shift-end safety by seat, worst first</h2>",
             html_table(sd["groups"], render.SAFETY, total=sd["total"]), _notes(render.SAFETY_LEGEND.split("\n"))]
    body += ["<h2>Units</h2>",
             "<p>" + escape("Firmware: " + ", ".join(f"{fw} on {n}" for fw, n in units.firmware.items())) + "</p>",
             html_table(units.as_dict()["units"], render.UNITS, tz=scope.zone)]
    return page(f"seatmon {month}", body)
