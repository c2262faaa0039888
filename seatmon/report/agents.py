"""Per-agent figures: which agent each call, roll-up row and shift end
belongs to (docs/reports.md, "By agent").

A call belongs to the agent the roster puts at its seat at its first ring
(Roster.agent_at); a seat nobody holds is `(unassigned)`. The roll-ups are
per seat, shift label and interval (15 minutes, or a local day), so a
roll-up row goes whole to one agent when that agent (or nobody) holds the
seat from the row's first to its last call (`first_ms`, `last_ms`; the
whole interval or day where those are unknown). A row that straddles an
assignment boundary (a seat change at 10:07, calls in overtime the roster
gives to the next agent) is replaced by rows computed from its own raw
calls and outgoing calls, each attributed on its own and rolled up as the
collector rolls them up (collector.rollup.Rollup). The result equals
attributing every raw call one by one.

A shift end belongs to the agent assigned at its seat for its shift: the
assignment whose label is the shift end's label, the last one when the
seat changed hands during the shift.
"""

from __future__ import annotations

from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from collector import rollup as ru
from collector.influx import InfluxV1
from seatmon.report.query import ReportError, Scope, tag_literal, where
from seatmon.roster import store
from seatmon.roster.model import UNASSIGNED, Roster  # noqa: F401 (the reports import UNASSIGNED from here)

DAY_MS = 86_400_000
RAW_CHUNK = 60  # raw statements per request
RAW_WORKERS = 4
# What a raw row needs to be rolled up (collector.rollup.Rollup).
RAW_CALL = ("SELECT outcome, exceeded, answer_ms, ring_ms, talk_ms, within_limit, clock, hung_up_first, "
            '"shift" FROM call')
RAW_OUTGOING = 'SELECT talk_ms, clock, hung_up_first, "shift" FROM outgoing'


class Timeline:
    """The roster, asked about spans of time and shift labels. Per seat the
    assignments' starts, ends and agents as lists (a seat's assignments
    never overlap, so its ends are sorted too): a bisect answers."""

    def __init__(self, roster: Roster):
        self.roster = roster
        self._seats: dict[tuple[str, str], tuple[list[int], list[int], list[str]]] = {}
        self._shift: dict[tuple[str, str, str], str] = {}
        for a in roster.assignments:  # by site, seat, start
            starts, ends, agents = self._seats.setdefault((a.site, a.seat), ([], [], []))
            starts.append(a.start_ms)
            ends.append(a.end_ms)
            agents.append(a.agent)
            self._shift[(a.site, a.seat, a.shift)] = a.agent  # the last of a label wins

    def agent_at(self, site: str, seat: str, ts_ms: int) -> str:
        """Roster.agent_at: the agent at the seat at that moment, or UNASSIGNED."""
        found = self._seats.get((site, seat))
        if found is None:
            return UNASSIGNED
        starts, ends, agents = found
        i = bisect_right(starts, ts_ms) - 1
        return agents[i] if i >= 0 and ts_ms < ends[i] else UNASSIGNED

    def agent_over(self, site: str, seat: str, t0: int, t1: int) -> str | None:
        """The one agent (or UNASSIGNED) at the seat from t0 to t1
        inclusive; None when the seat changes hands in between."""
        found = self._seats.get((site, seat))
        if found is None:
            return UNASSIGNED
        starts, ends, agents = found
        i = bisect_right(starts, t0) - 1
        if i >= 0 and t0 < ends[i]:  # inside an assignment: the usual case, it covers t1 too
            agent = agents[i]
            if t1 < ends[i]:
                return agent
        else:
            agent = UNASSIGNED
            if i + 1 >= len(starts) or starts[i + 1] > t1:  # nobody until after t1
                return agent
        for times in (starts, ends):  # the seat's agent can change only where an assignment starts or ends
            for b in times[bisect_right(times, t0):bisect_right(times, t1)]:
                if self.agent_at(site, seat, b) != agent:
                    return None
        return agent

    def shift_agent(self, site: str, seat: str, label: str | None) -> str:
        """The agent of a shift end: assigned at the seat for that shift
        label (the last assignment of the label)."""
        return self._shift.get((site, seat, label or ""), UNASSIGNED)

    def seats_of(self, agent: str) -> set[str]:
        return {a.seat for a in self.roster.assignments if a.agent == agent}

    def staffed_spans(self, agent: str, seat_spans, seats=()) -> dict[tuple[str, str, str], list[int]]:
        """An agent's staffed time as spans in staffing.py's form ((site,
        seat, label) -> [start, end]; the seat made unique per piece): its
        assignments (at `seats`, when given). For UNASSIGNED: the parts of
        the seats' staffed spans (`seat_spans`, first to last event) that
        nobody is assigned."""
        out = {}
        if agent != UNASSIGNED:
            for a in self.roster.assignments:
                if a.agent == agent and (not seats or a.seat in seats):
                    out[(a.site, f"{a.seat}@{a.start_ms}", a.shift)] = [a.start_ms, a.end_ms]
            return out
        for (site, seat, label), (t0, t1) in seat_spans.items():
            for p0, p1 in self.unassigned_pieces(site, seat, t0, t1):
                out[(site, f"{seat}@{p0}", label)] = [p0, p1]
        return out

    def unassigned_pieces(self, site: str, seat: str, t0: int, t1: int) -> list[tuple[int, int]]:
        """The parts of [t0, t1) nobody is assigned at the seat."""
        starts, ends, _agents = self._seats.get((site, seat), ([], [], []))
        pieces, at = [], t0
        i = bisect_right(ends, t0)  # the first assignment still running after t0
        while i < len(starts) and starts[i] < t1:
            if starts[i] > at:
                pieces.append((at, starts[i]))
            at = max(at, ends[i])
            i += 1
        if at < t1:
            pieces.append((at, t1))
        return pieces


