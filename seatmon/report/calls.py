"""`seatmon report calls`: every call behind a figure, one row each: the
evidence in a dispute. Documented in docs/reports.md ("The calls behind a
figure").

A call's outcome is the roll-ups' (collector/rollup.py), so the rows of
each outcome add up to the answers report's counts for the same range:
**timely** = answered within its limit (`within_limit`), **late** =
answered past it, **missed** = not answered, rang past the limit,
**abandoned** = ringing stopped within the limit. A call belongs to the
agent the roster puts at its seat at its first ring (its time).

The rows are read raw: for `--seat`, that seat's calls in the range; for
`--agent`, the calls at the seats and spans of the agent's assignments
only (a month of one agent is a few thousand rows).
"""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from collector.influx import InfluxV1
from seatmon.report import render
from seatmon.report.query import Scope, check_seats, tag_literal
from seatmon.roster import store
from seatmon.roster.model import UNASSIGNED, Roster

# --outcome: the four outcomes a call has, and the two unions the reports count.
OUTCOMES = ("timely", "late", "missed", "abandoned")
FILTERS = OUTCOMES + ("answered", "unanswered")
UNION = {"answered": ("timely", "late"), "unanswered": ("missed", "abandoned")}

CALL_SELECT = ('SELECT "shift"::field AS shift, rings, ring_ms, answer_ms, limit_ms, limit_rings, within_limit, '
               'apology_prompted, hung_up_first, clock, "outcome"::tag AS outcome, "exceeded"::tag AS exceeded '
               "FROM call")
OUTGOING_SELECT = 'SELECT "shift"::field AS shift, talk_ms, hung_up_first, clock FROM outgoing'
STATEMENTS_PER_REQUEST = 40
WORKERS = 4


@dataclass
class Call:
    time_ms: int
    site: str
    seat: str
    agent: str
    shift: str | None
    rings: int | None
    ring_ms: int | None
    answer_ms: int | None
    limit_ms: int | None
    limit_rings: int | None
    outcome: str  # timely, late, missed, abandoned (or what an unknown outcome was stored as)
    exceeded: str | None
    apology_prompted: bool | None
    hung_up_first: str | None
    clock: str | None

    def as_dict(self, zone) -> dict:
        return {"time": local_iso(self.time_ms, zone), "time_ms": self.time_ms, "site": self.site,
                "seat": self.seat, "agent": self.agent, "shift": self.shift, "rings": self.rings,
                "ring_ms": self.ring_ms, "answer_ms": self.answer_ms, "limit_ms": self.limit_ms,
                "limit_rings": self.limit_rings, "outcome": self.outcome, "exceeded": self.exceeded,
                "apology_prompted": self.apology_prompted, "hung_up_first": self.hung_up_first,
                "clock": self.clock}


def outcome_of(outcome: str | None, within_limit) -> str:
    """The call's outcome as the roll-ups count it."""
    if outcome == "answered":
        return "timely" if within_limit else "late"
    return outcome or "(none)"


def wanted(outcome: str, filters: tuple[str, ...]) -> bool:
    if not filters:
        return True
    return any(outcome == f or outcome in UNION.get(f, ()) for f in filters)


def local_iso(ms: int, zone) -> str:
    """Local time with its UTC offset: unambiguous in the hour repeated when DST ends."""
    return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="seconds")


# ---- reading -------------------------------------------------------------------------------

Span = tuple[str | None, str, int, int]  # (site or None: any, seat, start ms, end ms)


def seat_spans(scope: Scope) -> list[Span]:
    return [(scope.site, seat, scope.start_ms, scope.end_ms) for seat in scope.seats]


