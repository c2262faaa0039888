"""Answer-timeliness report: per group and in total, from the roll-ups of
the `call` and `outgoing` measurements. Definitions in docs/reports.md.

Every figure that adds up (counts, sums, maxima) comes from the roll-ups
(collector/rollup.py): `rollup_day` when the report's zone is the zone the
day roll-ups were made in and the grouping is not by hour, else
`rollup_15m`, whose intervals fall on every zone's day and hour. The rows
are pulled in time slices, in parallel, and grouped here. Raw calls are
read only where they must be: the answer times for exact percentiles when
the scope is small enough (EXACT_MAX), the ring times of unanswered calls
for a short-abandon threshold other than the roll-ups' 5 s. Above
EXACT_MAX the median and p90 come from the roll-ups' 100 ms histograms
(within 50 ms; `percentile_resolution_ms`).

Data stored before the shift label became a field (a `shift` tag on
`call`) is read with the previous statements, aggregated in InfluxDB,
until `seatmon collect migrate` has converted it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from collector import rollup as ru
from collector.influx import InfluxV1
from seatmon.report import agents as agents_mod
from seatmon.report import oldschema
from seatmon.report.query import ReportError, Scope, check_seats, run, tag_literal, time_slices, tz_clause, where
from seatmon.roster.model import UNASSIGNED

BY_CHOICES = ("seat", "shift", "shift-seat", "day", "hour", "site", "agent")
TREATMENTS = ("ignored", "negative", "positive")
SHORT_ABANDON_MS = 5000

# The previous statements, for data stored before the shift label became a
# field (and the benchmark's baseline). InfluxDB 1.x pays per series and per
# aggregate call, and the schema had a series per seat, shift and outcome. So the counts come from one cheap
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
UNSYNCED = "clock != 'ntp' AND clock != 'corrected'"  # corrected: at its true time (collector/reclock.py)
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
    percentile_resolution_ms: int = 0  # 0: median and p90 exact; else within this many ms (histogram)

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
            "percentile_resolution_ms": self.percentile_resolution_ms,
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
                "seats": list(self.scope.seats), "agent": self.scope.agent, "conventions": self.conventions.as_dict(),
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


def total_of(ordered: list[Figures], conv: Conventions) -> Figures:
    """The total row: every additive figure summed, the largest maximum
    (the total's median and p90 cannot be derived from the groups')."""
    total = Figures(group="total", treatment=conv.treatment)
    for f in ordered:
        for name in SUMMED:
            setattr(total, name, getattr(total, name) + getattr(f, name))
    maxima = [f.max_ms for f in ordered if f.max_ms is not None]
    total.max_ms = max(maxima) if maxima else None
    return total


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
    total = total_of(ordered, conv)
    if total_row:
        total.median_ms, total.p90_ms = total_row.get("median"), total_row.get("p90")
    return AnswersReport(scope, by, ordered, total, conv)


def legacy_answers(db: InfluxV1, scope: Scope, by: str, conv: Conventions) -> AnswersReport:
    """The previous statements, aggregated in InfluxDB: for data stored with
    the `shift` tag (before `seatmon collect migrate`)."""
    grouped, total_stmt = statements(scope, by, conv)
    with ThreadPoolExecutor(max_workers=1) as pool:
        total_future = pool.submit(run, db, [total_stmt])
        count_rows, answered_rows, outgoing_rows, *extra = run(db, grouped)
        total_rows = total_future.result()[0]
    return build(count_rows, answered_rows, outgoing_rows, total_rows[0][1] if total_rows else None, scope, by,
                 extra, conv)


# ---- from the roll-ups -----------------------------------------------------------------------

# Percentiles are exact (the answer times themselves, pulled and sorted here)
# up to this many answered calls in the scope, else read from the roll-ups'
# histograms. Measured on the reference machine (docs/performance.md):
# pulling and sorting answer times costs ~3.5 us a call, so 113 000 calls
# (a 50-seat month) add ~0.4 s to a report of ~0.1-0.7 s, and 50 000 (a day
# of 500 seats, a fortnight of 50) at most ~0.2 s.
EXACT_MAX = 50_000
HIST_RESOLUTION_MS = ru.HIST_BIN_MS // 2
WORKERS = 4  # parallel statements: InfluxDB answers them on its own threads
SLICES = 3  # a long range is pulled as this many time slices, in parallel
SUMMED_FIELDS = ("calls", "answered", "timely", "missed", "abandoned", "answer_sum", "short_n", "short_sum",
                 "long_n", "long_sum", "unsynced", "exceeded_time", "exceeded_rings", "exceeded_both",
                 "hangup_known", "agent_first", "outgoing")
# What a report pulls: InfluxDB 1.x pays per field read, so the two figures
# that follow from others are left out (every call is answered, missed or
# abandoned; every unanswered call is a short or a long abandon).
PULLED_FIELDS = tuple(f for f in SUMMED_FIELDS if f not in ("calls", "long_n"))


def has_old_schema(db: InfluxV1) -> bool:
    """True when `call` still has series with the `shift` tag."""
    return oldschema.present(db, ("call",))


def day_rollups_in(db: InfluxV1, scope: Scope) -> bool:
    """Whether the day roll-ups in the report's zone cover the scope: every
    site with 15-minute roll-ups (the site asked for, or all) has day
    roll-ups in that zone. Sites whose collectors keep their days in
    another zone are read from the 15-minute roll-ups. Two index lookups."""
    site = f" AND site = {tag_literal(scope.site)}" if scope.site else ""
    every, in_zone = run(db, [f'SHOW TAG VALUES FROM {ru.MEASUREMENT_15M} WITH KEY = "site"'
                              + (f" WHERE site = {tag_literal(scope.site)}" if scope.site else ""),
                              f'SHOW TAG VALUES FROM {ru.MEASUREMENT_DAY} WITH KEY = "site" '
                              f"WHERE tz = {tag_literal(scope.tz)}{site}"])
    sites = {row.get("value") for _tags, row in every}
    return bool(sites) and sites <= {row.get("value") for _tags, row in in_zone}


def _select(db: InfluxV1, pool, scope: Scope, select: str, measurement: str, extra: str = "",
            group: str = " GROUP BY site, seat"):
    """Submit `SELECT select FROM measurement` over the scope in time slices;
    a future per slice, each giving a list of (tags, columns, values)."""
    head = where(scope, timed=False)
    head = f"SELECT {select} FROM {measurement}" + (head + " AND " if head else " WHERE ")
    tail = (f" AND {extra}" if extra else "") + group

    def one(q):
        out = []
        for series in db.query(q)[0].get("series", []):
            out.append((series.get("tags") or {}, series["columns"], series["values"]))
        return out

    return [pool.submit(one, f"{head}time >= {a}ms AND time < {b}ms{tail}")
            for a, b in time_slices(scope.start_ms, scope.end_ms, SLICES, ru.INTERVAL_MS)]


def _gather(futures) -> list:
    return [s for f in futures for s in f.result()]


class Grouper:
    """(sort key, label) of a group from (site, seat, shift label, time ms);
    the local hour and day of each 15-minute interval worked out once."""

    def __init__(self, by: str, scope: Scope):
        self.by, self.zone = by, scope.zone
        self._times: dict[int, tuple[int, str]] = {}

    def time_key(self, t_ms: int) -> tuple[int, str]:
        start = t_ms - t_ms % ru.INTERVAL_MS
        got = self._times.get(start)
        if got is None:
            local = datetime.fromtimestamp(start / 1000, self.zone)
            if self.by == "hour":  # zone changes fall on whole hours: the hour started `minute` minutes ago
                got = (start - local.minute * 60000, local.strftime("%Y-%m-%d %H:00 %Z"))
            else:
                got = ru.local_day(start, self.zone)
            self._times[start] = got
        return got

    def __call__(self, site, seat, label, t_ms, agent=None) -> tuple[object, str]:
        by = self.by
        if by == "agent":  # rows attributed by agents.split_rollups / split_raw; (unassigned) last
            agent = agent or UNASSIGNED
            return (agent == UNASSIGNED, agent), agent
        if by == "seat":
            return seat or "(none)", seat or "(none)"
        if by == "shift":
            return label or "(none)", label or "(none)"
        if by == "site":
            return site or "(none)", site or "(none)"
        if by == "shift-seat":
            shift, seat = label or "(none)", seat or "(none)"
            return (shift, seat), f"{shift} {seat}"
        return self.time_key(t_ms)


class _Acc:
    __slots__ = ("label", "sums", "max", "hists")

    def __init__(self, label: str):
        self.label, self.sums, self.max, self.hists = label, [0] * len(SUMMED_FIELDS), 0, []


def _rollup_groups(series, grouper: Grouper, fields: tuple[str, ...] = SUMMED_FIELDS) -> dict[object, _Acc]:
    """Group roll-up rows (series of `time`, the summed fields, answer_max,
    answer_hist, shift; the same columns in every series, as one SELECT
    gives them) in Python: rows sorted into their groups first, then each
    group's columns added up at once."""
    groups: dict[object, _Acc] = {}
    if not series:
        return groups
    columns = series[0][1]
    idx = [(j, columns.index(f)) for j, f in enumerate(SUMMED_FIELDS) if f in columns]
    i_time, i_max = columns.index("time"), columns.index("answer_max")
    i_hist = columns.index("answer_hist") if "answer_hist" in columns else None
    i_shift = columns.index("shift") if "shift" in columns else None
    buckets: dict[object, list] = {}
    for tags, cols, values in series:
        if cols != columns:
            raise ValueError("roll-up series with different columns")
        site, seat, agent = tags.get("site"), tags.get("seat"), tags.get("agent")
        for row in values:
            key, label = grouper(site, seat, row[i_shift] if i_shift is not None else None, row[i_time], agent)
            rows = buckets.get(key)
            if rows is None:
                rows = buckets[key] = []
                groups[key] = _Acc(label)
            rows.append(row)
    for key, rows in buckets.items():
        acc = groups[key]
        cols = list(zip(*rows))
        for j, i in idx:
            acc.sums[j] = sum(v for v in cols[i] if v) if None in cols[i] else sum(cols[i])
        acc.max = max((v for v in cols[i_max] if v), default=0)
        if i_hist is not None:
            acc.hists = [h for h in cols[i_hist] if h]
    return groups