def timeline(db: InfluxV1, scope: Scope) -> Timeline:
    """The roster of the scope's site, from a day before its range (for
    shift ends: their assignment started up to a shift earlier)."""
    return Timeline(store.load(db, scope.start_ms - DAY_MS, scope.end_ms, site=scope.site))


def has_roster(db: InfluxV1, scope: Scope) -> bool:
    """Whether any assignment reaches into the scope's range (one count)."""
    site = f" AND site = {tag_literal(scope.site)}" if scope.site else ""
    q = (f"SELECT count(end_ms) FROM {store.MEASUREMENT} WHERE time >= {scope.start_ms - store.LONGEST_MS}ms "
         f"AND time < {scope.end_ms}ms AND end_ms > {scope.start_ms}{site}")
    return any(result.get("series") for result in db.query(q))


def narrowed(scope: Scope, tl: Timeline) -> Scope:
    """The scope cut to the seats the agent of --agent was assigned at (its
    calls are nowhere else): fewer rows to read. Unchanged for (unassigned)."""
    if not scope.agent or scope.agent == UNASSIGNED:
        return scope
    held = tl.seats_of(scope.agent)
    seats = tuple(sorted(held & set(scope.seats) if scope.seats else held))
    return replace(scope, seats=seats or scope.seats)


def check_agent(scope: Scope, tl: Timeline) -> None:
    """--agent names an agent of the roster (or `(unassigned)`)."""
    if scope.agent and scope.agent != UNASSIGNED and scope.agent not in tl.roster.agents():
        raise ReportError(f"--agent {scope.agent!r}: no such agent in the roster from {scope.first} to {scope.last}"
                          + (f" at site {scope.site}" if scope.site else "") + " (seatmon roster show lists them)")


def _window(t_ms: int, day_tz: str | None) -> tuple[int, int]:
    """[start, end) of a roll-up row's key: its 15 minutes, or its local day."""
    return ru.day_window(t_ms, day_tz) if day_tz else (t_ms, t_ms + ru.INTERVAL_MS)


