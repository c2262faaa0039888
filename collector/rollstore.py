"""Keeping roll-ups current in InfluxDB (collector/rollup.py computes them).

`refresh` recomputes the roll-ups of some (site, seat, 15-minute interval)
keys from every stored row of those keys and writes them over the old
points: run after the rows are stored, it is right however often it runs
and whoever stored the rows. `store_events` stores events and refreshes
their keys: the path for anything that writes events without the collector
(tests, generated data, tools).
"""

from __future__ import annotations

from collections import defaultdict
from zoneinfo import ZoneInfo

from collector import rollup as ru
from collector.influx import tag_literal
from collector.schema import event_line

Key = tuple[str, str, int]  # (site, seat, 15-minute interval start ms)
# Statements per /query request, and seats per statement: bounded so that a
# backlog of late events never becomes one huge request.
STATEMENTS_PER_QUERY = 50
SEATS_PER_STATEMENT = 100
WRITE_LINES = 5000
# Intervals of one site this close are read in one window, up to this long.
WINDOW_GAP_MS = 3600_000
WINDOW_MAX_MS = 86400_000


def keys_of(events) -> set[Key]:
    """The roll-up keys a set of validated events touches."""
    return {key for key in map(ru.event_key, events) if key is not None}


def _rows(db, statements: list[str]) -> list[list[dict]]:
    out = []
    for i in range(0, len(statements), STATEMENTS_PER_QUERY):
        for result in db.query(";".join(statements[i:i + STATEMENTS_PER_QUERY])):
            rows = []
            for series in result.get("series", []):
                tags = series.get("tags") or {}
                for values in series["values"]:
                    row = dict(tags)
                    row.update((k, v) for k, v in zip(series["columns"], values) if v is not None)
                    rows.append(row)
            out.append(rows)
    return out


# What the roll-ups read of the raw rows (collector.rollup.Rollup.add_*):
# a third of a call's JSON. `seq` is always there, so no row is left out.
# The label is the field `shift`, or, in points of the old schema, the tag.
_LABEL = '"shift"::field AS shift, "shift"::tag AS shift_1'
COLUMNS = {
    "call": f"{_LABEL}, site, seat, seq, outcome, exceeded, answer_ms, ring_ms, talk_ms, within_limit, clock, "
            "hung_up_first",
    "outgoing": f"{_LABEL}, site, seat, seq, talk_ms, hung_up_first",
}


def _selects(measurement: str, windows: dict[tuple[str, int, int], set[str]]) -> list[str]:
    """SELECT statements for {(site, start ms, end ms): seats}."""
    columns = COLUMNS.get(measurement, "*")
    out = []
    for (site, start, end), seats in sorted(windows.items()):
        seats = sorted(seats)
        for i in range(0, len(seats), SEATS_PER_STATEMENT):
            chunk = " OR ".join(f"seat = {tag_literal(s)}" for s in seats[i:i + SEATS_PER_STATEMENT])
            out.append(f"SELECT {columns} FROM {measurement} WHERE time >= {start}ms AND time < {end}ms"
                       f" AND site = {tag_literal(site)} AND ({chunk})")
    return out


def _windows(keys: set[Key]) -> dict[tuple[str, int, int], set[str]]:
    """The raw rows to read for `keys`, as {(site, start, end): seats}:
    neighbouring intervals of a site share one window (and its seats), so a
    backlog of thousands of keys is a few statements, not thousands. A window
    may hold rows of other keys; the caller keeps only the asked keys."""
    by_site: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for site, seat, start in keys:
        by_site[site][start].add(seat)
    out: dict[tuple[str, int, int], set[str]] = {}
    for site, starts in by_site.items():
        lo = hi = None
        seats: set[str] = set()
        for start in sorted(starts):
            if lo is not None and start <= hi + WINDOW_GAP_MS and start + ru.INTERVAL_MS - lo <= WINDOW_MAX_MS:
                hi = start + ru.INTERVAL_MS
                seats |= starts[start]
                continue
            if lo is not None:
                out[(site, lo, hi)] = seats
            lo, hi, seats = start, start + ru.INTERVAL_MS, set(starts[start])
        out[(site, lo, hi)] = seats
    return out


def refresh(db, keys: set[Key], tz: str = "UTC") -> int:
    """Recompute and write the 15-minute roll-ups of `keys` and the day
    roll-ups (zone `tz`) of the days holding them. Returns points written."""
    return refresh_changed(db, keys, tz)[0]