def merged_hist(texts: list[str]) -> dict[int, int]:
    """One histogram from many `bin:count,...` texts, parsed and added up
    by numpy (a month of 500 seats holds ~10^6 pairs)."""
    if not texts:
        return {}
    pairs = np.fromstring(",".join(texts).replace(":", ","), dtype=np.int64, sep=",")
    counts = np.bincount(pairs[0::2], weights=pairs[1::2])
    bins = np.flatnonzero(counts)
    return dict(zip(bins.tolist(), counts[bins].astype(np.int64).tolist()))


def _figures(acc: _Acc, key, treatment: str, fields: tuple[str, ...] = SUMMED_FIELDS) -> Figures:
    s = dict(zip(SUMMED_FIELDS, acc.sums))
    if "calls" not in fields and "answered" in fields:
        s["calls"] = s["answered"] + s["missed"] + s["abandoned"]
    if "long_n" not in fields and "short_n" in fields:
        s["long_n"] = s["calls"] - s["answered"] - s["short_n"]
    return Figures(group=acc.label, sort_key=key, treatment=treatment, calls=s["calls"], answered=s["answered"],
                   answered_in_time=s["timely"], answered_late=s["answered"] - s["timely"], missed=s["missed"],
                   abandoned=s["abandoned"], outgoing=s["outgoing"], answer_sum_ms=s["answer_sum"],
                   max_ms=acc.max if s["answered"] else None, abandoned_short=s["short_n"],
                   abandoned_long=s["long_n"], abandon_sum_ms=s["short_sum"] + s["long_sum"],
                   hangup_known=s["hangup_known"], agent_first=s["agent_first"], unsynced=s["unsynced"],
                   exceeded_time=s["exceeded_time"], exceeded_rings=s["exceeded_rings"],
                   exceeded_both=s["exceeded_both"])


