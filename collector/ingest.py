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
from collector.tracker import UnitState, split_key, to_ranges, unit_key
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
    # Keyed by unit_key(site, unit, inc):
    changed: dict[str, UnitState] = field(default_factory=dict)  # units to persist
    ack_due: set[str] = field(default_factory=set)  # units whose ack should be (re)published
    stored: dict[str, set[int]] = field(default_factory=dict)  # seqs newly stored
    clock_ops: list[tuple] = field(default_factory=list)  # for Spool.commit (collector/reclock.py)
    held: dict[str, set[int]] = field(default_factory=dict)  # seqs newly handled by quarantining them
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
        for key, seqs in other.held.items():
            self.held.setdefault(key, set()).update(seqs)
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


_IDENTITY = ("site", "unit", "inc", "seq")


def _identity_once(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out and key in _IDENTITY:
            raise ValueError("identity field given twice")
        out[key] = value
    return out


def refused_identity(site: str, unit: str, payload: bytes) -> tuple[str, int] | None:
    """(inc, seq) of an event the protocol refused, when it can still be told
    whose it is: a JSON object naming this unit (or no unit), no other site,
    a valid incarnation (or none) and an integer seq. None otherwise (not
    JSON, no seq...): such a message cannot move an ack."""
    try:
        msg = json.loads(bytes(payload).decode("utf-8", "replace"), object_pairs_hook=_identity_once)
    except (ValueError, RecursionError):
        return None
    if not isinstance(msg, dict):
        return None
    seq, inc = msg.get("seq"), msg.get("inc", "")
    if not p._is_int(seq) or not 1 <= seq <= 2 ** 53:
        return None
    if msg.get("unit", unit) != unit or msg.get("site", site) != site:
        return None
    if inc != "" and not p._is_id(inc):
        return None
    return inc, seq


class Ingestor:
    def __init__(self, units: dict[str, UnitState], limits: Limits, prefix: str = p.DEFAULT_PREFIX,
                 reclock: Reclock | None = None):
        self.limits = limits
        self.prefix = prefix
        self.reclock = reclock if reclock is not None else Reclock()
        self.units: dict[str, UnitState] = {}
        # unit_key(site, unit) -> the incarnation last heard from: its mark is
        # the one the unit's (single, retained) ack topic carries.
        self.current: dict[str, str] = {}
        self.replace_units(units)

    def replace_units(self, units: dict[str, UnitState]) -> None:
        """Take these marks (the spool's) in place of the ones held."""
        self.units.clear()
        self.units.update(units)
        self.current.clear()
        for state in sorted(units.values(), key=lambda u: u.last_seen_ms):
            self.current[unit_key(state.site, state.unit)] = state.inc

    def is_current(self, state: UnitState) -> bool:
        """Whether `state` is its unit's incarnation last heard from (or the
        only one known): only that one's mark is published as the ack."""
        return self.current.get(unit_key(state.site, state.unit), state.inc) == state.inc

    def _heard(self, state: UnitState, received_ms: int) -> None:
        state.last_seen_ms = received_ms
        self.current[unit_key(state.site, state.unit)] = state.inc

    def _unit(self, site: str, unit: str, inc: str = "") -> UnitState:
        key = unit_key(site, unit, inc)
        state = self.units.get(key)
        if state is None:
            state = self.units[key] = UnitState(unit, site, inc=inc)
        return state

    def batch(self, messages) -> BatchResult:
        """messages: iterable of (topic, payload bytes, received_ms)."""
        out = BatchResult()
        for topic, payload, received_ms in messages:
            try:
                self._one(out, topic, payload, received_ms)
            except p.ProtocolError as exc:
                self._quarantine(out, topic, payload, received_ms, str(exc))
            except Exception as exc:  # a message never takes the collector down
                self._quarantine(out, topic, payload, received_ms, f"internal error: {exc!r}")
        return out

    def _quarantine(self, out: BatchResult, topic: str, payload: bytes, received_ms: int, reason: str) -> None:
        """Quarantine a refused message. A refused event whose seq can still
        be read is handled by that (the ack moves past it; it can be
        replayed from the quarantine), once: a resend counts as a duplicate."""
        row = quarantine_row(received_ms, topic, payload, reason)
        try:
            site, unit, channel = p.parse_topic(topic, self.prefix)
            ident = refused_identity(site, unit, payload) if channel == p.EVENT else None
        except Exception:  # a topic that is not a unit's, or a payload beyond reading
            ident = None
        if ident is None:
            out.quarantined.append(row)
            return
        inc, seq = ident
        state = self._unit(site, unit, inc)
        state_key = unit_key(site, unit, inc)
        self._heard(state, received_ms)
        out.changed[state_key] = state
        out.ack_due.add(state_key)
        if not state.hold(seq):
            out.duplicates += 1
            return
        out.quarantined.append(row)
        out.held.setdefault(state_key, set()).add(seq)

    def _one(self, out: BatchResult, topic: str, payload: bytes, received_ms: int) -> None:
        if len(payload) > self.limits.max_payload:
            raise p.ProtocolError("", f"payload is {len(payload)} bytes, over the {self.limits.max_payload}-byte limit")
        site, unit, channel = p.parse_topic(topic, self.prefix)
        msg = decode_strict(channel, payload)
        inc = p.incarnation(msg)
        state_key = unit_key(site, unit, inc)
        if channel == p.ACK:
            if msg["unit"] != unit:
                p.check_topic_matches(site, unit, msg)
            state = self._unit(site, unit, inc)
            self.current.setdefault(unit_key(site, unit), inc)  # until the unit itself is heard
            if state.seed(msg["seq"]):
                out.changed[state_key] = state
            return
        p.check_topic_matches(site, unit, msg)
        if channel == p.EVENT:
            if msg["clock"] != "unsynced":  # an unsynced stamp is placed, never refused (collector/reclock.py)
                self._check_clock(msg["ts"], received_ms)
            state = self._unit(site, unit, inc)
            self._heard(state, received_ms)
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
            # A status names no incarnation: it is the current one's.
            inc = self.current.get(unit_key(site, unit), "")
            state = self._unit(site, unit, inc)
            state.last_seen_ms = received_ms
            out.changed[unit_key(site, unit, inc)] = state
        elif channel == p.HEARTBEAT:
            self._check_clock(msg["ts"], received_ms)
            out.lines.append((schema.line(schema.heartbeat_point(msg, received_ms)), received_ms, None))
            state = self._unit(site, unit, inc)
            self._heard(state, received_ms)
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
        # {"units": {unit_key: [[lo, hi], ...]}, "held": {...}}: seqs stored, seqs quarantined
        for part, handle in (("units", UnitState.store), ("held", UnitState.hold)):
            for state_key, ranges in data.get(part, {}).items():
                site, unit, inc = split_key(state_key)
                state = self._unit(site, unit, inc)
                self.current.setdefault(unit_key(site, unit), inc)
                for lo, hi in ranges:
                    for seq in range(lo, hi + 1):
                        handle(state, seq)
                out.changed[state_key] = state
                out.ack_due.add(state_key)
        for site, unit, inc, boot, offset_ms in data.get("clocks", ()):
            _move(out, self.reclock.correct((site, unit, inc, boot), offset_ms, out.clock_ops), received_ms)
        return out


def peer_message(sender: str, result: BatchResult) -> dict | None:
    """What a collector tells its shared-subscription peers after a commit:
    the seqs it stored or handled by quarantining them, the clock
    corrections it learnt; None when nothing."""
    clocks = fixes(result.clock_ops)
    if not result.stored and not result.held and not clocks:
        return None
    msg = {"from": sender, "units": {key: to_ranges(seqs) for key, seqs in result.stored.items()},
           "held": {key: to_ranges(seqs) for key, seqs in result.held.items()}}
    if clocks:
        msg["clocks"] = clocks
    return msg


def _move(out: BatchResult, moves: list[tuple[dict, dict]], received_ms: int) -> None:
    """Outbox lines that move stored events (collector/reclock.py): delete
    the old point, write the new one, in this order."""
    for old, new in moves:
        out.lines.append((delete_statement(old), received_ms, event_key(old)))
        out.lines.append((schema.event_line(new), received_ms, event_key(new)))
