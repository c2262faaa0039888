"""Deciding what to do with each received message: store it, count it as a
duplicate, or quarantine it with a reason. Pure: no sockets, no clock (the
receive time comes in with the message), no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from collector import schema
from collector.reclock import Reclock, delete_statement, fixes
from collector.rollup import event_key
from collector.tracker import UnitState, to_ranges
from shared import protocol as p


@dataclass
class Limits:
    max_future_ms: int = 86400 * 1000
    max_past_ms: int = 90 * 86400 * 1000
    max_payload: int = p.MAX_PAYLOAD


def quarantine_row(received_ms: int, topic: str, payload: bytes, reason: str) -> tuple[int, str, bytes, str]:
    """A quarantine row that can always be stored: the payload as raw bytes,
    topic and reason made storable."""
    return (received_ms, storable(topic), bytes(payload), storable(reason))


@dataclass
class BatchResult:
    # (line protocol, received_ms, roll-up key (site, seat, interval start ms) of a call/outgoing, else None)
    lines: list[tuple[str, int, tuple | None]] = field(default_factory=list)
    quarantined: list[tuple[int, str, bytes, str]] = field(default_factory=list)  # (received_ms, topic, payload, reason)
    # Keyed by unit_key(site, unit):
    changed: dict[str, UnitState] = field(default_factory=dict)  # units to persist
    ack_due: set[str] = field(default_factory=set)  # units whose ack should be (re)published
    stored: dict[str, set[int]] = field(default_factory=dict)  # seqs newly stored
    clock_ops: list[tuple] = field(default_factory=list)  # for Spool.commit (collector/reclock.py)
    events: int = 0
    duplicates: int = 0
    lost: int = 0

    def merge(self, other: "BatchResult") -> None:
        self.lines += other.lines
        self.quarantined += other.quarantined
        self.clock_ops += other.clock_ops
        self.changed.update(other.changed)
        self.ack_due |= other.ack_due
        for key, seqs in other.stored.items():
            self.stored.setdefault(key, set()).update(seqs)
        self.events += other.events
        self.duplicates += other.duplicates
        self.lost += other.lost


def _no_duplicate_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise p.ProtocolError(p._safe_name(key), "appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str):
    raise p.ProtocolError("", f"{name} is not JSON")


def decode_strict(channel: str, payload: bytes) -> dict:
    """protocol.decode, stricter where CPython's json module is lenient: a
    repeated key (which copy was meant?) and NaN/Infinity are refused."""
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise p.ProtocolError("", "payload is not UTF-8") from None
    try:
        msg = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except p.ProtocolError:
        raise
    except (ValueError, RecursionError):
        raise p.ProtocolError("", "payload is not valid JSON") from None
    return p.validate(channel, msg)


def storable(text: str) -> str:
    """Text that SQLite (UTF-8) and a log line can always hold."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unit_key(site: str, unit: str) -> str:
    """Units are tracked per site and unit, as their topics are."""
    return site + "/" + unit


