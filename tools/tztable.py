"""Build a desk unit's local-time table from an IANA time zone.

The unit has no time-zone database; its config key `tz` holds rows
[utc_ms, offset_minutes], one per offset change (the first row gives the
offset from the start of the table on), and firmware/localtime.py looks
instants up in it. This host-side tool computes the rows with zoneinfo.

    python -m tools.tztable Europe/Berlin --from 2026 --to 2036
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_UTC = timezone.utc


def _offset_min(zone: ZoneInfo, instant: datetime) -> int:
    off = instant.astimezone(zone).utcoffset()
    assert off is not None
    return int(off.total_seconds()) // 60


def build(zone_name: str, start_year: int, end_year: int) -> list[list[int]]:
    """Rows [utc_ms, offset_minutes] from 1 Jan start_year to 1 Jan end_year
    (UTC). Offsets change at most a few times a year, never twice a day, so
    a daily scan finds each change and a bisection pins it to the second."""
    if end_year <= start_year:
        raise ValueError("end year must be after start year")
    zone = ZoneInfo(zone_name)
    t = datetime(start_year, 1, 1, tzinfo=_UTC)
    end = datetime(end_year, 1, 1, tzinfo=_UTC)
    off = _offset_min(zone, t)
    rows = [[int(t.timestamp() * 1000), off]]
    day = timedelta(days=1)
    while t < end:
        nxt = min(t + day, end)
        noff = _offset_min(zone, nxt)
        if noff != off:
            lo, hi = t, nxt  # offset(lo) == off, offset(hi) != off
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _offset_min(zone, mid) == off:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            if _offset_min(zone, hi) == off:
                hi += timedelta(seconds=1)
            rows.append([int(hi.timestamp() * 1000), noff])
            off = noff
        t = nxt
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zone", help="IANA time zone, e.g. Europe/Berlin")
    year = datetime.now(_UTC).year
    parser.add_argument("--from", dest="start", type=int, default=year, help="first year (default: this year)")
    parser.add_argument("--to", dest="end", type=int, default=year + 10, help="end year, exclusive (default: +10)")
    args = parser.parse_args(argv)
    try:
        rows = build(args.zone, args.start, args.end)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        parser.exit(2, f"tztable: {exc}\n")
    print(json.dumps({"tz": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
