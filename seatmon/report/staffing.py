"""Busy and idle per interval, day and shift, with the seats Erlang C says
the site's target needs beside the seats staffed. Definitions in
docs/reports.md ("Staffing").

Calls offered, answered, talk and outgoing time come from the roll-ups
(docs/schema.md). The staffed seat time runs from the first to the last
event of each seat's shift: its shift-start self-test and shift-end check
(few points), and its first and last call or outgoing call.

With day roll-ups in the report's zone, InfluxDB sums the 15-minute
roll-ups per interval, and the day roll-ups
give the figures per label and each seat's first and last call time per
label. Otherwise (another zone, or day roll-ups stored before they kept
those times) the 15-minute roll-ups are read per seat and added up here,
with their first and last call times; only where rows stored before those
times were kept show calls in a quarter hour that may reach past a shift's
checks is that quarter hour's first or last call read (one small statement
per shift name and quarter hour). No call is read one by one. Data
stored before the shift label became a field is read with the previous
statements (seatmon/report/oldschema.py). The queueing arithmetic is
pyworkforce's Erlang C.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from collector.influx import InfluxV1
from collector import rollup as ru
from collector.schema import shift_name
from seatmon.report import agents as agents_mod
from seatmon.report import answers as answers_mod
from seatmon.report import oldschema
from seatmon.report.query import Scope, check_seats, run, tag_literal, time_slices, where

BY_CHOICES = ("interval", "shift", "day", "agent")
INTERVALS = (15, 30, 60)  # minutes
DAY_MS = 86_400_000

OFFERED_SELECT = "SELECT count(ring_ms) AS offered FROM call"
ANSWERED_SELECT = "SELECT count(ring_ms) AS answered, count(talk_ms) AS talked, sum(talk_ms) AS talk FROM call"
OUTGOING_SELECT = "SELECT count(talk_ms) AS n, sum(talk_ms) AS talk FROM outgoing"
# A seat is staffed over a shift from the first to the last event it stamped
# with that shift's label: its shift-start self-test, calls, its shift-end check.
SPAN_FROM = "call, outgoing, selftest, shift_end"
SPAN_MEASUREMENTS = ("call", "outgoing", "selftest", "shift_end")
BOUNDS_FROM = "selftest, shift_end"  # few points, each bounding its shift
ROLLED_FROM = "call, outgoing"  # many points: their spans come from the roll-ups and the edge statements
EDGE_CHUNK = 60  # edge statements per request
ROLLUP_SELECT = ("SELECT calls, answered, talk_n, talk_sum, outgoing, out_talk_sum, first_ms, last_ms, shift"
                 f" FROM {ru.MEASUREMENT_15M}")
# With day roll-ups in the report's zone: the site's figures per interval
# summed by InfluxDB, and per seat, label and day the figures and the times
# of the first and last call (so spans need no call read).
SUMS_SELECT = ("SELECT sum(calls), sum(answered), sum(talk_n), sum(talk_sum), sum(outgoing), sum(out_talk_sum)"
               f" FROM {ru.MEASUREMENT_15M}")
# Without interval rows (by day, by shift) the intervals only give the seats
# needed: offered, talk and outgoing talk time (InfluxDB's time is per field).
PEAK_SELECT = f"SELECT sum(calls), sum(talk_n), sum(talk_sum), sum(out_talk_sum) FROM {ru.MEASUREMENT_15M}"
PEAK_AT = (0, 2, 3, 5)  # where PEAK_SELECT's sums go in FIGURES
DAY_SELECT = (f"SELECT calls, answered, talk_n, talk_sum, outgoing, out_talk_sum, first_ms, last_ms, shift"
              f" FROM {ru.MEASUREMENT_DAY}")
SUM_SLICES = 4  # the sums per interval, read in this many time slices side by side


@dataclass(frozen=True)
class Target:
    """The site's service target: `service_level` of the calls answered
    within `within_ms`; no seat busier than `max_occupancy` on average."""

    service_level: float = 0.9
    within_ms: int = 10000
    max_occupancy: float = 1.0

    def as_dict(self) -> dict:
        return {"service_level": self.service_level, "within_ms": self.within_ms,
                "max_occupancy": self.max_occupancy}


def erlang_c_seats(offered: int, aht_ms: float | None, length_ms: int, target: Target) -> int:
    """Seats that answer `target.service_level` of `offered` calls arriving
    over `length_ms` within `target.within_ms`, each taking `aht_ms`
    (Erlang C, pyworkforce). No calls (or no handle time) need no seat."""
    if not offered or not aht_ms or length_ms <= 0:
        return 0
    from pyworkforce.queuing import ErlangC  # imported on use: it brings pandas and ortools along

    # pyworkforce takes any one time unit; minutes, as its docs use.
    ec = ErlangC(transactions=offered, aht=aht_ms / 60000, asa=max(target.within_ms, 1) / 60000,
                 interval=length_ms / 60000)
    # The smallest number of seats above the load that meets the target
    # (pyworkforce's own search starts at round(load + 1), which can skip it).
    seats = math.floor(ec.intensity) + 1
    while ec.service_level(seats) < target.service_level:
        seats += 1
    return max(seats, math.ceil(ec.intensity / target.max_occupancy))


@dataclass
class Load:
    """One row. Times in ms; None where undefined."""

    group: str
    start_ms: int
    length_ms: int
    offered: int = 0
    answered: int = 0
    talked: int = 0  # answered calls with a talk time
    talk_ms: int = 0  # of answered incoming calls
    outgoing: int = 0
    outgoing_ms: int = 0
    staffed_ms: int = 0
    seats_needed: int | None = None
    aht_fallback_ms: float | None = None  # the whole range's, for rows with calls but no talk measured
    # Days, shifts and the total: needed and short are those of their busiest interval.
    intervals: list[Load] | None = None
    sort_key: object = None

    @property
    def aht_ms(self) -> float | None:
        return self.talk_ms / self.talked if self.talked else None

    @property
    def busy_ms(self) -> int:  # outgoing calls count as busy
        return self.talk_ms + self.outgoing_ms

    @property
    def idle_ms(self) -> int:
        return self.staffed_ms - self.busy_ms

    @property
    def occupancy(self) -> float | None:
        return self.busy_ms / self.staffed_ms if self.staffed_ms else None

    @property
    def seats_staffed(self) -> float:  # average seats staffed over the row's time
        return self.staffed_ms / self.length_ms if self.length_ms else 0.0

    @property
    def load_erlangs(self) -> float:
        """Incoming workload in Erlangs (calls x handle time / time)."""
        aht = self.aht_ms or self.aht_fallback_ms or 0
        return self.offered * aht / self.length_ms if self.length_ms else 0.0

    @property
    def shortfall(self) -> float | None:
        """Seats needed beyond the average staffed; for days, shifts and the
        total the largest of their intervals'."""
        if self.intervals is not None:
            return max((iv.shortfall or 0.0 for iv in self.intervals), default=None)
        return None if self.seats_needed is None else max(self.seats_needed - self.seats_staffed, 0.0)

    def needed_here(self, target: Target) -> int:
        """Erlang C seats for the incoming calls, plus the outgoing load in
        whole seats: outgoing calls hold a seat but never queue."""
        aht = self.aht_ms or self.aht_fallback_ms
        out = math.ceil(self.outgoing_ms / self.length_ms) if self.length_ms else 0
        return erlang_c_seats(self.offered, aht, self.length_ms, target) + out

    def as_dict(self) -> dict:
        return {"group": self.group, "start_ms": self.start_ms, "length_ms": self.length_ms,
                "offered": self.offered, "answered": self.answered, "outgoing": self.outgoing,
                "talk_ms": self.talk_ms, "outgoing_ms": self.outgoing_ms, "busy_ms": self.busy_ms,
                "aht_ms": self.aht_ms, "staffed_ms": self.staffed_ms, "idle_ms": self.idle_ms,
                "occupancy": self.occupancy, "seats_staffed": self.seats_staffed,
                "load_erlangs": self.load_erlangs, "seats_needed": self.seats_needed,
                "shortfall": self.shortfall}