def _set_percentiles(f: Figures, values: list[int] | None, hist: dict[int, int] | None) -> None:
    if values is not None:
        f.median_ms, f.p90_ms, f.percentile_resolution_ms = ru.exact_median(values), ru.exact_percentile(values, 90), 0
    elif hist is not None:
        f.median_ms, f.p90_ms = ru.hist_median(hist), ru.hist_percentile(hist, 90)
        f.percentile_resolution_ms = HIST_RESOLUTION_MS if f.median_ms is not None else 0


@dataclass
class Pulled:
    """What one pull of the roll-ups (and raw calls where needed) gave."""

    reports: dict[str, AnswersReport]  # per grouping asked for
    hist: dict[int, int]  # the scope's answer-time histogram (empty unless asked for)

    @property
    def report(self) -> AnswersReport:
        return next(iter(self.reports.values()))


def _raw_groups(series, grouper: Grouper) -> dict[object, list]:
    """Raw rows (time, one value, maybe shift) per group: the values."""
    out: dict[object, list] = {}
    for tags, columns, values in series:
        site, seat, agent = tags.get("site"), tags.get("seat"), tags.get("agent")
        i_time = columns.index("time")
        i_shift = columns.index("shift") if "shift" in columns else None
        for row in values:
            key, _label = grouper(site, seat, row[i_shift] if i_shift is not None else None, row[i_time], agent)
            out.setdefault(key, []).append(row[1])
    return out


