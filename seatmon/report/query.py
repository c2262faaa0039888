"""What a report covers (dates, zone, site, seats) and how it asks InfluxDB.

Everything here builds InfluxQL text or reads the JSON InfluxDB answers; the
statements aggregate in the database (count/sum of the 0/1 flag fields,
median, percentile, max) so a report never pulls individual points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.influx import InfluxV1, tag_literal  # noqa: F401 (the reports import it from here)
from seatmon import options


class ReportError(Exception):
    """Bad input for a report (dates, zone, seat): one line for the user."""


@dataclass(frozen=True)
class Scope:
    first: date  # first local day, inclusive
    last: date  # last local day, inclusive
    tz: str
    site: str | None = None
    seats: tuple[str, ...] = field(default=())
    zone_known: bool = True  # False: no zone was given or announced, `tz` is the UTC fallback
    agent: str | None = None  # only this agent's calls and shift ends (seatmon/report/agents.py)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def start_ms(self) -> int:
        return int(datetime.combine(self.first, time(0), self.zone).timestamp() * 1000)

    @property
    def end_ms(self) -> int:  # exclusive: local midnight after the last day
        return int(datetime.combine(self.last + timedelta(days=1), time(0), self.zone).timestamp() * 1000)

    def describe(self) -> str:
        return f"{self.first} to {self.last} ({self.tz})" + (f", agent {self.agent}" if self.agent else "")

    def zone_note(self) -> str:
        """How a page names its zone: a warning when it is only the fallback."""
        if self.zone_known:
            return f"dates and hours in {self.tz}"
        return (f"dates and hours in {self.tz}: no time zone is known for these units (none announced one "
                "and no --tz was given); pass --tz Area/City for the site's days and hours")


def parse_zone(name: str, option: str = "--tz") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ReportError(f"{option}: unknown time zone {name!r}"
                          + (options.zone_hint(name) or " (expected an IANA name such as Europe/Berlin)"))
    return name


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ReportError(f"{option} {text!r} is not a date (expected YYYY-MM-DD)")


def make_scope(first: str, last: str, tz: str, site: str | None = None, seats=()) -> Scope:
    d1, d2 = parse_day(first, "--from"), parse_day(last, "--to")
    if d2 < d1:
        raise ReportError(f"bad date range: --from {d1} is after --to {d2}")
    if (d2 - d1).days > 3660:
        raise ReportError(f"bad date range: {d1} to {d2} spans more than ten years")
    return Scope(d1, d2, parse_zone(tz), site, tuple(seats))


def month_scope(month: str, tz: str, site: str | None = None, seats=()) -> Scope:
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ReportError(f"--month {month!r} is not a month (expected YYYY-MM)")
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return Scope(first, last, parse_zone(tz), site, tuple(seats))


def time_slices(start_ms: int, end_ms: int, n: int, step_ms: int) -> list[tuple[int, int]]:
    """[start, end) cut into at most n pieces on multiples of step_ms from
    start: the ranges a report reads side by side."""
    cut = max(step_ms, (end_ms - start_ms) // n // step_ms * step_ms)
    edges = list(range(start_ms, end_ms, cut))[:n] + [end_ms]
    return list(zip(edges, edges[1:]))


def where(scope: Scope, *, timed: bool = True, seats: bool = True) -> str:
    parts = [f"time >= {scope.start_ms}ms", f"time < {scope.end_ms}ms"] if timed else []
    if scope.site:
        parts.append(f"site = {tag_literal(scope.site)}")
    if seats and scope.seats:
        parts.append("(" + " OR ".join(f"seat = {tag_literal(s)}" for s in scope.seats) + ")")
    return " WHERE " + " AND ".join(parts) if parts else ""


def tz_clause(scope: Scope) -> str:
    return f" tz({tag_literal(scope.tz)})"


def run(db: InfluxV1, statements: list[str]) -> list[list[tuple[dict, dict]]]:
    """Run statements in one request; per statement, a list of (tags, row)
    with one row per series and bucket (columns by name, `time` in ms)."""
    results = db.query(";\n".join(statements))
    out = []
    for result in results:
        rows = []
        for series in result.get("series", []):
            tags = dict(series.get("tags") or {})
            tags["_measurement"] = series.get("name")
            for values in series["values"]:
                rows.append((tags, dict(zip(series["columns"], values))))
        out.append(rows)
    return out


def known_seats(db: InfluxV1, scope: Scope) -> set[str]:
    q = 'SHOW TAG VALUES WITH KEY = "seat"' + where(scope, timed=False, seats=False)
    found = set()
    for _tags, row in run(db, [q])[0]:
        found.add(row["value"])
    return found


def check_seats(db: InfluxV1, scope: Scope) -> None:
    if not scope.seats:
        return
    known = known_seats(db, scope)
    unknown = [s for s in scope.seats if s not in known]
    if unknown:
        where_ = f" at site {scope.site}" if scope.site else ""
        raise ReportError(f"unknown seat {unknown[0]!r}{where_} (no data has ever named it)")