SUMMED = ("offered", "answered", "talked", "talk_ms", "outgoing", "outgoing_ms", "staffed_ms")


@dataclass
class StaffingReport:
    scope: Scope
    by: str
    interval_min: int
    target: Target
    groups: list[Load]
    total: Load

    @property
    def empty(self) -> bool:
        return self.total.offered == 0 and self.total.outgoing == 0 and self.total.staffed_ms == 0

    def as_dict(self) -> dict:
        return {"report": "staffing", "by": self.by, "interval_min": self.interval_min,
                "from": self.scope.first.isoformat(), "to": self.scope.last.isoformat(), "tz": self.scope.tz,
                "site": self.scope.site, "seats": list(self.scope.seats), "agent": self.scope.agent, "target": self.target.as_dict(),
                "groups": [g.as_dict() for g in self.groups], "total": self.total.as_dict()}


def _step_ms(interval_min: int) -> int:
    return interval_min * 60_000


def _wide(scope: Scope) -> str:
    """The range's condition, a day wider either side, so shifts crossing
    the range's edges are whole."""
    return where(scope).replace(f"time >= {scope.start_ms}ms", f"time >= {scope.start_ms - DAY_MS}ms").replace(
        f"time < {scope.end_ms}ms", f"time < {scope.end_ms + DAY_MS}ms")


