"""Answer-timeliness report: per group and in total, from the `call` and
`outgoing` measurements. Definitions in docs/reports.md.

The database does the counting (per `outcome` tag, and sums of the 0/1
flags), the sums for the mean and the order statistics (median,
percentile, max). The totals are
derived exactly from the groups, except the total median and p90, which
cannot be: those come from one extra statement run alongside.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from collector.influx import InfluxV1
from seatmon.report.query import Scope, check_seats, run, tz_clause, where

BY_CHOICES = ("seat", "shift", "shift-seat", "day", "hour", "site")
TREATMENTS = ("ignored", "negative", "positive")
SHORT_ABANDON_MS = 5000

# InfluxDB 1.x pays per series and per aggregate call, and the schema has
# a series per seat, shift and outcome. So the counts come from one cheap
# count per outcome (the `outcome` tag), and the answer-time figures read
# only the answered series.
COUNT_SELECT = "SELECT count(ring_ms) AS calls FROM call"
ANSWERED_SELECT = ("SELECT sum(timely) AS timely, sum(answer_ms) AS answer_sum, median(answer_ms) AS median, "
                   "percentile(answer_ms, 90) AS p90, max(answer_ms) AS max FROM call")
TOTAL_ORDER_SELECT = "SELECT median(answer_ms) AS median, percentile(answer_ms, 90) AS p90 FROM call"
OUTGOING_SELECT = "SELECT count(talk_ms) AS outgoing FROM outgoing"
ANSWERED = "outcome = 'answered'"
# Who hung up first is stored only where the disconnect input is installed.
HANGUP_SELECT = "SELECT count(hung_up_first) AS known FROM call, outgoing"
AGENT_SELECT = "SELECT count(hung_up_first) AS agent FROM call, outgoing"
AGENT_FIRST = "hung_up_first = 'agent'"
UNSYNCED_SELECT = "SELECT count(ring_ms) AS unsynced FROM call"
UNSYNCED = "clock != 'ntp'"
# Which limit a late or unanswered call went past (the `exceeded` tag; units
# before it was stored send none, so their late calls count in no column).
EXCEEDED_SELECT = "SELECT count(ring_ms) AS n FROM call"
EXCEEDED_VALUES = ("time", "rings", "both")
# Every call not answered ended when its ringing stopped: the caller gave up.
ABANDON_SELECT = "SELECT count(ring_ms) AS n, sum(ring_ms) AS ring_sum FROM call"
UNANSWERED = "outcome != 'answered'"


@dataclass(frozen=True)
class Conventions:
    """The site's choices for call-centre figures (docs/reports.md)."""

    short_abandon_ms: int = SHORT_ABANDON_MS  # a caller who gave up sooner is a short abandon
    treatment: str = "ignored"  # service level: calls abandoned within the limit ignored/negative/positive

    def as_dict(self) -> dict:
        return {"short_abandon_ms": self.short_abandon_ms, "abandon_treatment": self.treatment}


@dataclass
class Figures:
    """One row of the report. Times in ms; rates as fractions; None when
    undefined (no calls, nothing answered)."""

    group: str
    calls: int = 0
    answered: int = 0
    answered_in_time: int = 0
    answered_late: int = 0
    missed: int = 0
    abandoned: int = 0
    outgoing: int = 0
    answer_sum_ms: int = 0
    median_ms: float | None = None
    p90_ms: int | None = None
    max_ms: int | None = None
    abandoned_short: int = 0
    abandoned_long: int = 0
    abandon_sum_ms: int = 0
    hangup_known: int = 0  # answered and outgoing calls with a disconnect signal
    agent_first: int = 0
    unsynced: int = 0
    exceeded_time: int = 0  # late or unanswered past 10 s, within the rings
    exceeded_rings: int = 0  # past the ring limit, within 10 s (fast cadences)
    exceeded_both: int = 0
    treatment: str = "ignored"
    sort_key: object = None

    @property
    def timeliness_rate(self) -> float | None:
        return self.answered_in_time / self.calls if self.calls else None

    @property
    def service_level(self) -> float | None:
        """Answered within the limit over calls, with the calls abandoned
        within the limit left out (ignored), counted as failures (negative,
        = the timeliness rate) or as successes (positive)."""
        if self.treatment == "negative":
            good, base = self.answered_in_time, self.calls
        elif self.treatment == "positive":
            good, base = self.answered_in_time + self.abandoned, self.calls
        else:
            good, base = self.answered_in_time, self.calls - self.abandoned
        return good / base if base else None

    @property
    def caller_abandoned(self) -> int:  # every caller hang-up before answer, as call centres count
        return self.abandoned_short + self.abandoned_long

    @property
    def abandon_rate(self) -> float | None:
        return self.caller_abandoned / self.calls if self.calls else None

    @property
    def avg_abandon_ms(self) -> float | None:
        return self.abandon_sum_ms / self.caller_abandoned if self.caller_abandoned else None

    @property
    def hung_up_first(self) -> int | None:
        """Calls the agent ended first; None where no call in the group had a
        disconnect signal (the input is not installed, no data)."""
        return self.agent_first if self.hangup_known else None

    @property
    def asa_ms(self) -> float | None:
        return self.answer_sum_ms / self.answered if self.answered else None

    def as_dict(self) -> dict:
        return {
            "group": self.group, "calls": self.calls, "answered": self.answered,
            "answered_in_time": self.answered_in_time, "answered_late": self.answered_late,
            "missed": self.missed, "abandoned": self.abandoned, "outgoing": self.outgoing,
            "timeliness_rate": self.timeliness_rate, "service_level": self.service_level,
            "asa_ms": self.asa_ms, "median_ms": self.median_ms, "p90_ms": self.p90_ms, "max_ms": self.max_ms,
            "caller_abandoned": self.caller_abandoned, "abandoned_short": self.abandoned_short,
            "abandoned_long": self.abandoned_long, "abandon_rate": self.abandon_rate,
            "avg_abandon_ms": self.avg_abandon_ms, "hung_up_first": self.hung_up_first,
            "hangup_known": self.hangup_known, "unsynced": self.unsynced,
            "exceeded_time": self.exceeded_time, "exceeded_rings": self.exceeded_rings,
            "exceeded_both": self.exceeded_both,
        }


