"""Validated protocol messages -> InfluxDB points (docs/schema.md).

Timestamps and tags come from the event, never from receive time, so a
redelivered event lands on the same point and overwrites itself. High
cardinality values (boot, seq, durations) stay in fields.
"""

from __future__ import annotations

import json

from influxdb_client import Point, WritePrecision

from shared import protocol as p

EVENT_TAGS = ("site", "unit", "seat", "shift")
# Per kind: the enum fields stored as an extra tag (grouped on in reports).
KIND_TAGS = {p.CALL: ("outcome",), p.REMINDER: ("pattern",), p.FAULT: ("code",)}
_SKIP_FIELDS = {"v", "kind", "ts", "site", "unit", "seat", "shift"}


def _flag(value: bool) -> int:
    return 1 if value else 0


def _tagged(point: Point, msg: dict, names: tuple[str, ...]) -> Point:
    for name in names:
        value = msg.get(name)
        if value is not None:
            point.tag(name, value)
    return point


def event_point(msg: dict) -> Point:
    """A validated event -> its point (measurement = kind)."""
    kind = msg["kind"]
    point = _tagged(Point(kind), msg, EVENT_TAGS)
    extra_tags = KIND_TAGS.get(kind, ())
    _tagged(point, msg, extra_tags)
    for name, value in msg.items():
        if name in _SKIP_FIELDS or name in extra_tags or value is None:
            continue
        if kind == p.SELFTEST and name == "checks":
            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        elif kind == p.SELFTEST and name == "faults":
            point.field("fault_count", len(value))
            value = ",".join(value)
        point.field(name, value)
    if kind == p.CALL:
        outcome = msg["outcome"]
        answered = outcome == "answered"
        point.field("answered", _flag(answered))
        point.field("timely", _flag(answered and msg["within_limit"]))
        point.field("late", _flag(answered and not msg["within_limit"]))
        point.field("missed", _flag(outcome == "missed"))
        point.field("abandoned", _flag(outcome == "abandoned"))
    elif kind == p.SHIFT_END:
        action, equipment = msg["action"], msg["equipment"]
        point.field("off_in_time", _flag(equipment == "off" and action == "none"))
        point.field("left_on", _flag(action != "none"))
        point.field("reminded", _flag(action == "reminded"))
        point.field("cut", _flag(action == "cut"))
        point.field("postponed", _flag(action == "postponed"))
    return point.time(msg["ts"], WritePrecision.MS)


def status_point(msg: dict, received_ms: int) -> Point:
    point = Point("status").tag("site", msg["site"]).tag("unit", msg["unit"])
    point.field("state", msg["state"])
    point.field("online", _flag(msg["state"] == "online"))
    for name in ("boot", "fw", "reason", "ip", "seat"):
        if msg.get(name) is not None:
            point.field(name, msg[name])
    return point.time(msg.get("ts") or received_ms, WritePrecision.MS)


def heartbeat_point(msg: dict, received_ms: int) -> Point:
    point = Point("heartbeat").tag("site", msg["site"]).tag("unit", msg["unit"])
    for name in ("boot", "uptime_s", "heap_free", "rssi", "journal_depth", "dropped", "acked", "clock_offset_ms"):
        if msg.get(name) is not None:
            point.field(name, msg[name])
    point.field("skew_ms", received_ms - msg["ts"])
    return point.time(msg["ts"], WritePrecision.MS)


def gap_point(site: str, unit: str, first_seq: int, last_seq: int, at_ms: int) -> Point:
    return (Point("seq_gap").tag("site", site).tag("unit", unit)
            .field("first_seq", first_seq).field("last_seq", last_seq)
            .field("count", last_seq - first_seq + 1).time(at_ms, WritePrecision.MS))


def line(point: Point) -> str:
    return point.to_line_protocol()
