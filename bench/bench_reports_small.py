"""Benchmark: a 50-seat month (80 calls per seat per day, 120 000 calls):
`safety` and `staffing` (each --by), `units`, the daily and the weekly page,
each against the bar of 1 s.

    python bench/bench_reports_small.py [--influx URL] [--repeat 3]

The month is loaded twice from the same seeded events: in today's schema
(the shift's name a tag, its label a field, roll-ups stored) and in the
schema before (the label a `shift` tag). Baselines, timed in the same run
and interleaved with the reports: for safety, staffing and units the
statements each report ran before the change, sent bare to /query over the
old-schema copy; for the pages, the whole page over the old-schema copy
(its staffing then runs the previous statements). Without --influx it
starts its own InfluxDB under var/bench/reports-small-influxdb and keeps the
data for later runs. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from datetime import datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import rollstore  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from seatmon.report import periods, safety, staffing, units  # noqa: E402
from seatmon.report.query import make_scope, run, tz_clause, where  # noqa: E402
from collector.schema import event_point, line  # noqa: E402
from seatmon.report.oldschema import old_event_line  # noqa: E402
from rig import gendata  # noqa: E402
from bench.bench_reports import SMALL_PLAN, kept_influx  # noqa: E402

PLAN = SMALL_PLAN  # the 50-seat month bench_reports.py times the answers and the monthly page on
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
    # The roll-ups, from the stored rows as the collector computes them (rig/gendata does not store them yet).
    rollstore.rebuild(new, start, end, PLAN.tz)
    return time.perf_counter() - t


# safety's statements before the change (they grouped by the `shift` tag).
_COUNTED = ("equipment = 'on' AND action = 'logged'", "action = 'reminded'", "action = 'cut'",
            "action = 'postponed'", "equipment = 'unknown' AND action = 'logged'",
            "action = 'none' AND equipment != 'off'")


def previous_safety(scope, by: str) -> list[str]:
    cond = where(scope)
    grp = (" GROUP BY time(1d) fill(none)" + tz_clause(scope) if by == "day"
           else " GROUP BY " + {"shift-seat": "shift, seat"}.get(by, by))
    out = ["SELECT count(idle_ms) AS shift_ends, sum(overtime_ms) AS overtime FROM shift_end" + cond + grp]
    out += [f"SELECT count(idle_ms) AS n FROM shift_end{cond} AND {c}{grp}" for c in _COUNTED]
    out.append(f"SELECT idle_ms FROM shift_end{cond} AND action = 'none' AND equipment = 'off' "
               "GROUP BY site, unit, seat, shift")
    out.append(f"SELECT fault_count FROM selftest{cond} GROUP BY site, unit")
    return out


def bare(statements: list[str]):
    return lambda db: db.query(";\n".join(statements))


def reports():
    """(name, report fn(db), baseline fn(old-schema db)) of every report measured."""
    month = make_scope("2026-11-01", "2026-11-30", PLAN.tz)
    day = periods.day_scope("2026-11-18", PLAN.tz)
    week = periods.week_scope("2026-W47", PLAN.tz)
    out = [(f"safety --by {by}", lambda db, by=by: safety.safety(db, month, by), bare(previous_safety(month, by)))
           for by in safety.BY_CHOICES]
    out += [(f"staffing --by {by}", lambda db, by=by: staffing.staffing(db, month, by, 30),
             bare(staffing.old_statements(month, 30, by == "shift"))) for by in staffing.BY_CHOICES]
    out.append(("units", lambda db: units.units(db, month), bare(units.statements(month))))
    for name, kind, scope in (("daily page", "daily", day), ("weekly page", "weekly", week)):
        page = lambda db, kind=kind, scope=scope: periods.period_page(periods.collect(db, kind, scope))  # noqa: E731
        out.append((name, page, page))
    return out


def timed(fn, db) -> float:
    t = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # the old-schema note
        fn(db)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--db", default="bench_small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="only the reports whose name contains this")
    args = ap.parse_args()
    with kept_influx(args.influx, "reports-small-influxdb") as url:
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
               "load_s": load_s, "bar_s": BAR_S,
               "load_avg_before": [round(x, 1) for x in os.getloadavg()], "reports": []}
        for name, fn, baseline in reports():
            if args.only and args.only not in name:
                continue
            timed(fn, new)  # warm: imports (pyworkforce brings pandas), connections
            new_t, old_t = [], []
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                new_t.append(timed(fn, new))
                old_t.append(timed(baseline, old))
            r, b = statistics.median(new_t), statistics.median(old_t)
            what = "page over the old-schema copy" if "page" in name else "previous statements, bare, old-schema copy"
            out["reports"].append({"report": name, "report_s": round(r, 3), "baseline": what,
                                   "baseline_s": round(b, 3), "ratio": round(r / b, 3), "under_1s": r < BAR_S,
                                   "report_runs_s": [round(x, 3) for x in new_t],
                                   "baseline_runs_s": [round(x, 3) for x in old_t]})
            print(f"{name}: {r:.3f} s (baseline {b:.3f} s)", file=sys.stderr)
        out["load_avg_after"] = [round(x, 1) for x in os.getloadavg()]
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
