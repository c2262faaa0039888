"""Shift-end safety report: was the seat's equipment off at shift end, and
if not, what happened (logged, reminded, cut by the relay, postponed).
Counts come from the 0/1 flags of the `shift_end` measurement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from collector.influx import InfluxV1
from seatmon.report.query import Scope, check_seats, run, tz_clause, where

BY_CHOICES = ("seat", "shift", "shift-seat", "day", "site")

SELECT = ("SELECT count(idle_ms) AS shift_ends, sum(off_in_time) AS off_in_time, sum(left_on) AS left_on, "
          "sum(reminded) AS reminded, sum(cut) AS cut, sum(postponed) AS postponed, "
          "sum(overtime_ms) AS overtime FROM shift_end")


@dataclass
class SafetyRow:
    group: str
    shift_ends: int = 0
    off_in_time: int = 0
    left_on: int = 0
    reminded: int = 0
    cut: int = 0
    postponed: int = 0
    overtime_ms: int = 0
    sort_key: object = None

    @property
    def logged(self) -> int:  # left on and only recorded (action `logged`)
        return self.left_on - self.reminded - self.cut - self.postponed

    @property
    def handovers(self) -> int:  # back-to-back shifts: the seat stayed staffed, nothing to check
        return self.shift_ends - self.off_in_time - self.left_on

    @property
    def compliance(self) -> float | None:
        checked = self.off_in_time + self.left_on
        return self.off_in_time / checked if checked else None

    def as_dict(self) -> dict:
        return {"group": self.group, "shift_ends": self.shift_ends, "off_in_time": self.off_in_time,
                "left_on": self.left_on, "logged": self.logged, "reminded": self.reminded, "cut": self.cut,
                "postponed": self.postponed, "overtime_ms": self.overtime_ms, "handovers": self.handovers,
                "compliance": self.compliance}


@dataclass
class SafetyReport:
    scope: Scope
    by: str
    groups: list[SafetyRow]
    total: SafetyRow

    @property
    def empty(self) -> bool:
        return self.total.shift_ends == 0

    def as_dict(self) -> dict:
        return {"report": "safety", "by": self.by, "from": self.scope.first.isoformat(),
                "to": self.scope.last.isoformat(), "tz": self.scope.tz, "site": self.scope.site,
                "seats": list(self.scope.seats), "groups": [g.as_dict() for g in self.groups],
                "total": self.total.as_dict()}


def statement(scope: Scope, by: str) -> str:
    if by == "day":
        return SELECT + where(scope) + " GROUP BY time(1d) fill(none)" + tz_clause(scope)
    tags = {"shift-seat": "shift, seat"}.get(by, by)
    return SELECT + where(scope) + f" GROUP BY {tags}"


def _label(by: str, tags: dict, row: dict, scope: Scope) -> str:
    if by == "day":
        return datetime.fromtimestamp(row["time"] / 1000, scope.zone).date().isoformat()
    if by == "shift-seat":
        return f"{tags.get('shift') or '(none)'} {tags.get('seat')}"
    return tags.get(by) or "(none)"


def build(rows, scope: Scope, by: str) -> SafetyReport:
    """Pure: rows -> report. Worst offenders first (most left on, then most
    cut, then fewest off in time); days stay in date order."""
    groups = []
    total = SafetyRow("total")
    for tags, row in rows:
        r = SafetyRow(_label(by, tags, row, scope), *(int(row[k] or 0) for k in (
            "shift_ends", "off_in_time", "left_on", "reminded", "cut", "postponed", "overtime")))
        r.sort_key = row["time"] if by == "day" else (-r.left_on, -r.cut, r.off_in_time, r.group)
        groups.append(r)
        for name in ("shift_ends", "off_in_time", "left_on", "reminded", "cut", "postponed", "overtime_ms"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    groups.sort(key=lambda r: r.sort_key)
    return SafetyReport(scope, by, groups, total)


def safety(db: InfluxV1, scope: Scope, by: str = "seat") -> SafetyReport:
    check_seats(db, scope)
    return build(run(db, [statement(scope, by)])[0], scope, by)
