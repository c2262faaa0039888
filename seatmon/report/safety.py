"""Shift-end safety report: was the seat's equipment off at shift end, and
if not, what happened (logged, reminded, cut by the relay); ends found off
after granted overtime (postponed), unreadable power sensors and handovers
to the next shift are their own columns. Definitions in docs/reports.md.

The outcome is derived from the stored `action` and `equipment` fields, not
from the `left_on`/`off_in_time` flags: data written before the flags were
corrected (postponed and unreadable ends stored as left on) reads the same.
A handover with the equipment off looks like an end switched off in time;
it is told apart by the next shift's self-test, which the unit stamps with
the very same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from collector.influx import InfluxV1
from seatmon.report.query import Scope, check_seats, run, tz_clause, where

BY_CHOICES = ("seat", "shift", "shift-seat", "day", "site")

TOTALS = ("SELECT count(idle_ms) AS shift_ends, sum(overtime_ms) AS overtime FROM shift_end")
# name -> condition on the stored fields; each counted in the database.
COUNTED = {
    "logged": "equipment = 'on' AND action = 'logged'",
    "reminded": "action = 'reminded'",
    "cut": "action = 'cut'",
    "postponed": "action = 'postponed'",
    "sensor_unreadable": "equipment = 'unknown' AND action = 'logged'",
    "handover_on": "action = 'none' AND equipment != 'off'",  # only a handover ends with no action and power on
}
# Off with no action: in time, or a handover. These few points are read one by one.
OFF_NONE = "action = 'none' AND equipment = 'off'"


@dataclass
class SafetyRow:
    group: str
    shift_ends: int = 0
    off_in_time: int = 0
    postponed: int = 0
    logged: int = 0
    reminded: int = 0
    cut: int = 0
    sensor_unreadable: int = 0
    handovers: int = 0
    overtime_ms: int = 0
    sort_key: object = None

    COUNTS = ("shift_ends", "off_in_time", "postponed", "logged", "reminded", "cut", "sensor_unreadable",
              "handovers", "overtime_ms")

    @property
    def left_on(self) -> int:  # found on at the check, whatever was done then
        return self.logged + self.reminded + self.cut

    @property
    def compliance(self) -> float | None:
        """Ends found off (in time, or after granted overtime) over every end
        whose equipment was checked (not handovers, not unreadable sensors)."""
        ok = self.off_in_time + self.postponed
        checked = ok + self.left_on
        return ok / checked if checked else None

    def as_dict(self) -> dict:
        return {"group": self.group, "shift_ends": self.shift_ends, "off_in_time": self.off_in_time,
                "postponed": self.postponed, "left_on": self.left_on, "logged": self.logged,
                "reminded": self.reminded, "cut": self.cut, "sensor_unreadable": self.sensor_unreadable,
                "handovers": self.handovers, "overtime_ms": self.overtime_ms, "compliance": self.compliance}


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


def _grouping(scope: Scope, by: str) -> str:
    if by == "day":
        return " GROUP BY time(1d) fill(none)" + tz_clause(scope)
    return " GROUP BY " + {"shift-seat": "shift, seat"}.get(by, by)


def statements(scope: Scope, by: str) -> list[str]:
    """Totals, one count per outcome, the off-with-no-action points, and the
    self-test times (a handover's next self-test has its shift end's time)."""
    cond, grp = where(scope), _grouping(scope, by)
    out = [TOTALS + cond + grp]
    out += [f"SELECT count(idle_ms) AS n FROM shift_end{cond} AND {c}{grp}" for c in COUNTED.values()]
    out.append(f"SELECT idle_ms FROM shift_end{cond} AND {OFF_NONE} GROUP BY site, unit, seat, shift")
    out.append(f"SELECT fault_count FROM selftest{cond} GROUP BY site, unit")
    return out


def _label(by: str, tags: dict, row: dict, scope: Scope) -> str:
    if by == "day":
        return datetime.fromtimestamp(row["time"] / 1000, scope.zone).date().isoformat()
    if by == "shift-seat":
        return f"{tags.get('shift') or '(none)'} {tags.get('seat')}"
    return tags.get(by) or "(none)"


def build(results, scope: Scope, by: str) -> SafetyReport:
    """Pure: the rows of statements() -> report. Worst offenders first (most
    left on, then most cut, then fewest off in time); days in date order."""
    totals, *counted = results[: 1 + len(COUNTED)]
    off_none, selftests = results[1 + len(COUNTED):]
    rows: dict[str, SafetyRow] = {}
    for tags, row in totals:
        label = _label(by, tags, row, scope)
        rows[label] = SafetyRow(label, shift_ends=int(row["shift_ends"] or 0), overtime_ms=int(row["overtime"] or 0),
                                sort_key=row["time"] if by == "day" else None)
    for name, result in zip(COUNTED, counted):
        for tags, row in result:
            r = rows[_label(by, tags, row, scope)]
            n = int(row["n"] or 0)
            if name == "handover_on":
                r.handovers += n
            else:
                setattr(r, name, n)
    started = {(tags.get("site"), tags.get("unit"), row["time"]) for tags, row in selftests}
    for tags, row in off_none:
        r = rows[_label(by, tags, row, scope)]
        if (tags.get("site"), tags.get("unit"), row["time"]) in started:
            r.handovers += 1
        else:
            r.off_in_time += 1
    total = SafetyRow("total")
    for r in rows.values():
        if by != "day":
            r.sort_key = (-r.left_on, -r.cut, r.off_in_time, r.group)
        for name in SafetyRow.COUNTS:
            setattr(total, name, getattr(total, name) + getattr(r, name))
    groups = sorted(rows.values(), key=lambda r: r.sort_key)
    return SafetyReport(scope, by, groups, total)


def safety(db: InfluxV1, scope: Scope, by: str = "seat") -> SafetyReport:
    check_seats(db, scope)
    return build(run(db, statements(scope, by)), scope, by)
