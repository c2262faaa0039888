"""The reports on the web: the pickers' values (the query string) checked
into the same Scope, conventions and target the `seatmon report` command
builds, then the very functions the command calls for its figures and its
HTML, CSV and JSON. Nothing here computes a figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

from seatmon.report import answers as answers_mod
from seatmon.report import monthly as monthly_mod
from seatmon.report import periods, render
from seatmon.report import safety as safety_mod
from seatmon.report import staffing as staffing_mod
from seatmon.report import units as units_mod
from seatmon.pseudonym import Shown
from seatmon.report.query import ReportError, Scope, make_scope, month_scope
from shared import protocol

RANGES = ("day", "week", "month", "custom")
FORMATS = ("html", "csv", "json")
MAX_DAYS = 366  # a page is read while someone waits: the command line takes longer ranges
# The groupings that name agents: personal data, so each such view or download goes to the audit log
# (app.report_view), as the command's runs do; only heads and the site's leaders reach the reports.
NAMES_PEOPLE = ("agent",)

# report -> its "group by" choices (None: no grouping)
GROUPS = {"answers": answers_mod.BY_CHOICES, "staffing": staffing_mod.BY_CHOICES,
          "safety": safety_mod.BY_CHOICES, "units": None, "daily": None, "weekly": None, "monthly": None}
DEFAULT_BY = {"answers": "seat", "staffing": "interval", "safety": "seat"}
BODY_RE = re.compile(r"<style>(.*?)</style></head><body>(.*)</body></html>", re.S)


@dataclass(frozen=True)
class Choice:
    """What the pickers chose, checked."""

    kind: str
    site: str
    range: str
    day: str
    week: str
    month: str
    first: str
    last: str
    by: str | None
    seats: tuple[str, ...]
    treatment: str
    interval: int
    fmt: str

    def query(self, **changes) -> dict[str, str]:
        """The query string of this choice (with changes), for links and downloads."""
        c = replace(self, **{k: v for k, v in changes.items() if k not in ("format",)})
        q = {"site": c.site, "range": c.range, "day": c.day, "week": c.week, "month": c.month, "from": c.first,
             "to": c.last, "seat": ",".join(c.seats), "treatment": c.treatment}
        if c.by:
            q["by"] = c.by
        if c.kind == "staffing":
            q["interval"] = str(c.interval)
        if "format" in changes:
            q["format"] = changes["format"]
        return q


def _one_of(value: str, allowed, name: str) -> str:
    if value not in allowed:
        raise ReportError(f"{name} {value!r} is not one of {', '.join(map(str, allowed))}")
    return value


def parse(kind: str, params, site: str, today: date) -> Choice:
    """The query string of a report view, checked; ReportError names what is wrong.
    The defaults are the command's: today for a range, yesterday for the
    daily page, last week for the weekly, last month for the monthly."""
    if kind not in GROUPS:
        raise ReportError(f"no report {kind!r}")
    get = params.get
    fmt = _one_of(get("format") or "html", FORMATS, "format")
    rng = {"daily": "day", "weekly": "week", "monthly": "month"}.get(kind) or _one_of(get("range") or "day", RANGES,
                                                                                     "range")
    default_day = today - timedelta(days=1) if kind == "daily" else today
    last_month = today.replace(day=1) - timedelta(days=1)
    by = None
    if GROUPS[kind]:
        by = _one_of(get("by") or DEFAULT_BY[kind], GROUPS[kind], "group")
    seats = tuple(s.strip() for s in (get("seat") or "").split(",") if s.strip())
    for s in seats:
        if not protocol._is_id(s):
            raise ReportError(f"seat {s!r} is not an id (1-{protocol.ID_MAX} of A-Z a-z 0-9 - _ .)")
    interval = get("interval") or "30"
    if interval not in tuple(map(str, staffing_mod.INTERVALS)):
        raise ReportError(f"interval {interval!r} is not one of {', '.join(map(str, staffing_mod.INTERVALS))} "
                          "(minutes)")
    return Choice(kind, site, rng, get("day") or default_day.isoformat(),
                  get("week") or periods.iso_week(today - timedelta(days=7 if kind == "weekly" else 0)),
                  get("month") or (last_month if kind == "monthly" else today).strftime("%Y-%m"),
                  get("from") or today.isoformat(), get("to") or get("from") or today.isoformat(), by, seats,
                  _one_of(get("treatment") or "ignored", answers_mod.TREATMENTS, "abandon treatment"),
                  int(interval), fmt)


def scope_of(c: Choice, tz: str, zone_known: bool) -> Scope:
    """The Scope the command builds for the same dates, zone, site and seats."""
    if c.range == "day":
        scope = periods.day_scope(c.day, tz, c.site, c.seats)
    elif c.range == "week":
        scope = periods.week_scope(c.week, tz, c.site, c.seats)
    elif c.range == "month":
        scope = month_scope(c.month, tz, c.site, c.seats)
    else:
        scope = make_scope(c.first, c.last, tz, c.site, c.seats)
    if (scope.last - scope.first).days >= MAX_DAYS:
        raise ReportError(f"{scope.first} to {scope.last} is longer than {MAX_DAYS} days: pick a shorter range "
                          "(or use `seatmon report` for longer ones)")
    return replace(scope, zone_known=zone_known)


@dataclass
class Output:
    """One report, in the format asked for; `text` None: nothing in the range."""

    text: str | None
    media_type: str
    empty_note: str = ""
    agents_named: int = 0  # agents the output names outside a grouping by agent (the monthly page's table)


MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "json": "application/json"}


def produce(db, c: Choice, scope: Scope) -> Output:
    """The report `c` over `scope`, from the command's own functions."""
    conv = answers_mod.Conventions(answers_mod.SHORT_ABANDON_MS, c.treatment)
    target = staffing_mod.Target()
    media = MEDIA[c.fmt]
    if c.kind in periods.KINDS:
        if c.kind == "monthly" and c.fmt == "html":
            shown = Shown()  # the page's agent table, when the month has a roster
            page = monthly_mod.monthly(db, scope, conv, target, shown)
            return Output(page, media, f"no calls in {c.month} ({scope.tz})", agents_named=len(shown))
        period = periods.collect(db, c.kind, scope, conv, target, page=c.fmt != "csv")
        empty = f"no calls in {scope.describe()}"
        if period.empty:
            return Output(None, media, empty)
        if c.fmt == "csv":
            return Output(periods.period_csv(period), media)
        if c.fmt == "json":
            return Output(render.json_text(period_dict(period)), media)
        return Output(periods.period_page(period), media)
    if c.kind == "answers":
        report = answers_mod.answers(db, scope, c.by, conv)
        what, csv_fn = "calls", render.answers_csv
    elif c.kind == "staffing":
        report = staffing_mod.staffing(db, scope, c.by, c.interval, target)
        what, csv_fn = "calls or staffed seats", render.staffing_csv
    elif c.kind == "safety":
        report = safety_mod.safety(db, scope, c.by)
        what, csv_fn = "shift ends", render.safety_csv
    else:
        report = units_mod.units(db, scope)
        what, csv_fn = "unit data", render.units_csv
    if report.empty:
        return Output(None, media, f"no {what} from {scope.describe()} at site {scope.site}")
    if c.fmt == "csv":
        return Output(csv_fn(report), media)
    if c.fmt == "json":
        return Output(render.json_text(report.as_dict()), media)
    return Output(monthly_mod.single_page(report), media)


def period_dict(p: periods.Period) -> dict:
    """A period page's tables as one JSON document (each part is the
    command's JSON of that report)."""
    parts = {"answers": p.answers_main, "answers_by_seat": p.answers_seat, "staffing": p.staffing_main,
             "staffing_detail": p.staffing_intervals, "safety_by_seat": p.safety_seat}
    return {"report": p.kind, "period": p.name, **{k: v.as_dict() for k, v in parts.items() if v is not None}}


def split_page(page: str) -> tuple[str, str]:
    """(style, body) of a report page, to show it inside the site's own page."""
    m = BODY_RE.search(page)
    if not m:
        return "", page
    return m.group(1), m.group(2)