class Ingestor:
    def __init__(self, units: dict[str, UnitState], limits: Limits, prefix: str = p.DEFAULT_PREFIX,
                 reclock: Reclock | None = None):
        self.units = units
        self.limits = limits
        self.prefix = prefix
        self.reclock = reclock if reclock is not None else Reclock()

    def _unit(self, site: str, unit: str) -> UnitState:
        key = unit_key(site, unit)
        state = self.units.get(key)
        if state is None:
            state = self.units[key] = UnitState(unit, site)
        return state

    def batch(self, messages) -> BatchResult:
        """messages: iterable of (topic, payload bytes, received_ms)."""
        out = BatchResult()
        for topic, payload, received_ms in messages:
            try:
                self._one(out, topic, payload, received_ms)
            except p.ProtocolError as exc:
                out.quarantined.append(quarantine_row(received_ms, topic, payload, str(exc)))
            except Exception as exc:  # a message never takes the collector down
                out.quarantined.append(quarantine_row(received_ms, topic, payload, f"internal error: {exc!r}"))
        return out

    def _one(self, out: BatchResult, topic: str, payload: bytes, received_ms: int) -> None:
        if len(payload) > self.limits.max_payload:
            raise p.ProtocolError("", f"payload is {len(payload)} bytes, over the {self.limits.max_payload}-byte limit")
        site, unit, channel = p.parse_topic(topic, self.prefix)
        msg = decode_strict(channel, payload)
        state_key = unit_key(site, unit)
        if channel == p.ACK:
            if msg["unit"] != unit:
                p.check_topic_matches(site, unit, msg)
            state = self._unit(site, unit)
            if state.seed(msg["seq"]):
                out.changed[state_key] = state
            return
        p.check_topic_matches(site, unit, msg)
        state_key = unit_key(site, unit)
        if channel == p.EVENT:
            if msg["clock"] != "unsynced":  # an unsynced stamp is placed, never refused (collector/reclock.py)
                self._check_clock(msg["ts"], received_ms)
            state = self._unit(site, unit)
            state.last_seen_ms = received_ms
            state.boot = msg["boot"]
            out.changed[state_key] = state
            if not state.store(msg["seq"]):
                out.duplicates += 1
                out.ack_due.add(state_key)  # the unit resent: maybe it missed our ack
                return
            out.events += 1
            msg, moves = self.reclock.place(msg, received_ms, out.clock_ops)
            out.lines.append((schema.event_line(msg), received_ms, event_key(msg)))
            _move(out, moves, received_ms)
            out.stored.setdefault(state_key, set()).add(msg["seq"])
            out.ack_due.add(state_key)
        elif channel == p.STATUS:
            if "ts" in msg:
                self._check_clock(msg["ts"], received_ms)
            out.lines.append((schema.line(schema.status_point(msg, received_ms)), received_ms, None))
            state = self._unit(site, unit)
            state.last_seen_ms = received_ms
            out.changed[state_key] = state
        elif channel == p.HEARTBEAT:
            self._check_clock(msg["ts"], received_ms)
            out.lines.append((schema.line(schema.heartbeat_point(msg, received_ms)), received_ms, None))
            state = self._unit(site, unit)
            state.last_seen_ms = received_ms
            state.boot = msg["boot"]
            before = state.mark
            for first, last in state.unit_mark(msg["acked"]):
                out.lost += last - first + 1
                out.lines.append((schema.line(schema.gap_point(site, unit, first, last, received_ms)), received_ms,
                                  None))
            out.changed[state_key] = state
            if state.mark != before:
                out.ack_due.add(state_key)
        else:
            raise p.ProtocolError("topic", f"the collector does not take messages on channel {channel!r}")

    def _check_clock(self, ts: int, received_ms: int) -> None:
        if ts > received_ms + self.limits.max_future_ms:
            raise p.ProtocolError("ts", f"clock {ts - received_ms} ms in the future (limit {self.limits.max_future_ms} ms)")
        if ts < received_ms - self.limits.max_past_ms:
            raise p.ProtocolError("ts", f"clock {received_ms - ts} ms in the past (limit {self.limits.max_past_ms} ms)")

    def peer_stored(self, payload: bytes, received_ms: int = 0) -> BatchResult:
        """Another collector of our shared-subscription group stored these
        seqs durably: count them as stored so our ack marks stay contiguous;
        and these boots' clock corrections: move what we stored of them."""
        out = BatchResult()
        data = json.loads(payload)
        for state_key, ranges in data["units"].items():  # {"site/unit": [[lo, hi], ...]}
            site, _, unit = state_key.partition("/")
            state = self._unit(site, unit)
            for lo, hi in ranges:
                for seq in range(lo, hi + 1):
                    state.store(seq)
            out.changed[state_key] = state
            out.ack_due.add(state_key)
        for site, unit, boot, offset_ms in data.get("clocks", ()):
            _move(out, self.reclock.correct((site, unit, boot), offset_ms, out.clock_ops), received_ms)
        return out


def peer_message(sender: str, result: BatchResult) -> dict | None:
    """What a collector tells its shared-subscription peers after a commit:
    the seqs it stored, the clock corrections it learnt; None when nothing."""
    clocks = fixes(result.clock_ops)
    if not result.stored and not clocks:
        return None
    msg = {"from": sender, "units": {key: to_ranges(seqs) for key, seqs in result.stored.items()}}
    if clocks:
        msg["clocks"] = clocks
    return msg


def _move(out: BatchResult, moves: list[tuple[dict, dict]], received_ms: int) -> None:
    """Outbox lines that move stored events (collector/reclock.py): delete
    the old point, write the new one, in this order."""
    for old, new in moves:
        out.lines.append((delete_statement(old), received_ms, event_key(old)))
        out.lines.append((schema.event_line(new), received_ms, event_key(new)))
