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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from collector.influx import InfluxV1
from seatmon.report import agents as agents_mod
from seatmon.report.query import Scope, check_seats, run, where

BY_CHOICES = ("seat", "shift", "shift-seat", "day", "site", "agent")

# One row per shift end and the self-test times: a month of a site is a
# few thousand points, counted here rather than in one aggregate per
# outcome. The label is read as the field (today's schema) or the tag (data
# stored before the label became a field), so both schemas read alike.
ENDS = ('SELECT action, equipment, idle_ms, overtime_ms, "shift"::field AS label, "shift"::tag AS old_label '
        "FROM shift_end")
SELFTESTS = "SELECT fault_count FROM selftest"


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
                "seats": list(self.scope.seats), "agent": self.scope.agent, "groups": [g.as_dict() for g in self.groups],
                "total": self.total.as_dict()}


def statements(scope: Scope) -> list[str]:
    """The shift ends, and the self-test times (a handover's next self-test
    has its shift end's time)."""
    cond = where(scope)
    return [ENDS + cond + " GROUP BY site, unit, seat", SELFTESTS + cond + " GROUP BY site, unit"]


def _label(by: str, tags: dict, row: dict, scope: Scope, agent: str | None = None) -> str:
    if by == "day":
        return datetime.fromtimestamp(row["time"] / 1000, scope.zone).date().isoformat()
    if by == "agent":
        return agent or agents_mod.UNASSIGNED
    shift = row.get("label") or row.get("old_label") or "(none)"
    if by == "shift":
        return shift
    if by == "shift-seat":
        return f"{shift} {tags.get('seat')}"
    return tags.get(by) or "(none)"


def outcome(row: dict, started: bool) -> str | None:
    """The SafetyRow counter one shift end adds to (None: none of them).
    `started`: the unit stamped a self-test with the same time."""
    action, equipment = row.get("action"), row.get("equipment")
    if action == "none":
        if equipment == "off":
            return "handovers" if started else "off_in_time"
        return "handovers" if equipment is not None else None  # only a handover ends with no action, power on
    if action == "logged":
        return {"on": "logged", "unknown": "sensor_unreadable"}.get(equipment)
    return action if action in ("reminded", "cut", "postponed") else None


def build(results, scope: Scope, by: str, tl: agents_mod.Timeline | None = None) -> SafetyReport:
    """Pure: the rows of statements() -> report. Worst offenders first (most
    left on, then most cut, then fewest off in time); days in date order.
    Per agent (by agent, or --agent: `tl` the roster) a shift end belongs to
    the agent assigned at its seat for its shift (agents.Timeline.shift_agent)."""
    ends, selftests = results
    started = {(tags.get("site"), tags.get("unit"), row["time"]) for tags, row in selftests}
    rows: dict[str, SafetyRow] = {}
    for tags, row in ends:
        agent = None
        if tl is not None:
            agent = tl.shift_agent(tags.get("site") or "", tags.get("seat") or "",
                                   row.get("label") or row.get("old_label"))
            if scope.agent and agent != scope.agent:
                continue
        label = _label(by, tags, row, scope, agent)
        r = rows.get(label)
        if r is None:
            r = rows[label] = SafetyRow(label, sort_key=label if by == "day" else None)
        r.overtime_ms += int(row.get("overtime_ms") or 0)
        if row.get("idle_ms") is None:  # not a complete shift-end check
            continue
        r.shift_ends += 1
        name = outcome(row, (tags.get("site"), tags.get("unit"), row["time"]) in started)
        if name:
            setattr(r, name, getattr(r, name) + 1)
    total = SafetyRow("total")
    for r in rows.values():
        if by != "day":
            r.sort_key = (-r.left_on, -r.cut, r.off_in_time, r.group)
        for name in SafetyRow.COUNTS:
            setattr(total, name, getattr(total, name) + getattr(r, name))
    groups = sorted(rows.values(), key=lambda r: r.sort_key)
    return SafetyReport(scope, by, groups, total)


def read(db: InfluxV1, scope: Scope, check: bool = True) -> list:
    """The rows of statements(): two requests side by side (InfluxDB runs
    the statements of one request one after the other). One read serves
    every grouping (build)."""
    if check:
        check_seats(db, scope)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [rows for got in pool.map(lambda q: run(db, [q]), statements(scope)) for rows in got]


def timeline(db: InfluxV1, scope: Scope, by: str) -> agents_mod.Timeline | None:
    """The roster, when the report is per agent or for one agent."""
    if by != "agent" and not scope.agent:
        return None
    tl = agents_mod.timeline(db, scope)
    agents_mod.check_agent(scope, tl)
    return tl


def safety(db: InfluxV1, scope: Scope, by: str = "seat") -> SafetyReport:
    check_seats(db, scope)
    tl = timeline(db, scope, by)
    return build(read(db, agents_mod.narrowed(scope, tl) if tl else scope, check=False), scope, by, tl)