def _build(series, raw_answers, raw_rings, scope: Scope, by: str, conv: Conventions, percentiles: bool,
           exact_max: int, fields: tuple[str, ...]) -> tuple[AnswersReport, dict[int, int]]:
    """Pure: roll-up rows (and raw answer and ring times, when pulled) ->
    (report, the scope's histogram when the rows carry it)."""
    grouper = Grouper(by, scope)
    groups = _rollup_groups(series, grouper, fields)
    figures = {key: _figures(acc, key, conv.treatment, fields) for key, acc in groups.items()}
    if raw_rings is not None:  # another short-abandon threshold than the roll-ups' own
        for f in figures.values():
            f.abandoned_short = f.abandoned_long = f.abandon_sum_ms = 0
        for key, rings in _raw_groups(raw_rings, grouper).items():
            f = figures.get(key)
            for ring in rings if f is not None else ():
                ring = ring or 0
                if ring < conv.short_abandon_ms:
                    f.abandoned_short += 1
                else:
                    f.abandoned_long += 1
                f.abandon_sum_ms += ring
    ordered = [figures[k] for k in sorted(figures)]
    total = total_of(ordered, conv)
    hists = {key: merged_hist(acc.hists) for key, acc in groups.items() if acc.hists}
    scope_hist: dict[int, int] = {}
    for h in hists.values():
        for b, c in h.items():
            scope_hist[b] = scope_hist.get(b, 0) + c
    if percentiles and total.answered:
        if raw_answers is not None:
            every = []
            for key, values in _raw_groups(raw_answers, grouper).items():
                every += values
                if key in figures:
                    _set_percentiles(figures[key], values, None)
            _set_percentiles(total, every, None)
        else:
            for key, f in figures.items():
                _set_percentiles(f, None, hists.get(key, {}))
            _set_percentiles(total, None, scope_hist)
    return AnswersReport(scope, by, ordered, total, conv), scope_hist


def pull(db: InfluxV1, scope: Scope, bys, conv: Conventions = Conventions(), *, percentiles: bool = True,
         hist: bool = False, exact_max: int | None = None, fields: tuple[str, ...] = PULLED_FIELDS,
         timeline: agents_mod.Timeline | Future | None = None) -> Pulled:
    """The reports grouped by each of `bys` (one name or several) from one
    pull of the roll-ups. `percentiles=False` leaves median and p90 out
    (pages that do not show them); `hist=True` also returns the scope's
    answer-time histogram; `fields` narrows the figures read (the rest 0);
    `timeline`: the roster, when the caller has read it (or is reading it: a Future)."""
    bys = (bys,) if isinstance(bys, str) else tuple(bys)
    exact_max = EXACT_MAX if exact_max is None else exact_max
    # Per agent: every row is attributed (agents.py), so it needs its label and call times.
    per_agent = "agent" in bys or bool(scope.agent)
    with ThreadPoolExecutor(WORKERS) as pool:
        shift = ", shift" if per_agent or any(by in ("shift", "shift-seat") for by in bys) else ""
        select = ", ".join(fields) + ", answer_max" + (", answer_hist" if percentiles or hist else "") + shift
        read = scope  # what is read: for one agent, only the seats it held
        if per_agent:
            select += ", first_ms, last_ms"
            # The roster is read beside the roll-ups, unless --agent narrows what they read.
            tl_future = timeline if isinstance(timeline, Future) else pool.submit(
                lambda: timeline or agents_mod.timeline(db, scope))
            if scope.agent:
                tl = tl_future.result()
                agents_mod.check_agent(scope, tl)
                read = agents_mod.narrowed(scope, tl)
        day_tz = scope.tz if "hour" not in bys and day_rollups_in(db, scope) else None
        if day_tz:
            futures = _select(db, pool, read, select, ru.MEASUREMENT_DAY, f"tz = {tag_literal(scope.tz)}")
        else:
            futures = _select(db, pool, read, select, ru.MEASUREMENT_15M)
        rings = None
        if conv.short_abandon_ms != ru.SHORT_ABANDON_MS:  # the roll-ups split at 5 s only: read the ring times
            rings = _select(db, pool, read, "ring_ms" + shift, "call", "outcome != 'answered'")
        series = _gather(futures)
        if per_agent:
            tl = tl_future.result()
            series = agents_mod.split_rollups(db, series, tl, day_tz, scope.agent)
        answered = sum(row[columns.index("answered")] or 0 for _tags, columns, values in series
                       for row in values) if "answered" in fields else 0
        raw_answers = None
        if percentiles and 0 < answered <= exact_max:
            raw_answers = _gather(_select(db, pool, read, "answer_ms" + shift, "call", "outcome = 'answered'"))
        rings = _gather(rings) if rings is not None else None
        if per_agent:
            raw_answers = agents_mod.split_raw(raw_answers, tl, scope.agent) if raw_answers is not None else None
            rings = agents_mod.split_raw(rings, tl, scope.agent) if rings is not None else None
    reports, scope_hist = {}, {}
    for by in bys:
        reports[by], scope_hist = _build(series, raw_answers, rings, scope, by, conv, percentiles, exact_max, fields)
    return Pulled(reports, scope_hist)


