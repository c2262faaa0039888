"""The daily and weekly reports (regulation 002: the day-shift leader reports
each day's work daily and weekly), and the CSV that goes with each period
page (daily, weekly, monthly).

A page is self-contained HTML like the monthly one; its CSV is one table,
one row per shift (daily) or day (weekly, monthly) with the answer figures
and the busy/idle/staffing figures side by side, and a total row.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from collector.influx import InfluxV1
from seatmon.report import answers as answers_mod
from seatmon.report import monthly, render, svg
from seatmon.report import safety as safety_mod
from seatmon.report import staffing as staffing_mod
from seatmon.report.query import ReportError, Scope, parse_day, parse_zone

KINDS = ("daily", "weekly", "monthly")
WORKERS = 4
# Staffing columns in the period CSV: what answers does not already give.
STAFFING_EXTRA = [c for c in render.STAFFING_CSV if c[0] not in ("group", "offered", "answered", "outgoing")]


def day_scope(text: str, tz: str, site=None, seats=()) -> Scope:
    d = parse_day(text, "--day")
    return Scope(d, d, parse_zone(tz), site, tuple(seats))


def week_scope(text: str, tz: str, site=None, seats=()) -> Scope:
    """An ISO week, `YYYY-Www` (Monday to Sunday)."""
    try:
        year, week = text.split("-W")
        first = date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ReportError(f"--week {text!r} is not an ISO week (expected YYYY-Www, e.g. 2026-W43)")
    return Scope(first, first + timedelta(days=6), parse_zone(tz), site, tuple(seats))


def iso_week(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Period:
    """Everything one period page shows."""

    kind: str
    scope: Scope
    answers_main: answers_mod.AnswersReport  # by shift (daily) or day (weekly, monthly)
    # The rest is None for an empty period; the page's parts also for a CSV only.
    answers_seat: answers_mod.AnswersReport | None
    staffing_main: staffing_mod.StaffingReport | None  # by shift (daily) or day
    staffing_intervals: staffing_mod.StaffingReport | None  # hours (daily) or shifts (weekly)
    safety_seat: safety_mod.SafetyReport | None

    @property
    def empty(self) -> bool:
        return self.answers_main.empty

    @property
    def name(self) -> str:
        if self.kind == "daily":
            return self.scope.first.isoformat()
        if self.kind == "weekly":
            return iso_week(self.scope.first)
        return self.scope.first.strftime("%Y-%m")


def collect(db: InfluxV1, kind: str, scope: Scope, conv: answers_mod.Conventions = answers_mod.Conventions(),
            target: staffing_mod.Target = staffing_mod.Target(), page: bool = True) -> Period:
    """The figures of a period: for its CSV only (`page` False: the monthly
    page has its own) or for its page too. The reports' reads run side by
    side (InfluxDB answers queries in parallel; a few workers for 2 cores),
    and both staffing tables are built from one read."""
    main_by = "shift" if kind == "daily" else "day"
    interval = 60  # an hour's bars fit a day's chart; a week's chart is per shift
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        main_f = pool.submit(answers_mod.answers, db, scope, main_by, conv)
        staffing_f = pool.submit(staffing_mod.read, db, scope, interval, True)
        if page:
            seat_f = pool.submit(answers_mod.answers, db, scope, "seat", conv)
            safety_f = pool.submit(safety_mod.safety, db, scope, "seat")
        main, inputs = main_f.result(), staffing_f.result()
        if main.empty:
            return Period(kind, scope, main, None, None, None, None)
        staffing_main = staffing_mod.staffing(db, scope, main_by, interval, target, inputs=inputs)
        if not page:
            return Period(kind, scope, main, None, staffing_main, None, None)
        second = staffing_mod.staffing(db, scope, "interval" if kind == "daily" else "shift", interval, target,
                                       inputs=inputs)
        return Period(kind, scope, main, seat_f.result(), staffing_main, second, safety_f.result())


def period_csv(p: Period) -> str:
    """One row per shift or day: the answer figures, then busy, idle and
    staffing; a last row `total`."""
    assert p.staffing_main is not None, "an empty period has no CSV"
    a, s = p.answers_main.as_dict(), p.staffing_main.as_dict()
    staff = {g["group"]: g for g in s["groups"]}
    rows = []
    for g in a["groups"]:
        rows.append({**g, **{k: v for k, v in staff.pop(g["group"], {}).items() if k != "group"}})
    for label, g in staff.items():  # staffed, but no call rang
        rows.append({**{k: v for k, v in g.items() if k not in ("offered", "answered", "outgoing")},
                     "group": label, "calls": 0})
    total = {**a["total"], **{k: v for k, v in s["total"].items() if k != "group"}}
    key = (lambda r: r["group"]) if p.kind != "daily" else (lambda r: r.get("start_ms") or 0)
    rows.sort(key=key)
    return render.csv_text(rows, render.ANSWER_CSV + STAFFING_EXTRA, tz=p.scope.zone, total=total)


def period_page(p: Period) -> str:
    """The daily or weekly page: summary, charts, tables."""
    assert p.answers_seat and p.staffing_main and p.staffing_intervals and p.safety_seat, "collected for a page"
    scope, t = p.scope, p.answers_main.total
    st, sf = p.staffing_main.total, p.safety_seat.total
    what = {"daily": f"day {p.name}", "weekly": f"week {p.name} ({scope.first} to {scope.last})"}[p.kind]
    site = f", site {scope.site}" if scope.site else ""
    summary = [
        ("answer timeliness rate", monthly._pct(t.timeliness_rate)),
        (f"service level (abandons {t.treatment})", monthly._pct(t.service_level)),
        ("calls / outgoing", f"{t.calls:,} / {t.outgoing:,}"),
        ("ASA / p90", f"{monthly._sec(t.asa_ms)} / {monthly._sec(t.p90_ms)}"),
        ("answered late", f"{t.answered_late:,}"),
        ("caller abandoned / rate", f"{t.caller_abandoned:,} / {monthly._pct(t.abandon_rate)}"),
        ("agent hung up first", "no input" if t.hung_up_first is None else
         f"{t.hung_up_first:,} of {t.hangup_known:,}"),
        ("unsynced clock", f"{t.unsynced:,} calls"),
        ("past the limit: time / rings / both", f"{t.exceeded_time:,} / {t.exceeded_rings:,} / {t.exceeded_both:,}"),
        ("AHT / occupancy", f"{monthly._sec(st.aht_ms)} / {monthly._pct(st.occupancy)}"),
        ("busy / idle seat hours", f"{st.busy_ms / 3.6e6:,.1f} / {st.idle_ms / 3.6e6:,.1f}"),
        ("seats needed at the peak", f"{st.seats_needed if st.seats_needed is not None else '-'}"),
        ("left on / shift ends", f"{sf.left_on:,} / {sf.shift_ends:,}"),
    ]
    body = [f"<h1>seatmon {p.kind} report: {escape(what)}{escape(site)}</h1>",
            monthly.zone_paragraph(scope),
            '<div class="summary">' + "".join(f"<div>{escape(k)}<b>{escape(v)}</b></div>" for k, v in summary)
            + "</div>"]
    if t.unsynced:
        body.append(f'<p class="warn">{t.unsynced:,} of {t.calls:,} calls were stamped without a synchronised '
                    "clock: their day, hour and shift are uncertain.</p>")
    body.append("<h2>Charts</h2>")
    main = p.answers_main
    rate_items = [(g.group[5:] if p.kind != "daily" else g.group[8:], g.timeliness_rate,
                   f"{g.group}: {monthly._pct(g.timeliness_rate)} of {g.calls} calls") for g in main.groups]
    per = "shift" if p.kind == "daily" else "day"
    body.append(f'<figure><figcaption>Answer timeliness rate per {per}</figcaption>'
                + svg.bars("rate", f"answer timeliness rate per {per}", rate_items, y_max=1.0,
                           y_format=lambda v: f"{v * 100:.0f}%", colour=svg.rate_colour) + "</figure>")
    iv = p.staffing_intervals
    body.append(f"<figure><figcaption>{escape('Seats staffed and needed (Erlang C) per ' + iv.by)}</figcaption>"
                + monthly.staffing_chart(iv) + "</figure>")
    body += [f"<h2>Answers by {per}</h2>", monthly._answers_table(main),
             f"<h2>Busy, idle and staffing by {per}</h2>", monthly.staffing_tables(p.staffing_main)]
    if p.kind == "weekly":
        body += ["<h2>Busy, idle and staffing by shift</h2>", monthly.staffing_tables(iv)]
    body += ["<h2>Answers by seat</h2>", monthly._answers_table(p.answers_seat),
             monthly._notes(render.answers_notes(p.answers_seat))]
    sd = p.safety_seat.as_dict()
    body += ["<h2>Shift-end safety by seat, worst first</h2>",
             monthly.html_table(sd["groups"], render.SAFETY, total=sd["total"]),
             monthly._notes(render.SAFETY_LEGEND.split("\n"))]
    return monthly.page(f"seatmon {p.kind} {p.name}", body)