def agent_spans(roster: Roster, agent: str, start_ms: int, end_ms: int) -> list[Span]:
    """The seats and spans of the agent's assignments within [start, end),
    back-to-back spans at one seat joined (fewer statements)."""
    spans: list[list] = []
    for a in sorted((a for a in roster.assignments if a.agent == agent), key=lambda a: (a.site, a.seat, a.start_ms)):
        s, e = max(a.start_ms, start_ms), min(a.end_ms, end_ms)
        if s >= e:
            continue
        last = spans[-1] if spans else None
        if last and last[0] == a.site and last[1] == a.seat and last[3] == s:
            last[3] = e
        else:
            spans.append([a.site, a.seat, s, e])
    return [tuple(x) for x in spans]


def _statement(select: str, span: Span) -> str:
    site, seat, start, end = span
    cond = f"time >= {start}ms AND time < {end}ms AND seat = {tag_literal(seat)}"
    if site is not None:
        cond += f" AND site = {tag_literal(site)}"
    return f"{select} WHERE {cond} GROUP BY site, seat"


def read_rows(db: InfluxV1, select: str, spans: list[Span]) -> list[tuple[str, str, dict]]:
    """(site, seat, row) of every point `select` finds in the spans, many
    statements a request, requests side by side."""
    stmts = [_statement(select, s) for s in spans]
    chunks = [stmts[i:i + STATEMENTS_PER_REQUEST] for i in range(0, len(stmts), STATEMENTS_PER_REQUEST)]

    def one(chunk):
        out = []
        for result in db.query(";\n".join(chunk)):
            for series in result.get("series", []):
                tags = series.get("tags") or {}
                cols = series["columns"]
                for values in series["values"]:
                    out.append((tags.get("site", ""), tags.get("seat", ""), dict(zip(cols, values))))
        return out

    with ThreadPoolExecutor(WORKERS) as pool:
        return [row for got in pool.map(one, chunks) for row in got]


def _int(v):
    return None if v is None else int(v)


def to_calls(rows, roster: Roster) -> list[Call]:
    """Pure: raw rows -> calls in time order, each with its agent."""
    out = []
    for site, seat, r in rows:
        t = int(r["time"])
        out.append(Call(t, site, seat, roster.agent_at(site, seat, t), r.get("shift"), _int(r.get("rings")),
                        _int(r.get("ring_ms")), _int(r.get("answer_ms")), _int(r.get("limit_ms")),
                        _int(r.get("limit_rings")), outcome_of(r.get("outcome"), r.get("within_limit")),
                        r.get("exceeded"), r.get("apology_prompted"), r.get("hung_up_first"), r.get("clock")))
    out.sort(key=lambda c: (c.time_ms, c.site, c.seat))
    return out


def agent_calls(db: InfluxV1, roster: Roster, agent: str, start_ms: int, end_ms: int) -> list[Call]:
    """Every call the roster gives to `agent` in [start, end). `roster`
    holds at least the agent's assignments (store.load with agent=)."""
    rows = read_rows(db, CALL_SELECT, agent_spans(roster, agent, start_ms, end_ms))
    return [c for c in to_calls(rows, roster) if c.agent == agent]


# ---- the report ----------------------------------------------------------------------------

@dataclass
class CallsReport:
    scope: Scope
    agent: str | None  # the --agent asked for (as shown: maybe a code)
    filters: tuple[str, ...]
    calls: list[Call]

    @property
    def empty(self) -> bool:
        return not self.calls

    def counts(self) -> dict[str, int]:
        out = {o: 0 for o in OUTCOMES}
        for c in self.calls:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out

    def agents_named(self) -> int:
        return len({c.agent for c in self.calls if c.agent != UNASSIGNED})

    def as_dict(self) -> dict:
        zone = self.scope.zone
        return {"report": "calls", "from": self.scope.first.isoformat(), "to": self.scope.last.isoformat(),
                "tz": self.scope.tz, "site": self.scope.site, "seats": list(self.scope.seats),
                "agent": self.agent, "outcome": list(self.filters), "counts": self.counts(),
                "calls": [c.as_dict(zone) for c in self.calls]}


