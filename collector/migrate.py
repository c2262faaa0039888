"""`seatmon collect migrate`: old-schema points to the current schema
(docs/schema.md), then the roll-ups of the migrated range.

Old points carry the shift label as the tag `shift`; current ones carry the
tag `shift_name` and the field `shift`. Work goes in bounded chunks, one
measurement, shift label and UTC day at a time: the chunk's points are
written in the new form first (the same time and the other tags, so a second
write lands on the same point), then the old ones are deleted. Interrupted at
any moment, a re-run finds what still carries the tag and finishes; the range
whose roll-ups are due is kept in InfluxDB itself (measurement
`seatmon_migration`) until they are built.

InfluxDB 1.x, checked on 1.6.7: once a measurement has a field `shift`,
`DELETE ... WHERE "shift" = '...'` is refused ("fields not supported in WHERE
clause during deletion"); `"shift"::tag` names the tag. A DELETE that removes
a series' last point drops the series, and when no series has the tag any
more `SHOW TAG KEYS` no longer lists it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from influxdb_client.client.write.point import _ESCAPE_KEY, _ESCAPE_MEASUREMENT, _ESCAPE_STRING

from collector import rollstore
from collector.influx import tag_literal
from collector.schema import shift_name

OLD_KINDS = ("call", "outgoing", "reminder", "selftest", "shift_end", "postpone", "fault")
MARKER = "seatmon_migration"
DAY_MS = 86400_000
WRITE_LINES = 5000


@dataclass
class Plan:
    labels: dict[str, list[str]]  # measurement -> old shift labels
    points: dict[str, int]  # measurement -> old points
    first_ms: int | None
    last_ms: int | None
    pending: list[tuple[int, int, int]]  # roll-up ranges left by an earlier run: (marker time, from, to)

    @property
    def total(self) -> int:
        return sum(self.points.values())


def _values(results: list[dict]) -> list[list]:
    return [v for r in results for s in r.get("series", []) for v in s.get("values", [])]


def _old(select: str, measurement: str, label: str | None = None) -> str:
    """SELECT `select` over the old points (of one label)."""
    where = f'"shift"::tag = {tag_literal(label)}' if label is not None else "\"shift\"::tag =~ /./"
    return f'SELECT {select} FROM "{measurement}" WHERE {where}'


def plan(db) -> Plan:
    labels, points, first, last = {}, {}, None, None
    for m in OLD_KINDS:
        found = [v[1] for v in _values(db.query(f'SHOW TAG VALUES FROM "{m}" WITH KEY = "shift"')) if v[1]]
        if not found:
            continue
        labels[m] = sorted(found)
        [[_, count]] = _values(db.query(_old("count(seq)", m))) or [[0, 0]]
        points[m] = count
        for fn in ("first", "last"):
            for t, _ in _values(db.query(_old(f"{fn}(seq)", m))):
                first = t if first is None else min(first, t)
                last = t if last is None else max(last, t)
    return Plan(labels, points, first, last, pending_ranges(db))


def pending_ranges(db) -> list[tuple[int, int, int]]:
    out = []
    for result in db.query(f'SELECT from_ms, to_ms, done FROM "{MARKER}"'):
        for series in result.get("series", []):
            for t, lo, hi, done in series["values"]:
                if not done:
                    out.append((t, lo, hi))
    return out


def _marker(t: int, lo: int, hi: int, done: bool) -> str:
    return f"{MARKER} from_ms={lo}i,to_ms={hi}i,done={'true' if done else 'false'} {t}"


def _field(value, kind: str) -> str | None:
    if kind == "integer":
        return f"{int(value)}i"
    if kind == "float":
        return repr(float(value))
    if kind == "boolean":
        return "true" if value else "false"
    return '"' + str(value).translate(_ESCAPE_STRING) + '"'


def _tag(value: str) -> str:
    text = str(value).translate(_ESCAPE_KEY)
    return text + " " if text.endswith("\\") else text


def field_types(db, measurement: str) -> dict[str, str]:
    out = {}
    for key, kind in _values(db.query(f'SHOW FIELD KEYS FROM "{measurement}"')):
        out.setdefault(key, kind)
    return out


def new_lines(measurement: str, series: dict, types: dict[str, str]) -> list[str]:
    """One old series (SELECT * ... GROUP BY *) as current-schema lines."""
    tags = {k: v for k, v in (series.get("tags") or {}).items() if v and k not in ("shift", "shift_name")}
    label = series["tags"]["shift"]
    tags["shift_name"] = shift_name(label)
    head = measurement.translate(_ESCAPE_MEASUREMENT) + "".join(
        f",{k.translate(_ESCAPE_KEY)}={_tag(v)}" for k, v in sorted(tags.items()))
    columns = series["columns"]
    out = []
    for values in series["values"]:
        fields = []
        for name, value in zip(columns[1:], values[1:]):
            if value is None or name == "shift":
                continue
            fields.append(f"{name.translate(_ESCAPE_KEY)}={_field(value, types.get(name, 'string'))}")
        fields.append('shift="' + label.translate(_ESCAPE_STRING) + '"')
        out.append(f"{head} {','.join(sorted(fields))} {int(values[0])}")
    return out


def convert(db, measurement: str, label: str, types: dict[str, str]) -> tuple[int, int | None, int | None]:
    """Convert one label's old points of one measurement, a UTC day at a
    time; returns (points, first ms, last ms)."""
    times = [t for fn in ("first", "last") for t, _ in _values(db.query(_old(f"{fn}(seq)", measurement, label)))]
    if not times:  # no point left with a seq: drop whatever carries the label
        db.query(f'DELETE FROM "{measurement}" WHERE "shift"::tag = {tag_literal(label)}', method="POST")
        return 0, None, None
    first, last = min(times), max(times)
    done = 0
    for day in range(first - first % DAY_MS, last + 1, DAY_MS):
        window = f" AND time >= {day}ms AND time < {day + DAY_MS}ms"
        results = db.query(_old("*", measurement, label) + window + " GROUP BY *")
        lines = [line for r in results for s in r.get("series", []) for line in new_lines(measurement, s, types)]
        for i in range(0, len(lines), WRITE_LINES):
            db.write_lines(lines[i:i + WRITE_LINES])
        # Written first, deleted after: an interruption in between leaves both,
        # and a re-run writes the same points again and deletes the old.
        db.query(f'DELETE FROM "{measurement}" WHERE "shift"::tag = {tag_literal(label)}{window}', method="POST")
        done += len(lines)
    # Anything left (points outside the days seen) goes with the label.
    db.query(f'DELETE FROM "{measurement}" WHERE "shift"::tag = {tag_literal(label)}', method="POST")
    return done, first, last


def rebuild_range(db, start_ms: int, end_ms: int, tz: str, say: Callable[[str], None],
                  step_ms: int = DAY_MS) -> int:
    """Roll-ups of [start, end), one UTC day at a time (each refresh
    recomputes the local days it touches from what is stored)."""
    points = 0
    t = start_ms - start_ms % step_ms
    while t < end_ms:
        lo, hi = max(t, start_ms), min(t + step_ms, end_ms)
        written = rollstore.rebuild(db, lo, hi, tz)
        points += written
        if written:
            say(f"roll-ups {_date(lo)}: {written} points")
        t += step_ms
    return points


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date().isoformat()


def run(db, tz: str, say: Callable[[str], None], dry_run: bool = False) -> int:
    """Migrate; returns the old points converted (or to convert)."""
    p = plan(db)
    ranges = [(lo, hi) for _, lo, hi in p.pending]
    if p.total:
        ranges.append((p.first_ms, p.last_ms + 1))
    for m, labels in p.labels.items():
        say(f"{m}: {p.points[m]} old points in {len(labels)} shift label(s)"
            + (" to convert" if dry_run else ""))
    if not p.total:
        say("no old-schema points")
    for lo, hi in ranges:
        say(f"roll-ups to build from {_date(lo)} to {_date(hi - 1)} (zone {tz})")
    if dry_run:
        if p.total:
            say(f"would convert {p.total} points (tag shift -> tag shift_name + field shift), delete the old ones, "
                "then build the roll-ups")
        return p.total
    if p.total:
        marker_t = int(time.time() * 1000)
        db.write_lines([_marker(marker_t, p.first_ms, p.last_ms + 1, False)])
        p.pending.append((marker_t, p.first_ms, p.last_ms + 1))
    converted = 0
    for m, labels in p.labels.items():
        types = field_types(db, m)
        for label in labels:
            n, _, _ = convert(db, m, label, types)
            converted += n
            say(f"{m} {label}: {n} points converted")
        left = [v for v in _values(db.query(f'SHOW TAG KEYS FROM "{m}"')) if v[0] == "shift"]
        say(f"{m}: done" + (" (the old tag key is still listed)" if left else ""))
    for lo, hi in _merged(ranges):
        rebuild_range(db, lo, hi, tz, say)
    for t, lo, hi in p.pending:
        db.write_lines([_marker(t, lo, hi, True)])
    say(f"migrated: {converted} points converted; roll-ups built")
    return converted


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]