def statements(scope: Scope) -> list[str]:
    """Today's schema: the 15-minute roll-ups per seat, and the labelled
    shift-start and shift-end events, both a day wider than the range. The
    roll-ups give every figure but the staffed time (a call belongs to the
    interval of its first ring, its point's time, as in the previous
    statements) and, per seat and label, the first and last 15 minutes with
    calls; the self-tests and shift-end checks bound most spans exactly."""
    return [ROLLUP_SELECT + _wide(scope) + " GROUP BY site, seat",
            f"SELECT shift FROM {BOUNDS_FROM}{_wide(scope)} GROUP BY site, seat"]


def edge_statements(scope: Scope, rolled, bounds) -> tuple[list[str], list[tuple[str, str, set]]]:
    """Where a seat's calls may reach past its shift's self-test or shift-end
    check (or it has neither), the exact first or last call of that label
    is read in its first or last 15 minutes with calls: one statement per
    shift name and such quarter hour, for every seat in it (first() and
    last() without GROUP BY time() answer the event's own time). Returns the
    statements and, per statement, (first|last, name, keys it serves)."""
    wanted: dict[tuple[str, str, int], set] = {}
    for key, (i0, i1) in rolled.items():
        bound = bounds.get(key)
        name = shift_name(key[2]) or key[2]
        if bound is None or i0 <= bound[0]:
            wanted.setdefault(("first", name, i0), set()).add(key)
        if bound is None or i1 + ru.INTERVAL_MS > bound[1]:
            wanted.setdefault(("last", name, i1), set()).add(key)
    stmts, meta = [], []
    base = where(scope, timed=False)
    for (fn, name, t), keys in sorted(wanted.items()):
        cond = (base + " AND " if base else " WHERE ") + (
            f"shift_name = {tag_literal(name)} AND time >= {t}ms AND time < {t + ru.INTERVAL_MS}ms")
        stmts.append(f"SELECT {fn}(shift) AS shift FROM {ROLLED_FROM}{cond} GROUP BY site, seat")
        meta.append((fn, name, keys))
    return stmts, meta


def day_statements(scope: Scope, interval_min: int, intervals: bool = True) -> list[str]:
    """Today's schema with day roll-ups in the report's zone: the sums of
    the 15-minute roll-ups per interval (InfluxDB's buckets of the interval's
    length from the range's start: the report's intervals, as the quarter
    hours make them up whole; fewer buckets cost InfluxDB less), in
    SUM_SLICES time slices side by side, and the day rows per seat from two
    days before the range to a day after it (spans that cross the range's
    edges are whole)."""
    head = where(scope, timed=False)
    head = head + " AND " if head else " WHERE "
    step = _step_ms(interval_min)
    group = f" GROUP BY time({step}ms, {scope.start_ms % step}ms) fill(none)"
    select = SUMS_SELECT if intervals else PEAK_SELECT
    sums = [f"{select}{head}time >= {a}ms AND time < {b}ms{group}"
            for a, b in time_slices(scope.start_ms, scope.end_ms, SUM_SLICES, step)]
    days = (f"{DAY_SELECT}{head}tz = {tag_literal(scope.tz)} AND time >= {scope.start_ms - 2 * DAY_MS}ms"
            f" AND time < {scope.end_ms + DAY_MS}ms GROUP BY site, seat")
    return sums + [days]


def from_day_rollups(sum_series: list[dict], day_series: list[dict], start_ms: int, end_ms: int):
    """Pure: the sums per interval (SUMS_SELECT's or PEAK_SELECT's) and the
    day roll-up series -> (figures per interval start, per label, per day
    start, and (site, seat, label) -> [first, last] call time), or None when
    a day row does not know its times (stored before they were kept)."""
    at: dict[int, list[int]] = {}
    for series in sum_series:
        peak = len(series["columns"]) == len(PEAK_AT) + 1
        for values in series["values"]:
            fig = [int(v or 0) for v in values[1:]]
            if peak:
                full = [0] * len(FIGURES)
                for i, v in zip(PEAK_AT, fig):
                    full[i] = v
                fig = full
            at[values[0]] = fig
    per_shift: dict[str, list[int]] = {}
    per_day: dict[int, list[int]] = {}
    seen: dict[tuple[str, str, str], list[int]] = {}
    for series in day_series:
        tags = series.get("tags") or {}
        site, seat = tags.get("site") or "", tags.get("seat") or ""
        cols = _columns(series, ROLLUP_FIGURES + ("first_ms", "last_ms", "shift"))
        for values in series["values"]:
            row = [values[c] for c in cols]
            fig, first_ms, last_ms, label = [int(v or 0) for v in row[:6]], row[6], row[7], row[8]
            if not first_ms and (fig[0] or fig[4]):
                return None
            if label and first_ms:
                have = seen.get((site, seat, label))
                if have is None:
                    seen[(site, seat, label)] = [first_ms, last_ms]
                else:
                    have[0], have[1] = min(have[0], first_ms), max(have[1], last_ms)
            if start_ms <= values[0] < end_ms:
                _sum_into(per_shift, label or "(none)", fig)
                _sum_into(per_day, values[0], fig)
    return at, per_shift, per_day, seen


