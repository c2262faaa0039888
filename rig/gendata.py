"""A seeded generator of realistic seatmon data, written into a real InfluxDB.

Every event is built as a protocol message, checked with `shared.protocol`
and turned into a point by `collector.schema` (the collector's own code), so
the database looks exactly as if desk units had sent it. The same seed gives
the same data, point for point.

What one unit (one seat) does per local day, in the plan's time zone:
- three shifts: `night` 23:00-07:00 (crosses midnight; labelled with the
  date it started), `day` 07:00-15:00, `late` 15:00-23:00;
- `calls_per_seat_day` incoming calls, busier in office hours; answer times
  log-normal around a per-seat median (some seats are slow), about 3 % of
  calls abandoned (ringing stopped before the limit) and 3 % missed (rang
  past it); `outgoing_per_seat_day` outgoing calls; who hung up first,
  except at every third seat (no disconnect input); now and then a call
  stamped without a synchronised clock;
- a self-test at every shift start (now and then a fault) and a shift-end
  check at every shift end (some seats often leave equipment on: logged,
  reminded or cut; or ask for overtime and switch off after it, postponed
  with a `postpone` event; now and then the power sensor gives no reading);
- a heartbeat every `heartbeat_hours` (clock skew and journal backlog per
  unit), an `online` status at the start; a few units go offline near the
  end, and a few lose events (sequence gaps, recorded as `seq_gap` points).

With each seat's events it stores their roll-ups (15-minute, and local days
in the plan's zone), computed from the same events by collector/rollup.py as
the collector computes them from stored rows.

Run `python -m rig.gendata --help` to load a month into a server.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector import rollup as ru
from collector.influx import InfluxV1
from collector.schema import event_line, event_parts, gap_point, heartbeat_point, line, status_point
from shared import protocol as p

# name, local start hour, length in hours. `night` crosses midnight.
SHIFTS = (("night", 23, 8), ("day", 7, 8), ("late", 15, 8))
# Relative call volume per local hour of the day (busy office hours).
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 9, 10, 13, 13, 11, 9, 7, 5, 4, 3, 2, 1)
RING_PERIOD_MS = 5000  # CN cadence: 1000 ms on, 4000 ms off


@dataclass(frozen=True)
class Plan:
    start: date
    days: int
    seats: int = 10
    calls_per_seat_day: int = 80
    outgoing_per_seat_day: int = 10
    site: str = "hq"
    tz: str = "Europe/Berlin"
    seed: int = 1
    limit_ms: int = 10000
    heartbeat_hours: int = 1
    firmware: tuple[str, ...] = ("0.1.0", "0.1.1")
    # Known talk times: every answered call (outgoing call) talks exactly
    # this long; None for log-normal talk times.
    talk_ms: int | None = None
    outgoing_talk_ms: int | None = None

    def unit(self, i: int) -> str:
        return f"u-{i + 1:04d}"

    def seat(self, i: int) -> str:
        return f"S-{i + 1:03d}"


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _shift_of(local: datetime) -> str:
    """Label of the shift a local time falls in, `<start date>/<name>`."""
    h = local.hour
    if h >= 23:
        return f"{local.date().isoformat()}/night"
    if h < 7:
        return f"{(local.date() - timedelta(days=1)).isoformat()}/night"
    return f"{local.date().isoformat()}/{'day' if h < 15 else 'late'}"


class _Unit:
    """One desk unit's running state: its seq counter and its habits."""

    def __init__(self, plan: Plan, i: int, rng: random.Random):
        self.plan, self.i = plan, i
        self.unit, self.seat = plan.unit(i), plan.seat(i)
        self.seq = 0
        self.boot = 1
        self.median_answer_ms = rng.uniform(3500, 8000)  # some seats are slow
        self.left_on_rate = rng.choice((0.02, 0.05, 0.1, 0.3))
        self.loses_events = rng.random() < 0.1
        self.skew_ms = int(rng.gauss(0, 150)) if rng.random() < 0.8 else rng.choice((-4000, 2500, 9000))
        self.backlog = rng.random() < 0.1
        self.fw = plan.firmware[i % len(plan.firmware)]
        self.gaps: list[tuple[int, int, int]] = []
        self.disconnect_input = i % 3 != 2  # every third seat has no disconnect input: who hung up is unknown

    def next_seq(self, rng: random.Random, ts: int) -> int:
        self.seq += 1
        if self.loses_events and rng.random() < 0.002:
            lost = rng.randint(1, 3)
            self.gaps.append((self.seq, self.seq + lost - 1, ts))
            self.seq += lost
        return self.seq

    def event(self, rng: random.Random, kind: str, ts: int, local: datetime, **fields) -> dict:
        msg = {"v": p.VERSION, "kind": kind, "site": self.plan.site, "unit": self.unit, "seat": self.seat,
               "boot": self.boot, "seq": self.next_seq(rng, ts), "ts": ts, "clock": "ntp",
               "shift": _shift_of(local)}
        msg.update(fields)
        if kind in (p.CALL, p.OUTGOING) and rng.random() < 0.003:  # stamped before NTP answered
            msg["clock"] = "unsynced"
        if not self.disconnect_input:
            msg.pop("hung_up_first", None)
        return p.validate_event(msg)


