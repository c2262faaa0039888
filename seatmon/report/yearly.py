"""The annual assessment table (`seatmon report yearly --year YYYY`): per
agent and local month, the answer timeliness rate and the calls, and the
year's; the site's row and `(unassigned)` too. Read from the roll-ups and
attributed as every per-agent figure is (seatmon/report/agents.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import cast

from collector import rollup as ru
from collector.influx import InfluxV1
from seatmon.report import agents as agents_mod
from seatmon.report import answers as answers_mod
from seatmon.report import render
from seatmon.report.query import ReportError, Scope, check_seats, parse_zone, tag_literal

MONTHS = tuple(range(1, 13))
FIELDS = ("calls", "timely")
SELECT = "calls, timely, answer_max, first_ms, last_ms, shift"


def year_scope(text: str, tz: str, site=None, seats=()) -> Scope:
    try:
        year = int(text)
        first, last = date(year, 1, 1), date(year, 12, 31)
    except (TypeError, ValueError):
        raise ReportError(f"--year {text!r} is not a year (expected YYYY, e.g. 2026)")
    return Scope(first, last, parse_zone(tz), site, tuple(seats))


@dataclass
class Row:
    group: str
    calls: dict[int, int] = field(default_factory=dict)  # month -> calls
    in_time: dict[int, int] = field(default_factory=dict)

    def rate(self, month: int | None = None) -> float | None:
        calls = self.calls.get(month, 0) if month else sum(self.calls.values())
        timely = self.in_time.get(month, 0) if month else sum(self.in_time.values())
        return timely / calls if calls else None

    def as_dict(self) -> dict:
        out: dict[str, object] = {"group": self.group}
        for m in MONTHS:
            out[f"calls_{m:02d}"] = self.calls.get(m, 0)
            out[f"in_time_{m:02d}"] = self.in_time.get(m, 0)
            out[f"rate_{m:02d}"] = self.rate(m)
        out.update(calls=sum(self.calls.values()), in_time=sum(self.in_time.values()), rate=self.rate())
        return out


@dataclass
class YearlyReport:
    scope: Scope
    groups: list[Row]
    total: Row  # the site's row: every agent and (unassigned)

    @property
    def empty(self) -> bool:
        return not sum(self.total.calls.values())

    def as_dict(self) -> dict:
        return {"report": "yearly", "year": self.scope.first.year, "tz": self.scope.tz, "site": self.scope.site,
                "seats": list(self.scope.seats), "agent": self.scope.agent,
                "groups": [g.as_dict() for g in self.groups], "total": self.total.as_dict()}

    def html(self) -> str:
        from seatmon.report import monthly
        title = f"Annual assessment {self.scope.first.year}: answer timeliness per agent and month"
        head = "".join(f"<th>{escape(h)}</th>" for h in ["agent", *MONTH_NAMES, "year", "calls"])
        out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
        for r in self.groups + [self.total]:
            cls = ' class="total"' if r is self.total else ""
            cells = [f"<td title=\"{escape(f'{r.calls.get(m, 0):,} calls')}\">"
                     f"{escape(render.cell(r.rate(m), 'rate'))}<br>{r.calls.get(m, 0):,}</td>" for m in MONTHS]
            out.append(f"<tr{cls}><td>{escape(r.group)}</td>{''.join(cells)}"
                       f"<td>{escape(render.cell(r.rate(), 'rate'))}</td><td>{sum(r.calls.values()):,}</td></tr>")
        out.append("</tbody></table>")
        note = ("Each cell: the answer timeliness rate (calls answered within the limit / calls) and the calls "
                "of the month. A call counts for the agent the roster puts at its seat at its first ring; "
                "site = every call.")
        return monthly.page(f"seatmon yearly {self.scope.first.year}",
                            [f"<h1>{escape(title)}</h1>", monthly.zone_paragraph(self.scope), "".join(out),
                             f'<p class="note">{escape(note)}</p>'])


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TEXT_COLUMNS = ([("group", "agent", "text")] + [(f"rate_{m:02d}", MONTH_NAMES[m - 1], "rate0") for m in MONTHS]
                + [("rate", "year", "rate"), ("calls", "calls", "int")])
CSV_COLUMNS = ([("group", "agent", "text")]
               + [(f"{k}_{m:02d}", f"{k}_{m:02d}", kind) for m in MONTHS
                  for k, kind in (("calls", "int"), ("in_time", "int"), ("rate", "rate"))]
               + [("calls", "calls", "int"), ("in_time", "in_time", "int"), ("rate", "rate", "rate")])


def text(report: YearlyReport) -> str:
    d = report.as_dict()
    total = {**d["total"], "group": "site"}
    head = (f"Answer timeliness per agent and month, {report.scope.first.year} ({report.scope.tz})"
            + (f", site {report.scope.site}" if report.scope.site else ""))
    return "\n".join([head, "", render.text_table(d["groups"], TEXT_COLUMNS, total=total), "",
                      "month: calls answered within the limit / calls (whole percent); year: the same over the "
                      "year; calls: the year's"]) + "\n"


def csv_text(report: YearlyReport) -> str:
    d = report.as_dict()
    return render.csv_text(d["groups"], CSV_COLUMNS, total={**d["total"], "group": "site"})


class _MonthGrouper(answers_mod.Grouper):
    """(agent, local month) of a roll-up row (answers._rollup_groups' grouper)."""

    def __init__(self, scope: Scope):
        super().__init__("agent", scope)
        self._months: dict[int, int] = {}

    def __call__(self, site, seat, label, t_ms, agent=None):
        month = self._months.get(t_ms)
        if month is None:
            month = self._months[t_ms] = datetime.fromtimestamp(t_ms / 1000, self.zone).month
        assert month is not None
        agent = agent or agents_mod.UNASSIGNED
        return ((agent == agents_mod.UNASSIGNED, agent), month), agent


def yearly(db: InfluxV1, scope: Scope) -> YearlyReport:
    check_seats(db, scope)
    tl = agents_mod.timeline(db, scope)
    agents_mod.check_agent(scope, tl)
    read = agents_mod.narrowed(scope, tl)
    day_tz = scope.tz if answers_mod.day_rollups_in(db, scope) else None
    with ThreadPoolExecutor(answers_mod.WORKERS) as pool:
        if day_tz:
            futures = answers_mod._select(db, pool, read, SELECT, ru.MEASUREMENT_DAY, f"tz = {tag_literal(scope.tz)}")
        else:
            futures = answers_mod._select(db, pool, read, SELECT, ru.MEASUREMENT_15M)
        series = answers_mod._gather(futures)
    series = agents_mod.split_rollups(db, series, tl, day_tz, scope.agent)
    groups = answers_mod._rollup_groups(series, _MonthGrouper(scope), FIELDS)
    rows: dict[tuple, Row] = {}
    total = Row("site")
    for key, acc in groups.items():
        order, month = cast("tuple[tuple[bool, str], int]", key)  # the grouper's (agent order, month)
        f = answers_mod._figures(acc, key, "ignored", FIELDS)
        row = rows.setdefault(order, Row(acc.label))
        for r in (row, total):
            r.calls[month] = r.calls.get(month, 0) + f.calls
            r.in_time[month] = r.in_time.get(month, 0) + f.answered_in_time
    return YearlyReport(scope, [rows[k] for k in sorted(rows)], total)