def old_statements(scope: Scope, interval_min: int, by_shift: bool) -> list[str]:
    """The statements for data stored with the label as a `shift` tag:
    per interval offered, answered + talk, outgoing; the spans' first and
    last events per shift tag; per shift tag the same three when `by_shift`."""
    step = _step_ms(interval_min)
    cond = where(scope)
    grp = f" GROUP BY time({step}ms, {scope.start_ms % step}ms) fill(none)"
    answered = cond + " AND outcome = 'answered'"
    out = [OFFERED_SELECT + cond + grp, ANSWERED_SELECT + answered + grp, OUTGOING_SELECT + cond + grp]
    out += [f"SELECT first(seq) AS seq FROM {SPAN_FROM}{_wide(scope)} GROUP BY site, seat, shift",
            f"SELECT last(seq) AS seq FROM {SPAN_FROM}{_wide(scope)} GROUP BY site, seat, shift"]
    if by_shift:
        out += [OFFERED_SELECT + cond + " GROUP BY shift", ANSWERED_SELECT + answered + " GROUP BY shift",
                OUTGOING_SELECT + cond + " GROUP BY shift"]
    return out


def spans(first_rows, last_rows) -> dict[tuple[str, str, str], list[int]]:
    """(site, seat, shift) -> [first event ms, last event ms] from rows
    holding the label as tag or column `shift`; events without a shift
    label staff nothing."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for rows, pick in ((first_rows, min), (last_rows, max)):
        for tags, row in rows:
            label = row.get("shift") or tags.get("shift")
            if not label:
                continue
            key = (tags.get("site") or "", tags.get("seat") or "", label)
            span = out.setdefault(key, [row["time"], row["time"]])
            idx = 0 if pick is min else 1
            span[idx] = pick(span[idx], row["time"])
    return out


FIGURES = ("offered", "answered", "talked", "talk_ms", "outgoing", "outgoing_ms")
ROLLUP_FIGURES = ("calls", "answered", "talk_n", "talk_sum", "outgoing", "out_talk_sum")  # the same, rolled up


def _add(load: Load, fig: list[int]) -> None:
    for name, value in zip(FIGURES, fig):
        setattr(load, name, getattr(load, name) + value)


def _sum_into(acc: dict, key, fig) -> None:
    have = acc.get(key)
    if have is None:
        acc[key] = [int(v or 0) for v in fig]
    else:
        for i, v in enumerate(fig):
            have[i] += int(v or 0)


@dataclass
class Inputs:
    """What a report is built from, whichever schema it was read from:
    figures (in FIGURES order) at a time, to add into the interval holding
    that time; figures per shift label; (site, seat, label) -> [first, last
    event ms]. With `per_day` (figures per local day start), `at` holds only
    what the seats needed take (no answered or outgoing counts): the days'
    and the total's figures come from `per_day`, and there are no interval
    rows."""

    at: dict[int, list[int]]
    per_shift: dict[str, list[int]]
    seat_spans: dict[tuple[str, str, str], list[int]]
    per_day: dict[int, list[int]] | None = None


def _columns(series: dict, names) -> list[int]:
    cols = series["columns"]
    return [cols.index(n) for n in names]


def _labelled_spans(series_list: list[dict]) -> dict[tuple[str, str, str], list[int]]:
    """(site, seat, label) -> [first, last] time of the rows of series
    grouped by site and seat with a `shift` column."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for series in series_list:
        tags = series.get("tags") or {}
        site, seat = tags.get("site") or "", tags.get("seat") or ""
        label_at = series["columns"].index("shift")
        # A series is in time order and its labels come in runs: one step per run, not per row.
        for label, run_ in groupby(series["values"], key=itemgetter(label_at)):
            first_row = next(run_)
            last_row = (deque(run_, maxlen=1) or [first_row])[0]
            if not label:  # events without a shift label staff nothing
                continue
            span = out.get((site, seat, label))
            if span is None:
                out[(site, seat, label)] = [first_row[0], last_row[0]]
            else:
                span[0], span[1] = min(span[0], first_row[0]), max(span[1], last_row[0])
    return out