def _talk(rng: random.Random, fixed: int | None, median_ms: int, sigma: float = 0.6) -> int:
    talk = int(rng.lognormvariate(math.log(median_ms), sigma))  # drawn either way: same seed, same calls
    return talk if fixed is None else fixed


def _call_fields(unit: _Unit, rng: random.Random, limit: int) -> dict:
    r = rng.random()
    if r < 0.03:  # caller gave up before the limit
        ring_ms = rng.randint(1500, limit - 500)
        return {"outcome": "abandoned", "rings": ring_ms // RING_PERIOD_MS + 1, "ring_ms": ring_ms,
                "within_limit": False, "limit_ms": limit, "apology_prompted": False}
    if r < 0.06:  # rang past the limit, nobody answered
        ring_ms = rng.randint(limit + 1000, 45000)
        return {"outcome": "missed", "rings": ring_ms // RING_PERIOD_MS + 1, "ring_ms": ring_ms,
                "within_limit": False, "limit_ms": limit, "apology_prompted": False}
    answer = int(rng.lognormvariate(math.log(unit.median_answer_ms), 0.45))
    answer = max(300, min(answer, 120000))
    late = answer > limit
    return {"outcome": "answered", "rings": answer // RING_PERIOD_MS + 1, "ring_ms": answer,
            "answer_ms": answer, "within_limit": not late, "limit_ms": limit,
            "apology_prompted": late, "talk_ms": _talk(rng, unit.plan.talk_ms, 180000),
            "hung_up_first": "caller" if rng.random() < 0.9 else "agent"}


