"""Unit-health report: which units are offline now and since when, when
each was last seen, lost events, clock skew, journal backlog, self-test
faults and firmware versions. Small per-unit aggregates, in three
requests side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from collector.influx import InfluxV1
from seatmon.report.query import Scope, check_seats, run, where

EVENT_MEASUREMENTS = 'call, outgoing, reminder, selftest, shift_end, postpone, fault, clock, "update"'


@dataclass
class UnitRow:
    unit: str
    seat: str | None = None
    state: str | None = None  # latest status: online / offline
    state_since_ms: int | None = None
    last_seen_ms: int | None = None  # latest status, heartbeat or event
    firmware: str | None = None
    lost_events: int = 0
    skew_last_ms: int | None = None
    skew_worst_ms: int | None = None  # largest |skew| in the range
    journal_last: int | None = None
    journal_max: int | None = None
    selftests: int = 0
    selftest_faults: int = 0
    last_faults: str | None = None
    fault_events: int = 0
    update: str | None = None  # the last over-the-air update step in the range: "confirmed 0.2.0"

    @property
    def offline(self) -> bool:
        return self.state == "offline"

    def as_dict(self) -> dict:
        return {"unit": self.unit, "seat": self.seat, "state": self.state, "state_since_ms": self.state_since_ms,
                "offline": self.offline, "last_seen_ms": self.last_seen_ms, "firmware": self.firmware,
                "lost_events": self.lost_events, "skew_last_ms": self.skew_last_ms,
                "skew_worst_ms": self.skew_worst_ms, "journal_last": self.journal_last,
                "journal_max": self.journal_max, "selftests": self.selftests,
                "selftest_faults": self.selftest_faults, "last_faults": self.last_faults,
                "fault_events": self.fault_events, "update": self.update}


@dataclass
class UnitsReport:
    scope: Scope
    units: list[UnitRow]
    firmware: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.units

    @property
    def offline(self) -> list[UnitRow]:
        return [u for u in self.units if u.offline]

    def as_dict(self) -> dict:
        return {"report": "units", "from": self.scope.first.isoformat(), "to": self.scope.last.isoformat(),
                "tz": self.scope.tz, "site": self.scope.site, "seats": list(self.scope.seats),
                "offline": len(self.offline), "firmware": self.firmware,
                "units": [u.as_dict() for u in self.units]}


def statements(scope: Scope) -> list[str]:
    """State and last-seen up to the end of the range; counters within it."""
    upto = where(scope, seats=False).replace(f"time >= {scope.start_ms}ms AND ", "")
    ranged = where(scope, seats=False)
    return [
        "SELECT last(state) AS state FROM status" + upto + " GROUP BY unit",
        "SELECT last(fw) AS fw FROM status" + upto + " GROUP BY unit",
        "SELECT last(uptime_s) AS uptime FROM heartbeat" + upto + " GROUP BY unit",
        f"SELECT last(seq) AS seq FROM {EVENT_MEASUREMENTS}" + upto + " GROUP BY unit, seat",
        "SELECT sum(count) AS lost FROM seq_gap" + ranged + " GROUP BY unit",
        "SELECT last(skew_ms) AS skew_last, max(skew_ms) AS skew_max, min(skew_ms) AS skew_min, "
        "last(journal_depth) AS journal_last, max(journal_depth) AS journal_max FROM heartbeat"
        + ranged + " GROUP BY unit",
        "SELECT count(fault_count) AS selftests, sum(fault_count) AS faults FROM selftest" + ranged + " GROUP BY unit",
        "SELECT last(faults) AS faults FROM selftest" + ranged.replace(" WHERE ", " WHERE fault_count > 0 AND ")
        + " GROUP BY unit",
        "SELECT count(seq) AS faults FROM fault" + ranged + " GROUP BY unit",
        'SELECT last(step) AS step, last(version) AS version FROM "update"' + ranged + " GROUP BY unit",
    ]


def build(results, scope: Scope) -> UnitsReport:
    """Pure: the statements' rows -> report. Offline units first (longest
    offline first), then most lost events, then by unit id."""
    units: dict[str, UnitRow] = {}

    def get(tags) -> UnitRow:
        name = tags["unit"]
        return units.setdefault(name, UnitRow(name))

    def seen(u: UnitRow, t: int) -> None:
        u.last_seen_ms = t if u.last_seen_ms is None else max(u.last_seen_ms, t)

    state, fw, heartbeat, events, lost, health, selftests, last_faults, faults, updates = results
    for tags, row in state:
        u = get(tags)
        u.state, u.state_since_ms = row["state"], row["time"]
        seen(u, row["time"])
    for tags, row in fw:
        get(tags).firmware = row["fw"]
    for tags, row in heartbeat:
        seen(get(tags), row["time"])
    for tags, row in events:
        u = get(tags)
        if u.seat is None or row["time"] >= (u.last_seen_ms or 0):
            u.seat = tags.get("seat") or u.seat
        seen(u, row["time"])
    for tags, row in lost:
        get(tags).lost_events = int(row["lost"] or 0)
    for tags, row in health:
        u = get(tags)
        u.skew_last_ms = row["skew_last"]
        u.skew_worst_ms = max((row["skew_max"], row["skew_min"]), key=lambda v: abs(v or 0))
        u.journal_last, u.journal_max = row["journal_last"], row["journal_max"]
    for tags, row in selftests:
        u = get(tags)
        u.selftests, u.selftest_faults = int(row["selftests"] or 0), int(row["faults"] or 0)
    for tags, row in last_faults:
        get(tags).last_faults = row["faults"]
    for tags, row in faults:
        get(tags).fault_events = int(row["faults"] or 0)
    for tags, row in updates:
        get(tags).update = f"{row['step']} {row['version']}"
    rows = list(units.values())
    if scope.seats:
        rows = [u for u in rows if u.seat in scope.seats]
    rows.sort(key=lambda u: (not u.offline, u.state_since_ms if u.offline else 0, -u.lost_events, u.unit))
    firmware: dict[str, int] = {}
    for u in rows:
        firmware[u.firmware or "unknown"] = firmware.get(u.firmware or "unknown", 0) + 1
    return UnitsReport(scope, rows, dict(sorted(firmware.items())))


# The statements in requests side by side (InfluxDB runs the statements of
# one request one after the other): the events' last seq and the self-tests
# cost the most at 500 seats, so each is a request of its own.
REQUESTS = ((3,), (6, 7), (0, 1, 2, 4, 5, 8, 9))


def units(db: InfluxV1, scope: Scope) -> UnitsReport:
    check_seats(db, scope)
    stmts = statements(scope)
    with ThreadPoolExecutor(max_workers=len(REQUESTS)) as pool:
        parts = list(pool.map(lambda idx: run(db, [stmts[i] for i in idx]), REQUESTS))
    results: list = [None] * len(stmts)
    for idx, rows in zip(REQUESTS, parts):
        for i, r in zip(idx, rows):
            results[i] = r
    return build(results, scope)