def split_rollups(db: InfluxV1, series, tl: Timeline, day_tz: str | None, agent: str | None = None) -> list:
    """Roll-up series (tags, columns, values; columns with `time`, `shift`,
    `first_ms`, `last_ms`) -> the same rows as series per (site, seat,
    agent), tag `agent` added; only `agent`'s when given. `day_tz`: the
    rows are day roll-ups in that zone (else 15-minute ones)."""
    buckets: dict[tuple, tuple[list, list]] = {}
    straddling: list[tuple[str, str, list, list]] = []
    for tags, columns, values in series:
        site, seat = tags.get("site") or "", tags.get("seat") or ""
        i_time, i_first, i_last = (columns.index(c) for c in ("time", "first_ms", "last_ms"))
        for row in values:
            t0, t1 = row[i_first], row[i_last]
            if not t0:  # stored before the times were kept: the whole key
                t0, t1 = _window(row[i_time], day_tz)
                t1 -= 1
            who = tl.agent_over(site, seat, t0, t1)
            if who is None:
                straddling.append((site, seat, columns, row))
            elif agent is None or who == agent:
                key = (site, seat, who)
                got = buckets.get(key)
                if got is None:
                    got = buckets[key] = (columns, [])
                got[1].append(row)
    for site, seat, who, columns, row in _from_raw(db, straddling, tl, day_tz):
        if agent is None or who == agent:
            buckets.setdefault((site, seat, who), (columns, []))[1].append(row)
    return [({"site": site, "seat": seat, "agent": who}, columns, rows)
            for (site, seat, who), (columns, rows) in buckets.items()]


def _raw_statements(site: str, seat: str, t0: int, t1: int) -> list[str]:
    cond = (f" WHERE site = {tag_literal(site)} AND seat = {tag_literal(seat)} "
            f"AND time >= {t0}ms AND time < {t1}ms")
    return [RAW_CALL + cond, RAW_OUTGOING + cond]


def _rows(result: dict) -> list[dict]:
    return [dict(zip(s["columns"], v)) for s in result.get("series", []) for v in s["values"]]


def _from_raw(db: InfluxV1, straddling, tl: Timeline, day_tz: str | None):
    """Each straddling roll-up row as rows per agent, rolled up from its
    raw calls and outgoing calls (those of its seat, label and key)."""
    stmts = []
    for site, seat, columns, row in straddling:
        stmts += _raw_statements(site, seat, *_window(row[columns.index("time")], day_tz))
    chunks = [";".join(stmts[i:i + RAW_CHUNK]) for i in range(0, len(stmts), RAW_CHUNK)]
    with ThreadPoolExecutor(RAW_WORKERS) as pool:  # InfluxDB answers requests side by side
        results = [r for got in pool.map(db.query, chunks) for r in got]
    for n, (site, seat, columns, row) in enumerate(straddling):
        label = row[columns.index("shift")] or None
        parts: dict[str, ru.Rollup] = {}
        calls, outgoing = _rows(results[2 * n]), _rows(results[2 * n + 1])
        for raw, add in ((calls, ru.Rollup.add_call), (outgoing, ru.Rollup.add_outgoing)):
            for r in raw:
                if ru._label(r) == label:
                    add(parts.setdefault(tl.agent_at(site, seat, r["time"]), ru.Rollup()), r)
        for who, rollup in parts.items():
            fields = {**rollup.as_fields(), "time": row[columns.index("time")], "shift": label}
            yield site, seat, who, columns, [fields.get(c) for c in columns]


def split_raw(series, tl: Timeline, agent: str | None = None) -> list:
    """Raw series (tags, columns, values with `time`) -> per (site, seat,
    agent) series, each row attributed at its own time; only `agent`'s
    when given."""
    buckets: dict[tuple, tuple[list, list]] = {}
    for tags, columns, values in series:
        site, seat = tags.get("site") or "", tags.get("seat") or ""
        i_time = columns.index("time")
        for row in values:
            who = tl.agent_at(site, seat, row[i_time])
            if agent is None or who == agent:
                buckets.setdefault((site, seat, who), (columns, []))[1].append(row)
    return [({"site": site, "seat": seat, "agent": who}, columns, rows)
            for (site, seat, who), (columns, rows) in buckets.items()]


def one_by_one(db: InfluxV1, scope: Scope, tl: Timeline) -> dict[str, ru.Rollup]:
    """Every raw call and outgoing call of the scope attributed on its own
    and rolled up per agent: what the roll-up path must equal (tests, checks)."""
    out: dict[str, ru.Rollup] = {}
    cond = where(scope)
    for result, add in zip(db.query(f"{RAW_CALL}{cond} GROUP BY site, seat;{RAW_OUTGOING}{cond} GROUP BY site, seat"),
                           (ru.Rollup.add_call, ru.Rollup.add_outgoing)):
        for s in result.get("series", []):
            tags = s.get("tags") or {}
            for v in s["values"]:
                r = dict(zip(s["columns"], v))
                add(out.setdefault(tl.agent_at(tags.get("site") or "", tags.get("seat") or "", r["time"]),
                                   ru.Rollup()), r)
    return out