def from_rollups(rollup_series: list[dict], start_ms: int, end_ms: int):
    """Pure: roll-up series (grouped by site, seat) -> (figures per interval
    start in [start, end), figures per label, per (site, seat, label) the
    first and last interval start with calls, and the same keys' first and
    last call times, or None when a row does not know them: stored before
    they were kept). Read column by column, not as dicts: a month of a site
    is ~10^5 rows."""
    at: dict[int, list[int]] = {}
    per_shift: dict[str, list[int]] = {}
    rolled: dict[tuple[str, str, str], list[int]] = {}
    exact: dict[tuple[str, str, str], list[int]] | None = {}
    for series in rollup_series:
        tags = series.get("tags") or {}
        site, seat = tags.get("site") or "", tags.get("seat") or ""
        c0, c1, c2, c3, c4, c5 = _columns(series, ROLLUP_FIGURES)
        label_at = series["columns"].index("shift")
        first_at, last_at = _columns(series, ("first_ms", "last_ms"))
        for values in series["values"]:  # written whole by the collector: no figure is null
            t, label = values[0], values[label_at]
            if label:
                have = rolled.get((site, seat, label))
                if have is None:
                    rolled[(site, seat, label)] = [t, t]
                else:
                    have[0], have[1] = min(have[0], t), max(have[1], t)
                t0, t1 = values[first_at], values[last_at]
                if not t0:
                    exact = None
                elif exact is not None:
                    have = exact.get((site, seat, label))
                    if have is None:
                        exact[(site, seat, label)] = [t0, t1]
                    else:
                        have[0], have[1] = min(have[0], t0), max(have[1], t1)
            if not start_ms <= t < end_ms:  # read a day wider, for the spans only
                continue
            for acc, key in ((at, t), (per_shift, label or "(none)")):
                have = acc.get(key)
                if have is None:
                    acc[key] = [values[c0], values[c1], values[c2], values[c3], values[c4], values[c5]]
                else:
                    have[0] += values[c0]
                    have[1] += values[c1]
                    have[2] += values[c2]
                    have[3] += values[c3]
                    have[4] += values[c4]
                    have[5] += values[c5]
    return at, per_shift, rolled, exact


def join_spans(bounds, rolled, meta, edge_results) -> tuple[dict[tuple[str, str, str], list[int]], list]:
    """Pure: each seat's span per label from its self-test and shift-end
    times and the edge statements' answers; keys an edge statement did not
    answer for (another label of the name came first there) are returned
    in the second item, to be read point by point."""
    spans_ = {key: list(b) for key, b in bounds.items()}
    missing = []
    for (fn, _name, keys), rows in zip(meta, edge_results):
        found: dict[tuple, int] = {}
        pick = min if fn == "first" else max
        for tags, row in rows:
            key = (tags.get("site") or "", tags.get("seat") or "", row.get("shift"))
            if key in keys:
                found[key] = pick(found.get(key, row["time"]), row["time"])
        for key in keys:
            if key not in found:
                missing.append((fn, key))
                continue
            span = spans_.setdefault(key, [found[key], found[key]])
            span[0], span[1] = min(span[0], found[key]), max(span[1], found[key])
    return spans_, missing


def _old_fig(kind: str, row: dict) -> list:
    if kind == "offered":
        return [row.get("offered"), 0, 0, 0, 0, 0]
    if kind == "answered":
        return [0, row.get("answered"), row.get("talked"), row.get("talk"), 0, 0]
    return [0, 0, 0, 0, row.get("n"), row.get("talk")]


def inputs_from_old(results) -> Inputs:
    """Pure: the rows of old_statements() -> Inputs."""
    offered, answered, outgoing, first_rows, last_rows, *per_shift = results
    at: dict[int, list[int]] = {}
    for rows, kind in ((offered, "offered"), (answered, "answered"), (outgoing, "outgoing")):
        for _tags, row in rows:
            _sum_into(at, row["time"], _old_fig(kind, row))
    shifts: dict[str, list[int]] = {}
    for rows, kind in zip(per_shift, ("offered", "answered", "outgoing")):
        for tags, row in rows:
            _sum_into(shifts, tags.get("shift") or "(none)", _old_fig(kind, row))
    return Inputs(at, shifts, spans(first_rows, last_rows))


def _interval_label(start_ms: int, scope: Scope) -> str:
    return datetime.fromtimestamp(start_ms / 1000, scope.zone).strftime("%Y-%m-%d %H:%M %Z")


