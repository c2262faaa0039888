"""The current shift's calls already stored in InfluxDB, to start the header
figures from on start and after every reconnect.

The label is stored as the field `shift`, its name as the tag `shift_name`
(docs/schema.md); calls stored before that carry the label as a tag.

The figures follow the reports' definitions (docs/schema.md flags: calls =
every `call` point, timely, missed). Unlike the reports, which let InfluxDB
sum the flags, the board fetches one row per call with its identity
(unit, boot, seq), because it must merge these with calls arriving on the
live stream without counting any twice; a sum cannot be de-duplicated.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from collector.influx import InfluxV1, tag_literal
from collector.schema import shift_name
from seatmon.report import oldschema
from seatmon.wallboard.floor import call_unit

log = logging.getLogger(__name__)


def shift_calls_query(shift: str, sites=(), old_schema: bool = False) -> str:
    """InfluxQL for every stored call of one shift, with its identity and
    flags. The label is a field; its name, a tag, narrows the points read.
    `old_schema`: calls stored with the label as a tag are there too (read
    both ways, slower, until `seatmon collect migrate` has run)."""
    label = tag_literal(shift)
    if old_schema:
        cond = [f'("shift"::field = {label} OR "shift"::tag = {label})']
    else:
        cond = [f'"shift_name" = {tag_literal(shift_name(shift) or shift)}', f'"shift"::field = {label}']
    window = _shift_window(shift)
    if window:
        # The label starts with the shift's local start date; a shift lasts
        # less than a day, so two days either side bound it in any time zone.
        cond += [f"time >= {window[0]}ms", f"time < {window[1]}ms"]
    if sites:
        cond.append("(" + " OR ".join(f'"site" = {tag_literal(s)}' for s in sites) + ")")
    return ('SELECT "boot", "seq", "answered", "timely", "missed" FROM "call" WHERE '
            + " AND ".join(cond) + ' GROUP BY "unit", "inc"')


def _shift_window(shift: str) -> tuple[int, int] | None:
    try:
        day = date.fromisoformat(shift.partition("/")[0])
    except ValueError:
        return None
    start = datetime.combine(day - timedelta(days=2), datetime.min.time(), timezone.utc)
    end = datetime.combine(day + timedelta(days=3), datetime.min.time(), timezone.utc)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def rows_from_results(results: list[dict]) -> list[tuple]:
    """InfluxDB's JSON -> (unit, boot, seq, answered, timely, missed) rows."""
    rows = []
    for result in results:
        for series in result.get("series", []):
            tags = series.get("tags") or {}
            unit = tags.get("unit")
            cols = series["columns"]
            for values in series["values"]:
                r = dict(zip(cols, values))
                if unit is None or r.get("seq") is None:
                    continue
                rows.append((call_unit(unit, tags.get("inc")), int(r.get("boot") or 0), int(r["seq"]),
                             int(r.get("answered") or 0),
                             int(r.get("timely") or 0), int(r.get("missed") or 0)))
    return rows


def load_shift_calls(db: InfluxV1, shift: str, sites=()) -> list[tuple]:
    """Stored calls of `shift`; raises collector.influx.InfluxError."""
    old = oldschema.present(db, ("call",))
    if old:
        log.warning(oldschema.NOTE)
    return rows_from_results(db.query(shift_calls_query(shift, sites, old)))
