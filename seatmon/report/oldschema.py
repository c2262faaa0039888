"""Data stored before the shift label became a field (docs/schema.md): its
points carry the label as a tag `shift` and no `shift_name` tag. Reports
read it until `seatmon collect migrate` has rewritten it; where the new
statements cannot group it, they run their previous statements instead
and say so once on standard error.
"""

from __future__ import annotations

import sys

from influxdb_client import Point, WritePrecision

from collector.influx import InfluxV1
from collector.schema import event_parts, line

NOTE = ("note: data stored before the shift label became a field is read with the previous, slower "
        "statements; run `seatmon collect migrate` once to convert it")


def present(db: InfluxV1, measurements: tuple[str, ...]) -> bool:
    """True when a series of these measurements still has the `shift` tag:
    one SHOW TAG KEYS, a lookup in the series index (milliseconds)."""
    for result in db.query("SHOW TAG KEYS FROM " + ", ".join(f'"{m}"' for m in measurements)):
        for series in result.get("series", []):
            if any(values[0] == "shift" for values in series.get("values", [])):
                return True
    return False


def note(report: str) -> None:
    print(f"seatmon report {report}: {NOTE}", file=sys.stderr)


def old_event_line(msg: dict) -> str:
    """The line the collector stored for a validated event before the
    change: the label a tag `shift`, no `shift_name` (for tests and
    benchmarks of this path)."""
    kind, tags, fields, ts = event_parts(msg)
    tags.pop("shift_name", None)
    label = fields.pop("shift", None)
    if label:
        tags["shift"] = label
    point = Point(kind)
    for name, value in tags.items():
        point.tag(name, value)
    for name, value in fields.items():
        point.field(name, value)
    return line(point.time(ts, WritePrecision.MS))