@dataclass
class AnswersReport:
    scope: Scope
    by: str
    groups: list[Figures]
    total: Figures
    conventions: Conventions = Conventions()

    @property
    def empty(self) -> bool:
        return self.total.calls == 0 and self.total.outgoing == 0

    @property
    def no_disconnect_input(self) -> list[str]:
        """Groups with calls but no disconnect signal on any of them."""
        return [g.group for g in self.groups if g.hung_up_first is None and (g.answered or g.outgoing)]

    def as_dict(self) -> dict:
        return {"report": "answers", "by": self.by, "from": self.scope.first.isoformat(),
                "to": self.scope.last.isoformat(), "tz": self.scope.tz, "site": self.scope.site,
                "seats": list(self.scope.seats), "conventions": self.conventions.as_dict(),
                "groups": [g.as_dict() for g in self.groups], "total": self.total.as_dict()}


def group_clause(by: str, scope: Scope) -> str:
    if by == "shift-seat":
        return " GROUP BY shift, seat"
    if by in ("seat", "shift", "site"):
        return f" GROUP BY {by}"
    interval = {"day": "1d", "hour": "1h"}[by]
    return f" GROUP BY time({interval}) fill(none)" + tz_clause(scope)


def group_key(by: str, tags: dict, row: dict, scope: Scope) -> tuple[object, str]:
    """(sort key, label) of one result row."""
    if by == "shift-seat":
        shift, seat = tags.get("shift") or "(none)", tags.get("seat") or "(none)"
        return (shift, seat), f"{shift} {seat}"
    if by in ("seat", "shift", "site"):
        value = tags.get(by) or "(none)"
        return value, value
    local = datetime.fromtimestamp(row["time"] / 1000, scope.zone)
    label = local.date().isoformat() if by == "day" else local.strftime("%Y-%m-%d %H:00 %Z")
    return row["time"], label


def _and(cond: str, extra: str) -> str:
    return cond.replace(" WHERE ", f" WHERE {extra} AND ", 1) if cond else f" WHERE {extra}"


def statements(scope: Scope, by: str, conv: Conventions = Conventions()) -> tuple[list[str], str]:
    """(per-group statements: counts per outcome, answered figures,
    outgoing, disconnect signals, agent first, unsynced clocks, short and
    long abandons; the total order-statistics statement)."""
    cond = where(scope)
    grp = group_clause(by, scope)
    by_outcome = grp.replace(" fill(none)", ", outcome fill(none)") if "time(" in grp else grp + ", outcome"
    short = f"ring_ms < {int(conv.short_abandon_ms)}"
    long_ = f"ring_ms >= {int(conv.short_abandon_ms)}"
    return ([COUNT_SELECT + cond + by_outcome, ANSWERED_SELECT + _and(cond, ANSWERED) + grp,
             OUTGOING_SELECT + cond + grp, HANGUP_SELECT + cond + grp,
             AGENT_SELECT + _and(cond, AGENT_FIRST) + grp, UNSYNCED_SELECT + _and(cond, UNSYNCED) + grp,
             ABANDON_SELECT + _and(cond, f"{UNANSWERED} AND {short}") + grp,
             ABANDON_SELECT + _and(cond, f"{UNANSWERED} AND {long_}") + grp,
             EXCEEDED_SELECT + cond + by_outcome.replace("outcome", "exceeded")],
            TOTAL_ORDER_SELECT + _and(cond, ANSWERED))


