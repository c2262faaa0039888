"""Validated protocol messages -> InfluxDB points (docs/schema.md).

Timestamps and tags come from the event, never from receive time, so a
redelivered event lands on the same point and overwrites itself. High
cardinality values (boot, seq, durations) stay in fields. The board's
incarnation (`inc`, a few per unit over its life) is a tag: two incarnations'
events at the same time and seat are two points, never merged into one.
"""

from __future__ import annotations

import json

from influxdb_client import Point, WritePrecision
from influxdb_client.client.write.point import _ESCAPE_KEY, _ESCAPE_MEASUREMENT, _ESCAPE_STRING

from shared import protocol as p

EVENT_TAGS = ("site", "unit", "inc", "seat", "shift_name")
# Per kind: the enum fields stored as an extra tag (grouped on in reports).
KIND_TAGS = {p.CALL: ("outcome", "exceeded"), p.REMINDER: ("pattern",), p.FAULT: ("code",)}
_SKIP_FIELDS = {"v", "kind", "ts", "site", "unit", "inc", "seat"}


def shift_name(label: str | None) -> str | None:
    """The shift's name from its label (`2026-11-22/night` -> `night`): a
    tag whose values are the site's few shift names, where the label itself
    (a new value every shift) would add series forever. The label stays a
    field."""
    if not label:
        return None
    return label.rsplit("/", 1)[-1] or label


def _flag(value: bool) -> int:
    return 1 if value else 0


def _tagged(point: Point, msg: dict, names: tuple[str, ...]) -> Point:
    for name in names:
        value = msg.get(name)
        if value is not None:
            point.tag(name, value)
    return point


def event_parts(msg: dict) -> tuple[str, dict, dict, int]:
    """A validated event -> (measurement, tags, fields, time ms): the one
    place the event schema of docs/schema.md is decided."""
    kind = msg["kind"]
    extra_tags = KIND_TAGS.get(kind, ())
    tags = {name: msg[name] for name in EVENT_TAGS + extra_tags if name in msg and msg[name] is not None}
    name = shift_name(msg.get("shift"))
    if name is not None:
        tags["shift_name"] = name
    fields = {}
    for name, value in msg.items():
        if name in _SKIP_FIELDS or name in extra_tags or value is None:
            continue
        if kind == p.SELFTEST and name == "checks":
            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        elif kind == p.SELFTEST and name == "faults":
            fields["fault_count"] = len(value)
            value = ",".join(value)
        fields[name] = value
    if kind == p.CALL:
        outcome = msg["outcome"]
        answered = outcome == "answered"
        fields["answered"] = _flag(answered)
        fields["timely"] = _flag(answered and msg["within_limit"])
        fields["late"] = _flag(answered and not msg["within_limit"])
        fields["missed"] = _flag(outcome == "missed")
        fields["abandoned"] = _flag(outcome == "abandoned")
    elif kind == p.SHIFT_END:
        action, equipment = msg["action"], msg["equipment"]
        fields["off_in_time"] = _flag(equipment == "off" and action == "none")
        # Found on at the check. Not: postponed (found off after overtime), an
        # unreadable sensor (`unknown`, logged), a handover (action none).
        fields["left_on"] = _flag(equipment == "on" and action != "none")
        fields["reminded"] = _flag(action == "reminded")
        fields["cut"] = _flag(action == "cut")
        fields["postponed"] = _flag(action == "postponed")
    return kind, tags, fields, msg["ts"]


def event_point(msg: dict) -> Point:
    """A validated event -> its point (measurement = kind)."""
    kind, tags, fields, ts = event_parts(msg)
    point = Point(kind)
    for name, value in tags.items():
        point.tag(name, value)
    for name, value in fields.items():
        point.field(name, value)
    return point.time(ts, WritePrecision.MS)


def event_line(msg: dict) -> str:
    """The same line as line(event_point(msg)), built directly: the
    collector's hot path (Point's generic escaping costs ~20 us an event).
    Validated events hold no floats, so ints, bools and strings suffice."""
    kind, tags, fields, ts = event_parts(msg)
    out = [kind.translate(_ESCAPE_MEASUREMENT)]
    for name in sorted(tags):
        value = str(tags[name]).translate(_ESCAPE_KEY)
        if value:
            if value.endswith("\\"):
                value += " "
            out.append("," + name.translate(_ESCAPE_KEY) + "=" + value)
    out.append(" ")
    parts = []
    for name in sorted(fields):
        value = fields[name]
        if value is True or value is False:
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value) + "i"
        elif isinstance(value, str):
            text = '"' + value.translate(_ESCAPE_STRING) + '"'
        else:  # not produced by the protocol; keep Point's behaviour for anything else
            return line(event_point(msg))
        parts.append(name.translate(_ESCAPE_KEY) + "=" + text)
    out.append(",".join(parts))
    out.append(" " + str(int(ts)))
    return "".join(out)


def status_point(msg: dict, received_ms: int) -> Point:
    point = Point("status").tag("site", msg["site"]).tag("unit", msg["unit"])
    point.field("state", msg["state"])
    point.field("online", _flag(msg["state"] == "online"))
    for name in ("boot", "fw", "reason", "ip", "seat", "tz"):
        if msg.get(name) is not None:
            point.field(name, msg[name])
    return point.time(msg.get("ts") or received_ms, WritePrecision.MS)


def heartbeat_point(msg: dict, received_ms: int) -> Point:
    point = Point("heartbeat").tag("site", msg["site"]).tag("unit", msg["unit"])
    for name in ("boot", "uptime_s", "heap_free", "rssi", "journal_depth", "dropped", "acked", "clock_offset_ms",
                 "tz_days_left"):
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