def build(inputs: Inputs, scope: Scope, by: str, interval_min: int, target: Target) -> StaffingReport:
    """Pure: Inputs -> report."""
    step = _step_ms(interval_min)
    seat_spans = inputs.seat_spans
    intervals: dict[int, Load] = {}

    first, end = scope.start_ms, scope.end_ms  # properties that compute: read once

    def interval(t: int) -> Load:
        start = first + (t - first) // step * step
        if start not in intervals:
            intervals[start] = Load(_interval_label(start, scope), start, min(step, end - start), sort_key=start)
        return intervals[start]

    for t, fig in inputs.at.items():
        _add(interval(t), fig)
    staffed: dict[int, int] = {}
    for s0, s1 in seat_spans.values():  # staffed seat time, cut at the interval edges
        s0, s1 = max(s0, first), min(s1, end)
        t = first + (s0 - first) // step * step if s1 > s0 else s1
        while t < s1:
            staffed[t] = staffed.get(t, 0) + min(s1, t + step) - max(s0, t)
            t += step
    for t in sorted(staffed):
        interval(t).staffed_ms += staffed[t]
    ivs = [intervals[k] for k in sorted(intervals)]
    total = Load("total", scope.start_ms, scope.end_ms - scope.start_ms)
    per_day = inputs.per_day
    if per_day is not None and by == "interval":
        raise ValueError("inputs read without interval figures cannot give interval rows")
    for iv in ivs:
        for name in (SUMMED if per_day is None else ("staffed_ms",)):
            setattr(total, name, getattr(total, name) + getattr(iv, name))
    if per_day is not None:
        for fig in per_day.values():
            _add(total, fig)
    for iv in ivs:
        iv.aht_fallback_ms = total.aht_ms
        iv.seats_needed = iv.needed_here(target)
    _peak(total, ivs)

    if by == "interval":
        groups = ivs
    elif by == "day":
        days: dict[str, Load] = {}
        for iv in ivs:
            day = datetime.fromtimestamp(iv.start_ms / 1000, scope.zone).date()
            if day.isoformat() not in days:
                start = Scope(day, day, scope.tz)
                days[day.isoformat()] = Load(day.isoformat(), start.start_ms, start.end_ms - start.start_ms,
                                             intervals=[], sort_key=start.start_ms)
            d = days[day.isoformat()]
            for name in (SUMMED if per_day is None else ("staffed_ms",)):
                setattr(d, name, getattr(d, name) + getattr(iv, name))
            d.intervals.append(iv)  # type: ignore[union-attr]  # set just above
        groups = [days[k] for k in sorted(days)]
        for d in groups:
            if per_day is not None:
                _add(d, per_day.get(d.start_ms, [0] * len(FIGURES)))
            _peak(d, d.intervals or [])
    else:
        groups = _shift_rows(inputs.per_shift, seat_spans, ivs, scope, total)
    return StaffingReport(scope, by, interval_min, target, groups, total)


def _peak(load: Load, ivs: list[Load]) -> None:
    load.intervals = ivs
    load.seats_needed = max((iv.seats_needed or 0 for iv in ivs), default=None)