def _day_events(plan: Plan, unit: _Unit, rng: random.Random, day: date, tz: ZoneInfo) -> list[dict]:
    """One unit's events of one local day, in time order with their seqs."""
    planned: list[tuple[int, str]] = []
    midnight = datetime.combine(day, time(0), tz)
    for hour in rng.choices(range(24), weights=HOUR_WEIGHTS, k=plan.calls_per_seat_day):
        planned.append((_ms(midnight + timedelta(hours=hour, seconds=rng.uniform(0, 3600))), "call"))
    for hour in rng.choices(range(24), weights=HOUR_WEIGHTS, k=plan.outgoing_per_seat_day):
        planned.append((_ms(midnight + timedelta(hours=hour, seconds=rng.uniform(0, 3600))), "outgoing"))
    for _name, start_hour, length in SHIFTS:
        start = datetime.combine(day, time(start_hour), tz)
        planned.append((_ms(start + timedelta(seconds=rng.uniform(5, 60))), "selftest"))
        planned.append((_ms(start + timedelta(hours=length, seconds=rng.uniform(1, 120))), "shift_end"))
    planned.sort()  # by true instant (wall-clock order is ambiguous at a DST change)
    events = []
    for ts, kind in planned:
        local = datetime.fromtimestamp(ts / 1000, tz)
        if kind == "call":
            events.append(unit.event(rng, p.CALL, ts, local, **_call_fields(unit, rng, plan.limit_ms)))
        elif kind == "outgoing":
            events.append(unit.event(rng, p.OUTGOING, ts, local,
                                     talk_ms=_talk(rng, plan.outgoing_talk_ms, 90000, 0.7),
                                     hung_up_first="caller" if rng.random() < 0.8 else "agent"))
        elif kind == "selftest":
            faulty = rng.random() < 0.01
            events.append(unit.event(rng, p.SELFTEST, ts, local, ok=not faulty,
                                     checks={"hook": "ok", "ring": "stuck" if faulty else "ok"},
                                     faults=["ring_stuck"] if faulty else []))
        else:
            events.extend(_shift_end(unit, rng, ts, local))
    return events


def _shift_end(unit: _Unit, rng: random.Random, ts: int, local: datetime) -> list[dict]:
    # The shift that just ended started before this instant: label it so.
    before = local - timedelta(minutes=10)
    if rng.random() >= unit.left_on_rate:
        msg = unit.event(rng, p.SHIFT_END, ts, before, equipment="off", action="none",
                         idle_ms=rng.randint(60000, 1800000))
        return [msg]
    action = rng.choice(("logged", "reminded", "reminded", "cut", "postponed", "unreadable"))
    fields = {"equipment": "on", "action": action, "idle_ms": rng.randint(60000, 1800000)}
    out = []
    if action == "unreadable":  # the power sensor gave no reading: recorded, not an offence
        fields.update(equipment="unknown", action="logged")
    elif action == "postponed":  # overtime granted, then found off (as the firmware reports it)
        fields["equipment"] = "off"
        fields["overtime_ms"] = rng.choice((900000, 1800000))
        out.append(unit.event(rng, p.POSTPONE, ts - 1000, before, granted_ms=fields["overtime_ms"], count=1))
    elif action == "reminded":
        fields["off_after_ms"] = rng.randint(30000, 600000)
    out.append(unit.event(rng, p.SHIFT_END, ts, before, **fields))
    return out


def _unit_lines(plan: Plan, unit: _Unit, rng: random.Random, start_ms: int, end_ms: int) -> list[str]:
    """Status, heartbeat and gap points of one unit over the whole plan."""
    out = [line(status_point({"v": 1, "site": plan.site, "unit": unit.unit, "state": "online", "ts": start_ms,
                              "boot": unit.boot, "fw": unit.fw, "reason": "power_on", "seat": unit.seat},
                             start_ms))]
    offline_at = end_ms
    if unit.i % 17 == 5:  # a few units drop off the network near the end
        offline_at = end_ms - rng.randint(2, 30) * 3600_000
        will = {"v": 1, "site": plan.site, "unit": unit.unit, "state": "offline"}
        out.append(line(status_point(p.validate(p.STATUS, will), offline_at)))
    step = plan.heartbeat_hours * 3600_000
    for ts in range(start_ms + step, offline_at, step):
        hb = {"v": 1, "site": plan.site, "unit": unit.unit, "boot": unit.boot, "ts": ts,
              "uptime_s": (ts - start_ms) // 1000, "heap_free": rng.randint(60000, 90000),
              "rssi": rng.randint(-80, -45), "journal_depth": rng.randint(20, 400) if unit.backlog else 0,
              "dropped": 0, "acked": unit.seq, "clock_offset_ms": -unit.skew_ms}
        out.append(line(heartbeat_point(p.validate(p.HEARTBEAT, hb), ts + unit.skew_ms + rng.randint(0, 40))))
    for first, last, at in unit.gaps:
        out.append(line(gap_point(plan.site, unit.unit, first, last, at + 60000)))
    return out


