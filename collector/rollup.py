"""Roll-ups: what the reports add up, per seat and interval (docs/schema.md).

Pure: stored call and outgoing rows in, roll-up points out. A roll-up is
always recomputed from every row of its key, never incremented, so a
redelivered event, a late one or two collectors writing the same interval
all end in the same point (same measurement, tags and time: InfluxDB keeps
one).

Two grains, the same fields:
- `rollup_15m`: per site, seat, shift and 15-minute interval (UTC-aligned;
  every zone's day and hour boundaries fall on one). Serves hours, busy and
  idle time, and any zone. Tag `lag` (days from the label's date to the
  interval's UTC date) keeps two labels of one shift name in one interval
  apart.
- `rollup_day`: per site, seat, shift and local day in one zone (the `tz`
  tag). Serves days, seats, shifts and months in that zone: a month of a
  seat is ~30 rows instead of ~2 400 calls.

Rows are dicts as InfluxDB returns them for `SELECT * FROM call` (tags and
fields by name; `time` in ms), or a validated event merged with its stored
fields (collector.schema.event_parts): the same names either way. Rows of
the schema before the `shift` label became a field carry it as a tag of the
same name, so they roll up alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields as dc_fields
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from influxdb_client.client.write.point import _ESCAPE_KEY, _ESCAPE_STRING

from collector.schema import shift_name

INTERVAL_MS = 15 * 60 * 1000
MEASUREMENT_15M = "rollup_15m"
MEASUREMENT_DAY = "rollup_day"
# Unanswered calls split at the reports' default short-abandon threshold; a
# report asked for another threshold reads those two figures from raw calls.
SHORT_ABANDON_MS = 5000
# Answer-time histogram: 100 ms bins up to 60 s, one open bin beyond. A
# percentile read from it is its bin's middle: within 50 ms of the exact one.
HIST_BIN_MS = 100
HIST_BINS = 600  # bins 0..599 cover [0, 60 s); bin 600 holds everything slower


ROLLED_KINDS = ("call", "outgoing")  # the event kinds roll-ups are computed from


def interval_start(ts_ms: int) -> int:
    return ts_ms - ts_ms % INTERVAL_MS


def event_key(event: dict) -> tuple[str, str, int] | None:
    """The (site, seat, 15-minute interval start) roll-up key a validated
    event touches, or None for a kind that is not rolled up."""
    if event.get("kind") in ROLLED_KINDS and event.get("seat"):
        return (event["site"], event["seat"], interval_start(event["ts"]))
    return None


def local_day(ts_ms: int, zone: ZoneInfo) -> tuple[int, str]:
    """(local midnight in ms, ISO date) of the local day holding ts_ms."""
    local = datetime.fromtimestamp(ts_ms / 1000, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return int(midnight.timestamp() * 1000), local.date().isoformat()


def hist_bin(answer_ms: int) -> int:
    return min(int(answer_ms) // HIST_BIN_MS, HIST_BINS)


def hist_encode(hist: dict[int, int]) -> str:
    """Sparse text `bin:count,...` in bin order ('' when empty)."""
    return ",".join(f"{b}:{hist[b]}" for b in sorted(hist) if hist[b])


def hist_decode(text: str | None, into: dict[int, int] | None = None) -> dict[int, int]:
    out = {} if into is None else into
    if text:
        for pair in text.split(","):
            b, _, n = pair.partition(":")
            out[int(b)] = out.get(int(b), 0) + int(n)
    return out


def hist_value(b: int) -> int:
    """The value a bin stands for: its middle (the open bin: its lower edge)."""
    return b * HIST_BIN_MS + (HIST_BIN_MS // 2 if b < HIST_BINS else 0)


def _rank_value(hist: dict[int, int], rank: int) -> int:
    """The value at 1-based rank `rank` of the histogram's sorted values."""
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return hist_value(b)
    raise ValueError("rank beyond the histogram")


def hist_percentile(hist: dict[int, int], pct: float) -> int | None:
    """InfluxDB's percentile() (nearest rank, rounded half up) over the
    histogram, to the bin's resolution."""
    n = sum(hist.values())
    if not n:
        return None
    return _rank_value(hist, max(1, int(n * pct / 100.0 + 0.5)))