def _shift_rows(per_shift, seat_spans, ivs: list[Load], scope: Scope, total: Load) -> list[Load]:
    """One row per shift label: its calls by tag, its seats' spans inside
    the range; its window runs from the first span's start to the last
    span's end, and it needs the most any interval centred in it needs."""
    windows: dict[str, list[int]] = {}
    staffed: dict[str, int] = {}
    first, end = scope.start_ms, scope.end_ms
    for (_site, _seat, shift), (s0, s1) in seat_spans.items():
        s0, s1 = max(s0, first), min(s1, end)
        if s1 <= s0:
            continue
        w = windows.setdefault(shift, [s0, s1])
        w[0], w[1] = min(w[0], s0), max(w[1], s1)
        staffed[shift] = staffed.get(shift, 0) + s1 - s0
    rows: dict[str, Load] = {}

    def row(shift: str) -> Load:
        if shift not in rows:
            w = windows.get(shift, [scope.start_ms, scope.start_ms])
            rows[shift] = Load(shift, w[0], w[1] - w[0], staffed_ms=staffed.get(shift, 0))
        return rows[shift]

    for shift in windows:
        row(shift)
    for shift, fig in per_shift.items():
        _add(row(shift), fig)
    for load in rows.values():
        load.aht_fallback_ms = total.aht_ms
        _peak(load, [iv for iv in ivs
                     if load.start_ms <= iv.start_ms + iv.length_ms // 2 < load.start_ms + load.length_ms])
    return sorted(rows.values(), key=lambda load: (load.start_ms, load.group))


def _edges_point_by_point(db: InfluxV1, scope: Scope, rolled, missing, spans_) -> None:
    """The rare edge quarter hours that hold two labels of one shift name
    for a seat: read their events one by one."""
    base = where(scope, timed=False)
    stmts = []
    for fn, (site, seat, label) in missing:
        t = rolled[(site, seat, label)][0 if fn == "first" else 1]
        cond = (base + " AND " if base else " WHERE ") + (
            f"site = {tag_literal(site)} AND seat = {tag_literal(seat)} AND time >= {t}ms "
            f"AND time < {t + ru.INTERVAL_MS}ms")
        stmts.append(f"SELECT shift FROM {ROLLED_FROM}{cond} GROUP BY site, seat")
    for i in range(0, len(stmts), EDGE_CHUNK):
        for series in (r.get("series", []) for r in db.query(";".join(stmts[i:i + EDGE_CHUNK]))):
            for key, (t0, t1) in _labelled_spans(series).items():
                if key in rolled:
                    span = spans_.setdefault(key, [t0, t1])
                    span[0], span[1] = min(span[0], t0), max(span[1], t1)


def _read_days(db: InfluxV1, scope: Scope, interval_min: int, intervals: bool) -> Inputs | None:
    """The inputs from the sums per interval, the day roll-ups and the
    shift-start and shift-end events (requests side by side); None when the
    day roll-ups do not know their first and last call times. Without
    `intervals`, only the figures of days and shifts are whole."""
    stmts = day_statements(scope, interval_min, intervals) + [f"SELECT shift FROM {BOUNDS_FROM}{_wide(scope)} GROUP BY site, seat"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda q: db.query(q)[0].get("series", []), stmts))
    *sums, days, bound_series = results
    got = from_day_rollups([s for part in sums for s in part], days, scope.start_ms, scope.end_ms)
    if got is None:
        return None
    at, per_shift, per_day, seen = got
    spans_ = _labelled_spans(bound_series)
    for key, (t0, t1) in seen.items():
        span = spans_.setdefault(key, [t0, t1])
        span[0], span[1] = min(span[0], t0), max(span[1], t1)
    return Inputs(at, per_shift, spans_, None if intervals else per_day)


def read(db: InfluxV1, scope: Scope, interval_min: int, by_shift: bool, intervals: bool = True) -> Inputs:
    """The report's inputs: from the roll-ups, the shift-start and shift-end
    events and the edge statements, or from the previous statements when
    data with the old `shift` tag is stored. `intervals=False`: for reports
    by day or shift only (the day roll-ups then give their figures)."""
    check_seats(db, scope)
    if oldschema.present(db, SPAN_MEASUREMENTS):
        oldschema.note("staffing")
        return inputs_from_old(run(db, old_statements(scope, interval_min, by_shift)))
    if answers_mod.day_rollups_in(db, scope):
        got = _read_days(db, scope, interval_min, intervals)
        if got is not None:
            return got
    with ThreadPoolExecutor(max_workers=2) as pool:  # parallel requests, so InfluxDB runs them side by side
        rollups, bound_series = pool.map(lambda q: db.query(q)[0].get("series", []), statements(scope))
        at, per_shift, rolled, exact = from_rollups(rollups, scope.start_ms, scope.end_ms)
        bounds = _labelled_spans(bound_series)
        if exact is not None:  # every row knows its first and last call: no edge statement
            for key, (t0, t1) in exact.items():
                span = bounds.setdefault(key, [t0, t1])
                span[0], span[1] = min(span[0], t0), max(span[1], t1)
            return Inputs(at, per_shift, bounds)
        stmts, meta = edge_statements(scope, rolled, bounds)
        chunks = [stmts[i:i + EDGE_CHUNK] for i in range(0, len(stmts), EDGE_CHUNK)]
        edge_results = [rows for chunk in pool.map(lambda c: run(db, c), chunks) for rows in chunk]
    spans_, missing = join_spans(bounds, rolled, meta, edge_results)
    if missing:
        _edges_point_by_point(db, scope, rolled, missing, spans_)
    return Inputs(at, per_shift, spans_)


# ---- per agent (docs/reports.md, "By agent") -------------------------------------------------

AGENT_SELECT = ", ".join(ROLLUP_FIGURES) + ", first_ms, last_ms, shift"


def _agent_rows(db: InfluxV1, scope: Scope, tl, day: bool) -> list:
    """The roll-up rows of the scope attributed to agents (only --agent's
    when given): day roll-ups when `day` and they are in the report's zone."""
    read_ = agents_mod.narrowed(scope, tl)
    day_tz = scope.tz if day and answers_mod.day_rollups_in(db, scope) else None
    with ThreadPoolExecutor(answers_mod.WORKERS) as pool:
        if day_tz:
            futures = answers_mod._select(db, pool, read_, AGENT_SELECT, ru.MEASUREMENT_DAY,
                                          f"tz = {tag_literal(scope.tz)}")
        else:
            futures = answers_mod._select(db, pool, read_, AGENT_SELECT, ru.MEASUREMENT_15M)
        series = answers_mod._gather(futures)
    return agents_mod.split_rollups(db, series, tl, day_tz, scope.agent)


def _figures_of(columns: list[str], row: list) -> list[int]:
    return [int(row[columns.index(c)] or 0) for c in ROLLUP_FIGURES]


def agent_inputs(db: InfluxV1, scope: Scope, tl, interval_min: int) -> Inputs:
    """--agent: the inputs of today's report from that agent's calls (the
    15-minute roll-ups of its seats, attributed) and its staffed time: its
    assignments (for `(unassigned)`: the seats' staffed spans nobody was
    assigned)."""
    at: dict[int, list[int]] = {}
    per_shift: dict[str, list[int]] = {}
    for _tags, columns, values in _agent_rows(db, scope, tl, day=False):
        i_time, i_shift = columns.index("time"), columns.index("shift")
        for row in values:
            fig = _figures_of(columns, row)
            _sum_into(at, row[i_time], fig)
            _sum_into(per_shift, row[i_shift] or "(none)", fig)
    seat_spans = seat_spans_of(db, scope, interval_min) if scope.agent == agents_mod.UNASSIGNED else {}
    return Inputs(at, per_shift, tl.staffed_spans(scope.agent, seat_spans, scope.seats))


def seat_spans_of(db: InfluxV1, scope: Scope, interval_min: int) -> dict[tuple[str, str, str], list[int]]:
    """Only the seats' staffed spans (for `(unassigned)`): from the day
    roll-ups' first and last call times and the shift-start and shift-end
    events when the day roll-ups are in the report's zone and know their
    times (two requests, no sums per interval), else as read() finds them."""
    if answers_mod.day_rollups_in(db, scope):
        stmts = [day_statements(scope, interval_min, False)[-1],
                 f"SELECT shift FROM {BOUNDS_FROM}{_wide(scope)} GROUP BY site, seat"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            days, bound_series = pool.map(lambda q: db.query(q)[0].get("series", []), stmts)
        got = from_day_rollups([], days, scope.start_ms, scope.end_ms)
        if got is not None:
            spans_ = _labelled_spans(bound_series)
            for key, (t0, t1) in got[3].items():
                span = spans_.setdefault(key, [t0, t1])
                span[0], span[1] = min(span[0], t0), max(span[1], t1)
            return spans_
    return read(db, scope, interval_min, False, intervals=False).seat_spans


def by_agent(db: InfluxV1, scope: Scope, interval_min: int, target: Target, tl) -> StaffingReport:
    """One row per agent over the whole range: its calls' figures and busy
    time, its assigned time as staffed time (`(unassigned)`: the seats'
    staffed spans nobody was assigned). No seats needed: that is the site's."""
    rows: dict[str, Load] = {}
    length = scope.end_ms - scope.start_ms

    def row(agent: str) -> Load:
        if agent not in rows:
            rows[agent] = Load(agent, scope.start_ms, length, sort_key=(agent == agents_mod.UNASSIGNED, agent))
        return rows[agent]

    for tags, columns, values in _agent_rows(db, scope, tl, day=True):
        load = row(tags["agent"])
        for values_row in values:
            _add(load, _figures_of(columns, values_row))
    for a in tl.roster.assignments:  # each agent's assigned time, in one pass
        if (not scope.agent or a.agent == scope.agent) and (not scope.seats or a.seat in scope.seats):
            ms = min(a.end_ms, scope.end_ms) - max(a.start_ms, scope.start_ms)
            if ms > 0:
                row(a.agent).staffed_ms += ms
    if scope.agent in (None, agents_mod.UNASSIGNED):
        seat_spans = seat_spans_of(db, scope, interval_min)
        for s0, s1 in tl.staffed_spans(agents_mod.UNASSIGNED, seat_spans, scope.seats).values():
            ms = min(s1, scope.end_ms) - max(s0, scope.start_ms)
            if ms > 0:
                row(agents_mod.UNASSIGNED).staffed_ms += ms
    groups = sorted(rows.values(), key=lambda load: load.sort_key)
    total = Load("total", scope.start_ms, length)
    for load in groups:
        for name in SUMMED:
            setattr(total, name, getattr(total, name) + getattr(load, name))
    return StaffingReport(scope, "agent", interval_min, target, groups, total)


def staffing(db: InfluxV1, scope: Scope, by: str = "interval", interval_min: int = 30,
             target: Target = Target(), inputs: Inputs | None = None) -> StaffingReport:
    """The report; `inputs` from read() serve several reports of one scope."""
    if by == "agent" or scope.agent:
        check_seats(db, scope)
        if oldschema.present(db, SPAN_MEASUREMENTS):
            raise agents_mod.ReportError("per-agent figures need the data migrated first: run seatmon collect migrate")
        tl = agents_mod.timeline(db, scope)
        agents_mod.check_agent(scope, tl)
        if by == "agent":
            return by_agent(db, scope, interval_min, target, tl)
        inputs = agent_inputs(db, scope, tl, interval_min)
    if inputs is None:
        inputs = read(db, scope, interval_min, by == "shift", intervals=by == "interval")
    return build(inputs, scope, by, interval_min, target)
