"""Benchmark: a 50-seat month (80 calls per seat per day, 120 000 calls),
every report but answers and monthly under 1 s: `safety` and `staffing`
(each --by), `units`, the daily and the weekly page.

    python bench/bench_reports_small.py [--influx URL] [--repeat 3]

The month is loaded twice, from the same seeded events: in today's schema
(shift name a tag, shift label a field, roll-ups stored) and in the schema
before it (the label a `shift` tag). The baseline, timed in the same run, is
each report over the old-schema copy: the reports then run the statements
they ran before the change (their old-schema path), so the ratio is new
reads over the previous statements. Without --influx it starts its own
InfluxDB under var/bench/reports-small-influxdb and reuses the data later.
Prints one JSON document and writes it to bench/run/reports_small.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import rollstore  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from seatmon.report import periods, safety, staffing, units  # noqa: E402
from seatmon.report.query import make_scope, run  # noqa: E402
from collector.schema import event_point, line  # noqa: E402
from seatmon.report.oldschema import old_event_line  # noqa: E402
from tools import gendata  # noqa: E402
from tools.gendata import Plan  # noqa: E402
from tools.servers import InfluxDB  # noqa: E402

PLAN = Plan(start=date(2026, 11, 1), days=30, seats=50, calls_per_seat_day=80, outgoing_per_seat_day=10,
            tz="Europe/Berlin", seed=2026, heartbeat_hours=6)
EXPECTED_CALLS = PLAN.seats * PLAN.days * PLAN.calls_per_seat_day
BAR_S = 1.0


def calls_stored(db: InfluxV1) -> int:
    try:
        rows = run(db, ["SELECT count(ring_ms) FROM call"])[0]
    except Exception:
        return 0
    return rows[0][1]["count"] if rows else 0


def load(new: InfluxV1, old: InfluxV1) -> float:
    """Both copies of the month, the new one with its roll-ups."""
    t = time.perf_counter()
    for db in (new, old):
        db.query(f'DROP DATABASE "{db.database}"', method="POST")
        db.create_database()
    buf_new: list[str] = []
    buf_old: list[str] = []
    for item in gendata._generate(PLAN, True):  # events, and the units' status lines
        if isinstance(item, str):
            buf_new.append(item)
            buf_old.append(item)
        else:
            buf_new.append(line(event_point(item)))
            buf_old.append(old_event_line(item))
        if len(buf_new) >= 50000:
            new.write_lines(buf_new)
            old.write_lines(buf_old)
            buf_new, buf_old = [], []
    new.write_lines(buf_new)
    old.write_lines(buf_old)
    zone = ZoneInfo(PLAN.tz)
    start = int(datetime.combine(PLAN.start, dtime(0), zone).timestamp() * 1000)
    end = int(datetime.combine(PLAN.start + timedelta(days=PLAN.days), dtime(0), zone).timestamp() * 1000)
    rollstore.rebuild(new, start, end, PLAN.tz)
    return time.perf_counter() - t


def reports():
    """(name, fn(db)) of every report measured."""
    month = make_scope("2026-11-01", "2026-11-30", PLAN.tz)
    day = periods.day_scope("2026-11-18", PLAN.tz)
    week = periods.week_scope("2026-W47", PLAN.tz)
    out = [(f"safety --by {by}", lambda db, by=by: safety.safety(db, month, by)) for by in safety.BY_CHOICES]
    out += [(f"staffing --by {by}", lambda db, by=by: staffing.staffing(db, month, by, 30))
            for by in staffing.BY_CHOICES]
    out.append(("units", lambda db: units.units(db, month)))
    out.append(("daily page", lambda db: periods.period_page(periods.collect(db, "daily", day))))
    out.append(("weekly page", lambda db: periods.period_page(periods.collect(db, "weekly", week))))
    return out


def timed(fn, db) -> float:
    t = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # the old-schema note, once per report
        fn(db)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--db", default="bench_small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="only the reports whose name contains this")
    args = ap.parse_args()
    server = None
    if not args.influx:
        server = InfluxDB(ROOT / "var" / "bench" / "reports-small-influxdb")
        server.start()
    url = args.influx or server.url
    try:
        new, old = InfluxV1(url, args.db, timeout=300), InfluxV1(url, args.db + "_old", timeout=300)
        load_s = None
        if calls_stored(new) != EXPECTED_CALLS or calls_stored(old) != EXPECTED_CALLS:
            load_s = round(load(new, old), 1)
            print(f"loaded both copies in {load_s} s", file=sys.stderr)
            time.sleep(15)  # let the write cache settle
        series = {}
        for name, db in (("new", new), ("old", old)):
            rows = run(db, ['SHOW SERIES CARDINALITY FROM "call"'])[0]
            series[name] = rows[0][1].get("count") if rows else None
        out = {"calls": calls_stored(new), "seats": PLAN.seats, "days": PLAN.days, "call_series": series,
               "load_s": load_s, "bar_s": BAR_S, "reports": []}
        for name, fn in reports():
            if args.only and args.only not in name:
                continue
            new_t, old_t = [], []
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                new_t.append(timed(fn, new))
                old_t.append(timed(fn, old))
            r, b = statistics.median(new_t), statistics.median(old_t)
            out["reports"].append({"report": name, "report_s": round(r, 3), "previous_statements_s": round(b, 3),
                                   "ratio": round(r / b, 3), "under_1s": r < BAR_S,
                                   "report_runs_s": [round(x, 3) for x in new_t],
                                   "previous_runs_s": [round(x, 3) for x in old_t]})
            print(f"{name}: {r:.3f} s (previous statements {b:.3f} s)", file=sys.stderr)
        text = json.dumps(out, indent=2)
        print(text)
        (ROOT / "bench" / "run").mkdir(exist_ok=True)
        (ROOT / "bench" / "run" / "reports_small.json").write_text(text + "\n")
    finally:
        if server:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