def hist_median(hist: dict[int, int]) -> float | None:
    """InfluxDB's median() (mean of the two middle values for an even count)."""
    n = sum(hist.values())
    if not n:
        return None
    if n % 2:
        return float(_rank_value(hist, n // 2 + 1))
    return (_rank_value(hist, n // 2) + _rank_value(hist, n // 2 + 1)) / 2


def exact_percentile(values: list[int], pct: float) -> int | None:
    """InfluxDB's percentile() over exact values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, int(len(ordered) * pct / 100.0 + 0.5)) - 1]


def exact_median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class Rollup:
    """The additive figures of one key. Counts and sums add; maxima take
    the larger, first_ms the smaller known; the histogram adds bin by bin."""

    calls: int = 0
    answered: int = 0
    timely: int = 0
    late: int = 0
    missed: int = 0
    abandoned: int = 0
    answer_sum: int = 0
    answer_max: int = 0
    talk_n: int = 0  # answered calls whose talk time is known
    talk_sum: int = 0
    short_n: int = 0  # unanswered calls that rang less than SHORT_ABANDON_MS
    short_sum: int = 0  # their ring time
    long_n: int = 0
    long_sum: int = 0
    unsynced: int = 0  # calls stamped by a clock not synced over NTP and not corrected since
    exceeded_time: int = 0
    exceeded_rings: int = 0
    exceeded_both: int = 0
    hangup_known: int = 0  # calls and outgoing calls with a disconnect signal
    agent_first: int = 0
    outgoing: int = 0
    out_talk_sum: int = 0
    # Time of the key's first and last row (call or outgoing; its first ring
    # or off-hook): the staffing report's spans without reading every call.
    # 0 = unknown (points stored before these fields existed).
    first_ms: int = 0
    last_ms: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    def _seen(self, row: dict) -> None:
        t = row.get("time")
        if t is not None:
            t = int(t)
            self.first_ms = min(self.first_ms, t) if self.first_ms else t
            self.last_ms = max(self.last_ms, t)

    def add_call(self, row: dict) -> None:
        self.calls += 1
        self._seen(row)
        outcome = row.get("outcome")
        answered = outcome == "answered"
        if answered:
            self.answered += 1
            answer_ms = int(row.get("answer_ms") or 0)
            self.answer_sum += answer_ms
            self.answer_max = max(self.answer_max, answer_ms)
            b = hist_bin(answer_ms)
            self.hist[b] = self.hist.get(b, 0) + 1
            if row.get("within_limit"):
                self.timely += 1
            else:
                self.late += 1
            if row.get("talk_ms") is not None:
                self.talk_n += 1
                self.talk_sum += int(row["talk_ms"])
        else:
            if outcome == "missed":
                self.missed += 1
            elif outcome == "abandoned":
                self.abandoned += 1
            ring_ms = int(row.get("ring_ms") or 0)
            if ring_ms < SHORT_ABANDON_MS:
                self.short_n += 1
                self.short_sum += ring_ms
            else:
                self.long_n += 1
                self.long_sum += ring_ms
        if row.get("clock") not in ("ntp", "corrected"):  # corrected: placed at its true time (collector/reclock.py)
            self.unsynced += 1
        exceeded = row.get("exceeded")
        if exceeded in ("time", "rings", "both"):
            name = "exceeded_" + exceeded
            setattr(self, name, getattr(self, name) + 1)
        self._hangup(row)

    def add_outgoing(self, row: dict) -> None:
        self.outgoing += 1
        self._seen(row)
        self.out_talk_sum += int(row.get("talk_ms") or 0)
        self._hangup(row)

    def _hangup(self, row: dict) -> None:
        side = row.get("hung_up_first")
        if side is not None:
            self.hangup_known += 1
            if side == "agent":
                self.agent_first += 1

    def times_known(self) -> bool:
        return bool(self.first_ms) or not (self.calls or self.outgoing)

    def merge(self, other: "Rollup") -> None:
        known = self.times_known() and other.times_known()
        for f in dc_fields(self):
            if f.name == "hist":
                for b, n in other.hist.items():
                    self.hist[b] = self.hist.get(b, 0) + n
            elif f.name in ("answer_max", "last_ms"):
                setattr(self, f.name, max(getattr(self, f.name), getattr(other, f.name)))
            elif f.name == "first_ms":  # 0 = unknown: the other's, or the earlier
                if other.first_ms:
                    self.first_ms = min(self.first_ms, other.first_ms) if self.first_ms else other.first_ms
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        if not known:  # a part stored before the times were kept: the whole's are unknown
            self.first_ms = self.last_ms = 0

    def as_fields(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dc_fields(self) if f.name != "hist"}
        out["answer_hist"] = hist_encode(self.hist)
        return out

    @classmethod
    def from_fields(cls, row: dict) -> "Rollup":
        """A roll-up from a stored roll-up row (missing figures read 0)."""
        r = cls(**{f.name: int(row.get(f.name) or 0) for f in dc_fields(cls) if f.name != "hist"})
        hist_decode(row.get("answer_hist"), r.hist)
        return r


FIELD_NAMES = tuple(f.name for f in dc_fields(Rollup) if f.name != "hist") + ("answer_hist",)


# What every stored row of a kind carries (the protocol's required fields):
# a row read without one of them, or with the shift name tag but not the
# label it comes from, was read while its write was in flight.
REQUIRED = {"call": ("seq", "ring_ms", "within_limit", "clock"), "outgoing": ("seq", "talk_ms")}


def torn(row: dict, kind: str) -> bool:
    """Whether a raw row came back with fields missing (InfluxDB 1.x shows a
    point's fields one by one while its write is in flight)."""
    if any(row.get(name) is None for name in REQUIRED[kind]):
        return True
    if kind == "call" and row.get("outcome") == "answered" and row.get("answer_ms") is None:
        return True
    return bool(row.get("shift_name")) and not row.get("shift")


def _label(row: dict) -> str | None:
    # `shift_1`: InfluxDB's name for the old tag when a field `shift` exists too.
    return row.get("shift") or row.get("shift_1") or None


def _key_15m(row: dict) -> tuple:
    return (row.get("site"), row.get("seat"), _label(row), interval_start(int(row["time"])))


def rollup_15m(calls: list[dict], outgoing: list[dict] = ()) -> dict[tuple, Rollup]:
    """{(site, seat, shift label or None, interval start ms): Rollup} from
    every stored call and outgoing row of those intervals."""
    out: dict[tuple, Rollup] = {}
    for row in calls:
        out.setdefault(_key_15m(row), Rollup()).add_call(row)
    for row in outgoing:
        out.setdefault(_key_15m(row), Rollup()).add_outgoing(row)
    return out


def rollup_day(rows_15m: dict[tuple, Rollup], tz: str) -> dict[tuple, Rollup]:
    """{(site, seat, shift label or None, local midnight ms): Rollup} in
    zone `tz`, from every 15-minute roll-up of those days."""
    zone = ZoneInfo(tz)
    out: dict[tuple, Rollup] = {}
    for (site, seat, label, start), r in rows_15m.items():
        day_ms, _ = local_day(start, zone)
        out.setdefault((site, seat, label, day_ms), Rollup()).merge(r)
    return out


def shift_lag(label: str | None, day_ms: int, zone: ZoneInfo | None = None) -> str:
    """Days from the shift's start date (in its label) to the date of day_ms
    in `zone`: keeps apart two shifts of one name on one day or in one
    quarter hour (a night shift that began yesterday and the one that begins
    tonight; a 24-hour shift in overtime and the next one). Bounded: clipped
    to -9..9, usually -1, 0 or 1."""
    if not label or "/" not in label:
        return "0"
    try:
        started = datetime.strptime(label.split("/", 1)[0], "%Y-%m-%d").date()
    except ValueError:
        return "0"
    day = datetime.fromtimestamp(day_ms / 1000, zone or _UTC).date()
    return str(max(-9, min(9, (day - started).days)))


def _tag_value(value: str) -> str:
    text = str(value).translate(_ESCAPE_KEY)
    return text + " " if text.endswith("\\") else text


def _line(measurement: str, tags: dict, r: Rollup, label: str | None, ts_ms: int) -> str:
    head = measurement + "".join(f",{k}={_tag_value(v)}" for k, v in sorted(tags.items()) if v not in (None, ""))
    values = r.as_fields()
    parts = [f"{k}={v}i" for k, v in values.items() if k != "answer_hist"]
    parts.append('answer_hist="' + values["answer_hist"].translate(_ESCAPE_STRING) + '"')
    if label:
        parts.append('shift="' + label.translate(_ESCAPE_STRING) + '"')
    return f"{head} {','.join(parts)} {int(ts_ms)}"


_UTC = ZoneInfo("UTC")


def lines_15m(rollups: dict[tuple, Rollup]) -> list[str]:
    """Line protocol (ms precision) of 15-minute roll-ups."""
    return [_line(MEASUREMENT_15M, {"site": site, "seat": seat, "shift_name": shift_name(label),
                                    "lag": shift_lag(label, start)}, r, label, start)
            for (site, seat, label, start), r in rollups.items()]


def lines_day(rollups: dict[tuple, Rollup], tz: str) -> list[str]:
    """Line protocol (ms precision) of day roll-ups in zone `tz`."""
    zone = ZoneInfo(tz)
    return [_line(MEASUREMENT_DAY, {"site": site, "seat": seat, "shift_name": shift_name(label), "tz": tz,
                                    "lag": shift_lag(label, day_ms, zone)}, r, label, day_ms)
            for (site, seat, label, day_ms), r in rollups.items()]


# Each collector's latest word on its dirty keys (collector.service): how
# many, and the span of their intervals. Reports read it to say when the
# roll-ups of their range are still pending (seatmon/report/pending.py).
MEASUREMENT_PENDING = "rollup_pending"


def pending_line(collector: str, keys: int, from_ms: int, to_ms: int, at_ms: int) -> str:
    """Line protocol (ms precision): `keys` dirty keys whose intervals lie
    in [from_ms, to_ms), as of at_ms."""
    return (f"{MEASUREMENT_PENDING},collector={_tag_value(collector)} keys={int(keys)}i,from_ms={int(from_ms)}i,"
            f"to_ms={int(to_ms)}i {int(at_ms)}")


def day_window(day_ms: int, tz: str) -> tuple[int, int]:
    """[start, end) ms of the local day starting at day_ms (23-25 hours)."""
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(day_ms / 1000, zone)
    nxt = (start + timedelta(days=1, hours=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day_ms, int(nxt.timestamp() * 1000)
