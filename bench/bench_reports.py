"""Benchmark: `seatmon report answers --by seat` and `--by day` over one
month of 500 seats at 80 calls per seat per day (1.2 M calls), each next to
the bare InfluxQL of the same aggregate timed in the same run.

    python bench/bench_reports.py [--influx URL] [--repeat 3]

Without --influx it starts its own InfluxDB with its data under
var/bench/reports-influxdb, so the month is generated once (a few minutes,
in 50 000-line gzip batches) and reused by later runs. Prints one JSON
document: per report the median wall time of the report (all its
statements, the parallel total, the Python around them) and of the bare
statements sent straight to /query, and their ratio. Bar: under 3 s each
and within 1.5x of the bare query.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.influx import InfluxV1  # noqa: E402
from seatmon.report import answers as answers_mod  # noqa: E402
from seatmon.report.query import make_scope, run, where  # noqa: E402
from tools.gendata import Plan, load  # noqa: E402
from tools.servers import InfluxDB  # noqa: E402

PLAN = Plan(start=date(2026, 11, 1), days=30, seats=500, calls_per_seat_day=80, outgoing_per_seat_day=10,
            tz="Europe/Berlin", seed=2026, heartbeat_hours=6)
# What one would write without thinking about series: every aggregate in one statement.
NAIVE = ("SELECT count(ring_ms), sum(timely), sum(late), sum(missed), sum(abandoned), count(answer_ms), "
         "mean(answer_ms), median(answer_ms), percentile(answer_ms, 90), max(answer_ms) FROM call")
EXPECTED_CALLS = PLAN.seats * PLAN.days * PLAN.calls_per_seat_day


class BenchInfluxDB(InfluxDB):
    """Snapshots the write cache to TSM files soon after the load, so the
    queries measure the steady state and not a 1.2 M-point in-memory cache."""

    def command(self) -> list[str]:
        cmd = super().command()
        text = self.config_path.read_text()
        self.config_path.write_text(text.replace("[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "5s"\n'))
        return cmd


def calls_stored(db: InfluxV1) -> int:
    try:
        rows = run(db, ["SELECT count(ring_ms) FROM call"])[0]
    except Exception:
        return 0
    return rows[0][1]["count"] if rows else 0


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--db", default="bench_reports")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    server = None
    if not args.influx:
        server = BenchInfluxDB(ROOT / "var" / "bench" / "reports-influxdb")
        server.start()
    url = args.influx or server.url
    try:
        db = InfluxV1(url, args.db, timeout=300)
        load_s = None
        if calls_stored(db) != EXPECTED_CALLS:
            db.query(f'DROP DATABASE "{args.db}"', method="POST")
            t = time.perf_counter()
            points = load(db, PLAN)
            load_s = round(time.perf_counter() - t, 1)
            print(f"loaded {points} points in {load_s} s", file=sys.stderr)
            time.sleep(15)  # let the cache snapshot to TSM
        scope = make_scope("2026-11-01", "2026-11-30", PLAN.tz)
        series = run(db, ['SHOW SERIES CARDINALITY FROM "call"'])[0]
        out = {"calls": calls_stored(db), "seats": PLAN.seats, "days": PLAN.days,
               "call_series": series[0][1].get("count") if series else None, "load_s": load_s, "reports": []}
        for by in ("seat", "day"):
            grouped, total_stmt = answers_mod.statements(scope, by)
            bare = grouped + [total_stmt]
            report_t, bare_t, groups_t = [], [], []
            for _ in range(args.repeat):  # interleaved, so all see the same machine load
                report_t += timed(lambda: answers_mod.answers(db, scope, by), 1)
                bare_t += timed(lambda: db.query(";\n".join(bare)), 1)
                groups_t += timed(lambda: db.query(";\n".join(grouped)), 1)
            naive = NAIVE + where(scope) + answers_mod.group_clause(by, scope)
            naive_t = timed(lambda: db.query(naive), 1)[0]
            r, b, g = (statistics.median(x) for x in (report_t, bare_t, groups_t))
            out["reports"].append({
                "report": f"answers --by {by}", "report_s": round(r, 3), "bare_query_s": round(b, 3),
                "ratio": round(r / b, 3), "bare_groups_s": round(g, 3), "ratio_vs_groups": round(r / g, 3),
                "naive_statement_s": round(naive_t, 3),
                "report_runs_s": [round(x, 3) for x in report_t], "bare_runs_s": [round(x, 3) for x in bare_t],
                "bare_query": bare, "under_3s": r < 3.0, "within_1_5x": r / b <= 1.5})
        print(json.dumps(out, indent=2))
    finally:
        if server:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