def _generate(plan: Plan, with_units: bool):
    tz = ZoneInfo(plan.tz)
    start_ms = _ms(datetime.combine(plan.start, time(0), tz))
    end_ms = _ms(datetime.combine(plan.start + timedelta(days=plan.days), time(0), tz))
    for i in range(plan.seats):
        rng = random.Random(f"{plan.seed}/{i}")
        unit = _Unit(plan, i, rng)
        for d in range(plan.days):
            for msg in _day_events(plan, unit, rng, plan.start + timedelta(days=d), tz):
                yield msg
        if with_units:
            yield from _unit_lines(plan, unit, rng, start_ms, end_ms)


def rollup_lines(plan: Plan, msgs: list[dict]) -> list[str]:
    """The roll-up points (15-minute, and local days in the plan's zone) of
    one seat's events: computed from the events as they are stored (the
    collector's schema), as collector/rollstore.py computes them from
    stored rows."""
    calls, outgoing = [], []
    for msg in msgs:
        if msg["kind"] in (p.CALL, p.OUTGOING):
            kind, tags, fields, ts = event_parts(msg)
            row = {**tags, **fields, "time": ts}
            (calls if kind == p.CALL else outgoing).append(row)
    r15 = ru.rollup_15m(calls, outgoing)
    return ru.lines_15m(r15) + ru.lines_day(ru.rollup_day(r15, plan.tz), plan.tz)


def events(plan: Plan):
    """Yield the plan's events as validated protocol messages (for checking
    reports against the data itself)."""
    yield from _generate(plan, False)


def lines(plan: Plan, rollups: bool = True):
    """Yield the plan's line-protocol lines, unit by unit, seeded; with the
    roll-ups of each seat's calls after its events."""
    seat_msgs: list[dict] = []
    for item in _generate(plan, True):
        if isinstance(item, str):
            if seat_msgs and rollups:  # the seat's events are done: its unit lines follow them
                yield from rollup_lines(plan, seat_msgs)
            seat_msgs = []
            yield item
        else:
            seat_msgs.append(item)
            yield event_line(item)
    if seat_msgs and rollups:
        yield from rollup_lines(plan, seat_msgs)


def load(db: InfluxV1, plan: Plan, batch: int = 50000, rollups: bool = True) -> int:
    """Write the plan into `db` (created if needed) in gzip batches; return the point count."""
    db.create_database()
    buf: list[str] = []
    total = 0
    for text in lines(plan, rollups):
        buf.append(text)
        if len(buf) >= batch:
            db.write_lines(buf)
            total += len(buf)
            buf = []
    if buf:
        db.write_lines(buf)
        total += len(buf)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rig.gendata", description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", default="http://127.0.0.1:8086", help="InfluxDB URL")
    ap.add_argument("--db", default="seatmon", help="database (created if missing)")
    ap.add_argument("--month", default="2026-11", help="YYYY-MM: generate this whole month")
    ap.add_argument("--seats", type=int, default=10)
    ap.add_argument("--calls", type=int, default=80, help="incoming calls per seat per day")
    ap.add_argument("--tz", default="Europe/Berlin", help="the site's time zone")
    ap.add_argument("--site", default="hq")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    year, month = (int(x) for x in args.month.split("-"))
    first = date(year, month, 1)
    days = ((first + timedelta(days=32)).replace(day=1) - first).days
    plan = Plan(start=first, days=days, seats=args.seats, calls_per_seat_day=args.calls, site=args.site,
                tz=args.tz, seed=args.seed)
    n = load(InfluxV1(args.influx, args.db), plan)
    print(f"wrote {n} points for {args.seats} seats, {args.month}, into {args.db}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