def refresh_changed(db, keys: set[Key], tz: str = "UTC") -> tuple[int, set[Key]]:
    """`refresh`, also returning the keys whose 15-minute roll-ups it found
    different from the stored ones, and wrote (the collector gives those
    another pass).

    One read (the keys' raw rows and the 15-minute rows of their days), one
    write: the day roll-ups come from the stored 15-minute rows with the
    fresh ones in place of the keys'."""
    if not keys:
        return 0, set()
    by_interval = _windows(keys)
    zone = ZoneInfo(tz)
    by_day: dict[tuple[str, int, int], set[str]] = defaultdict(set)
    for site, seat, start in keys:
        day_ms, _ = ru.local_day(start, zone)
        by_day[(site, *ru.day_window(day_ms, tz))].add(seat)
    calls_q, out_q, days_q = (_selects("call", by_interval), _selects("outgoing", by_interval),
                              _selects(ru.MEASUREMENT_15M, by_day))
    results = _rows(db, calls_q + out_q + days_q)
    calls = [r for rows in results[:len(calls_q)] for r in rows]
    outgoing = [r for rows in results[len(calls_q):len(calls_q) + len(out_q)] for r in rows]
    fresh = ru.rollup_15m(calls, outgoing)
    # Only the asked keys: a row's key outside them (none expected) is left alone.
    fresh = {k: r for k, r in fresh.items() if (k[0], k[1], k[3]) in keys}
    stored: dict[tuple, ru.Rollup] = {}
    for rows in results[len(calls_q) + len(out_q):]:
        for row in rows:
            key = (row.get("site"), row.get("seat"), row.get("shift") or None, int(row["time"]))
            stored[key] = ru.Rollup.from_fields(row)
    # Only the 15-minute points that differ from what was read are written:
    # a refresh that found nothing new overwrites nothing (docs/schema.md,
    # the consistency guarantee, counts on it). The day points are always
    # written, from the stored 15-minute points with the fresh ones in place.
    changed_15m = {k: r for k, r in fresh.items() if stored.get(k) != r}
    changed = {(k[0], k[1], k[3]) for k in changed_15m}
    # A label of an asked key that no longer has rows (its event moved to its
    # true time, collector/reclock.py): the key's and its day's points go,
    # and what is left of them is written again.
    stale = [k for k in stored if (k[0], k[1], k[3]) in keys and k not in fresh]
    if stale:
        _remove(db, {(k[0], k[1], k[3]) for k in stale}, zone, tz)
        for k in stale:
            del stored[k]
        gone = {(k[0], k[1], k[3]) for k in stale}
        changed |= gone
        changed_15m.update((k, r) for k, r in fresh.items() if (k[0], k[1], k[3]) in gone)
    stored.update(fresh)
    lines = ru.lines_15m(changed_15m) + ru.lines_day(ru.rollup_day(stored, tz), tz)
    for i in range(0, len(lines), WRITE_LINES):
        db.write_lines(lines[i:i + WRITE_LINES])
    return len(lines), changed


def _remove(db, keys: set[Key], zone: ZoneInfo, tz: str) -> None:
    """Delete every 15-minute point of `keys` and the day points of their days."""
    out = []
    for site, seat, start in sorted(keys):
        where = f"site = {tag_literal(site)} AND seat = {tag_literal(seat)}"
        out.append(f"DELETE FROM {ru.MEASUREMENT_15M} WHERE {where} AND time = {start}ms")
        out.append(f"DELETE FROM {ru.MEASUREMENT_DAY} WHERE {where} AND tz = {tag_literal(tz)}"
                   f" AND time = {ru.local_day(start, zone)[0]}ms")
    for i in range(0, len(out), STATEMENTS_PER_QUERY):
        db.query(";".join(out[i:i + STATEMENTS_PER_QUERY]), method="POST")


def store_events(db, events, tz: str = "UTC") -> None:
    """Store validated events and bring their roll-ups up to date."""
    events = list(events)
    if events:
        db.write_lines([event_line(e) for e in events])
        refresh(db, keys_of(events), tz)


def stored_keys(db, start_ms: int, end_ms: int) -> set[Key]:
    """Every roll-up key with a stored call or outgoing row in [start, end)."""
    keys: set[Key] = set()
    for measurement, field in (("call", "ring_ms"), ("outgoing", "talk_ms")):
        q = (f"SELECT count({field}) FROM {measurement} WHERE time >= {start_ms}ms AND time < {end_ms}ms"
             f" GROUP BY site, seat, time({ru.INTERVAL_MS // 60000}m) fill(none)")
        for result in db.query(q):
            for series in result.get("series", []):
                tags = series.get("tags") or {}
                for values in series["values"]:
                    if tags.get("seat"):
                        keys.add((tags.get("site") or "", tags["seat"], int(values[0])))
    return keys


def rebuild(db, start_ms: int, end_ms: int, tz: str = "UTC") -> int:
    """Recompute every roll-up of [start, end) from the stored rows."""
    return refresh(db, stored_keys(db, start_ms, end_ms), tz)