def hour_grid(db: InfluxV1, scope: Scope, conv: Conventions = Conventions()) -> AnswersReport:
    """Calls and calls answered in time per local hour (the monthly page's
    grid), summed by InfluxDB over the 15-minute roll-ups: two sums in a few
    hundred buckets cost less than pulling every 15-minute row."""
    q = (f"SELECT sum(calls) AS calls, sum(timely) AS timely FROM {ru.MEASUREMENT_15M}{where(scope)}"
         " GROUP BY time(1h) fill(none)" + tz_clause(scope))
    groups = []
    for tags, row in run(db, [q])[0]:
        key, label = group_key("hour", tags, row, scope)
        groups.append(Figures(group=label, sort_key=key, treatment=conv.treatment, calls=_int(row["calls"]),
                              answered_in_time=_int(row["timely"])))
    total = Figures(group="total", treatment=conv.treatment, calls=sum(g.calls for g in groups),
                    answered_in_time=sum(g.answered_in_time for g in groups))
    return AnswersReport(scope, "hour", groups, total, conv)


def answers(db: InfluxV1, scope: Scope, by: str = "seat", conv: Conventions = Conventions(),
            exact_max: int | None = None) -> AnswersReport:
    check_seats(db, scope)
    if has_old_schema(db):
        if by == "agent" or scope.agent:
            raise ReportError("per-agent figures need the data migrated first: run seatmon collect migrate")
        oldschema.note("answers")
        return legacy_answers(db, scope, by, conv)
    return pull(db, scope, by, conv, exact_max=exact_max).report


# Answer-time distribution: 2-second bins up to 30 s, then one open bin.
DISTRIBUTION_EDGES_MS = tuple(range(0, 30001, 2000))


def bins_from_hist(hist: dict[int, int], edges=DISTRIBUTION_EDGES_MS) -> list[tuple[int, int | None, int]]:
    """(from_ms, to_ms or None for the open bin, answered calls) per bin,
    from the 100 ms histogram: every edge is a multiple of 100 ms, so exact."""
    bounds = list(zip(edges, list(edges[1:]) + [None]))
    out = []
    for lo, hi in bounds:
        lo_b = lo // ru.HIST_BIN_MS
        hi_b = hi // ru.HIST_BIN_MS if hi is not None else None
        out.append((lo, hi, sum(c for b, c in hist.items() if b >= lo_b and (hi_b is None or b < hi_b))))
    return out


def legacy_distribution(db: InfluxV1, scope: Scope, edges=DISTRIBUTION_EDGES_MS) -> list[tuple[int, int | None, int]]:
    """Each bin counted in the database (data of the old schema)."""
    cond = _and(where(scope), ANSWERED)
    bounds = list(zip(edges, list(edges[1:]) + [None]))
    stmts = [f"SELECT count(answer_ms) AS n FROM call{cond} AND answer_ms >= {lo}"
             + (f" AND answer_ms < {hi}" if hi is not None else "") for lo, hi in bounds]
    results = run(db, stmts)
    return [(lo, hi, _int(rows[0][1]["n"]) if rows else 0) for (lo, hi), rows in zip(bounds, results)]


def distribution(db: InfluxV1, scope: Scope, edges=DISTRIBUTION_EDGES_MS) -> list[tuple[int, int | None, int]]:
    """(from_ms, to_ms or None for the open bin, answered calls) per bin."""
    if has_old_schema(db):
        return legacy_distribution(db, scope, edges)
    return bins_from_hist(pull(db, scope, "site", percentiles=False, hist=True).hist, edges)
