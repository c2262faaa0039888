"""Whether the roll-ups of a report's range are still pending: each
collector writes its latest count and span of dirty keys to InfluxDB
(collector.rollup.pending_line); a report whose range meets a span that
still has keys says, on standard error, that its figures may change.
"""

from __future__ import annotations

import sys
from datetime import datetime

from collector import rollup as ru
from collector.influx import InfluxV1
from seatmon.report.query import Scope


def pending_notes(db: InfluxV1, scope: Scope) -> list[str]:
    """One note per collector whose latest word has dirty keys in the range."""
    notes = []
    q = f"SELECT * FROM {ru.MEASUREMENT_PENDING} GROUP BY collector ORDER BY time DESC LIMIT 1"
    for result in db.query(q):
        for series in result.get("series", []):
            row = dict(zip(series["columns"], series["values"][0]))
            keys, lo, hi = int(row.get("keys") or 0), int(row.get("from_ms") or 0), int(row.get("to_ms") or 0)
            if keys and lo < scope.end_ms and hi > scope.start_ms:
                collector = (series.get("tags") or {}).get("collector", "?")
                notes.append(f"roll-ups of {keys} interval(s) from {_span(lo, hi, scope)} are still pending at "
                             f"collector {collector} (as of {_when(row['time'], scope)}): figures may still "
                             "change; run the report again shortly")
    return notes


def _when(ts_ms: int, scope: Scope) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, scope.zone).strftime("%Y-%m-%d %H:%M") + f" {scope.tz}"


def _span(lo: int, hi: int, scope: Scope) -> str:
    first, last = (datetime.fromtimestamp(t / 1000, scope.zone) for t in (lo, hi))
    end = last.strftime("%H:%M" if last.date() == first.date() else "%Y-%m-%d %H:%M")
    return f"{first:%Y-%m-%d %H:%M} to {end} {scope.tz}"


def note(db: InfluxV1, scope: Scope, report: str) -> None:
    for text in pending_notes(db, scope):
        print(f"seatmon report {report}: note: {text}", file=sys.stderr)