def _int(value) -> int:
    return int(value or 0)


SUMMED = ("calls", "answered", "answered_in_time", "answered_late", "missed", "abandoned", "outgoing",
          "answer_sum_ms", "abandoned_short", "abandoned_long", "abandon_sum_ms", "hangup_known", "agent_first",
          "unsynced", "exceeded_time", "exceeded_rings", "exceeded_both")


def build(count_rows, answered_rows, outgoing_rows, total_row: dict | None, scope: Scope, by: str,
          extra=((), (), (), (), (), ()), conv: Conventions = Conventions()) -> AnswersReport:
    """Pure: InfluxDB rows -> report (groups sorted, totals derived).
    `extra` holds the rows of the disconnect, agent-first, unsynced, short
    and long abandon, and exceeded-limit statements."""
    groups: dict[object, Figures] = {}

    def get(tags, row) -> Figures:
        key, label = group_key(by, tags, row, scope)
        if key not in groups:
            groups[key] = Figures(group=label, sort_key=key, treatment=conv.treatment)
        return groups[key]

    for tags, row in count_rows:
        f = get(tags, row)
        n = _int(row["calls"])
        f.calls += n
        outcome = tags.get("outcome")
        if outcome in ("answered", "missed", "abandoned"):
            setattr(f, outcome, getattr(f, outcome) + n)
    for tags, row in answered_rows:
        f = get(tags, row)
        f.answered_in_time = _int(row["timely"])
        f.answer_sum_ms = _int(row["answer_sum"])
        f.median_ms, f.p90_ms, f.max_ms = row["median"], row["p90"], row["max"]
    for f in groups.values():
        f.answered_late = f.answered - f.answered_in_time
    for tags, row in outgoing_rows:
        get(tags, row).outgoing = _int(row["outgoing"])
    known_rows, agent_rows, unsynced_rows, short_rows, long_rows, *rest = extra
    for tags, row in (rest[0] if rest else ()):
        if tags.get("exceeded") in EXCEEDED_VALUES:
            f = get(tags, row)
            name = "exceeded_" + tags["exceeded"]
            setattr(f, name, getattr(f, name) + _int(row["n"]))
    for tags, row in known_rows:  # one series per measurement (call, outgoing): add up
        get(tags, row).hangup_known += _int(row["known"])
    for tags, row in agent_rows:
        get(tags, row).agent_first += _int(row["agent"])
    for tags, row in unsynced_rows:
        get(tags, row).unsynced = _int(row["unsynced"])
    for rows, name in ((short_rows, "abandoned_short"), (long_rows, "abandoned_long")):
        for tags, row in rows:
            f = get(tags, row)
            setattr(f, name, _int(row["n"]))
            f.abandon_sum_ms += _int(row["ring_sum"])
    ordered = [groups[k] for k in sorted(groups)]
    total = Figures(group="total", treatment=conv.treatment)
    for f in ordered:
        for name in SUMMED:
            setattr(total, name, getattr(total, name) + getattr(f, name))
    maxima = [f.max_ms for f in ordered if f.max_ms is not None]
    total.max_ms = max(maxima) if maxima else None
    if total_row:
        total.median_ms, total.p90_ms = total_row.get("median"), total_row.get("p90")
    return AnswersReport(scope, by, ordered, total, conv)


def answers(db: InfluxV1, scope: Scope, by: str = "seat", conv: Conventions = Conventions()) -> AnswersReport:
    check_seats(db, scope)
    grouped, total_stmt = statements(scope, by, conv)
    # The total's order statistics need their own scan: run it alongside.
    with ThreadPoolExecutor(max_workers=1) as pool:
        total_future = pool.submit(run, db, [total_stmt])
        count_rows, answered_rows, outgoing_rows, *extra = run(db, grouped)
        total_rows = total_future.result()[0]
    return build(count_rows, answered_rows, outgoing_rows, total_rows[0][1] if total_rows else None, scope, by,
                 extra, conv)


# Answer-time distribution: 2-second bins up to 30 s, then one open bin.
DISTRIBUTION_EDGES_MS = tuple(range(0, 30001, 2000))


def distribution(db: InfluxV1, scope: Scope, edges=DISTRIBUTION_EDGES_MS) -> list[tuple[int, int | None, int]]:
    """(from_ms, to_ms or None for the open bin, answered calls) per bin;
    each bin is counted in the database."""
    cond = _and(where(scope), ANSWERED)
    bounds = list(zip(edges, list(edges[1:]) + [None]))
    stmts = [f"SELECT count(answer_ms) AS n FROM call{cond} AND answer_ms >= {lo}"
             + (f" AND answer_ms < {hi}" if hi is not None else "") for lo, hi in bounds]
    results = run(db, stmts)
    return [(lo, hi, _int(rows[0][1]["n"]) if rows else 0) for (lo, hi), rows in zip(bounds, results)]