def calls(db: InfluxV1, scope: Scope, agent: str | None = None, filters: tuple[str, ...] = (),
          name=lambda a: a) -> CallsReport:
    """The calls of the scope's seats, or of `agent` (also at the scope's
    seats only, when some are given), with the outcomes asked for. `name`
    maps agent ids to what the report shows (pseudonym.Pseudonyms)."""
    check_seats(db, scope)
    if agent is not None:
        roster = store.load(db, scope.start_ms, scope.end_ms, scope.site, agent=agent)
        found = agent_calls(db, roster, agent, scope.start_ms, scope.end_ms)
        if scope.seats:
            found = [c for c in found if c.seat in scope.seats]
    else:
        roster = store.load(db, scope.start_ms, scope.end_ms, scope.site, seats=scope.seats)
        found = to_calls(read_rows(db, CALL_SELECT, seat_spans(scope)), roster)
    found = [c for c in found if wanted(c.outcome, filters)]
    for c in found:
        c.agent = name(c.agent)
    return CallsReport(scope, name(agent) if agent is not None else None, filters, found)


# ---- text ----------------------------------------------------------------------------------

def yes_no(v) -> str:
    return "-" if v is None else ("yes" if v else "no")


def limit_text(c: Call) -> str:
    parts = []
    if c.limit_ms is not None:
        parts.append(f"{c.limit_ms / 1000:g}s")
    if c.limit_rings:
        parts.append(f"{c.limit_rings}r")
    return "/".join(parts) or "-"


CLOCK_SHORT = {"ntp": "ntp", "unsynced": "UNSYNC", "corrected": "corr."}
TABLE = ("time", "seat", "agent", "rings", "answer s", "limit", "outcome", "apol.", "1st off", "clock")


def _table_row(c: Call, zone) -> list[str]:
    local = datetime.fromtimestamp(c.time_ms / 1000, zone)
    return [local.strftime("%m-%d %H:%M:%S"), c.seat, c.agent, "-" if c.rings is None else str(c.rings),
            "-" if c.answer_ms is None else f"{c.answer_ms / 1000:.1f}", limit_text(c), c.outcome,
            yes_no(c.apology_prompted), c.hung_up_first or "-", CLOCK_SHORT.get(c.clock, c.clock or "-")]


def table_text(rep: CallsReport) -> str:
    zone = rep.scope.zone
    what = f"agent {rep.agent}" if rep.agent is not None else "seat " + ", ".join(rep.scope.seats)
    head = (f"Calls of {what}, {rep.scope.describe()}" + (f", site {rep.scope.site}" if rep.scope.site else "")
            + (f", outcome {', '.join(rep.filters)}" if rep.filters else ""))
    body = [_table_row(c, zone) for c in rep.calls]
    widths = [max(len(x) for x in col) for col in zip(TABLE, *body)]
    numeric = {3, 4}

    def fmt(values):
        return " ".join(v.rjust(w) if i in numeric else v.ljust(w)
                        for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    lines = [head, "", fmt(TABLE), "-" * min(render.WIDTH, sum(widths) + len(widths) - 1)]
    lines += [fmt(r) for r in body]
    counts = rep.counts()
    lines += ["", f"{len(rep.calls)} calls: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
              textwrap.fill("time: first ring, local; limit: seconds/rings; apol. = apology prompted; 1st off = "
                            "who hung up first (- : no disconnect input); UNSYNC = stamped without a "
                            "synchronised clock", render.WIDTH)]
    return "\n".join(lines) + "\n"


CSV = [(k, k, "text") for k in ("time", "site", "seat", "agent", "shift", "rings", "ring_ms", "answer_ms",
                                "limit_ms", "limit_rings", "outcome", "exceeded", "apology_prompted",
                                "hung_up_first", "clock")]


def csv_text(rep: CallsReport) -> str:
    rows = []
    for d in (c.as_dict(rep.scope.zone) for c in rep.calls):
        d["apology_prompted"] = "" if d["apology_prompted"] is None else str(d["apology_prompted"]).lower()
        rows.append(d)
    return render.csv_text(rows, CSV)
