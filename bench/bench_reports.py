"""Benchmark: the answers reports and the monthly page over one month of 500
seats at 80 calls per seat per day (1.2 M calls) and over a 50-seat month,
each next to the bare InfluxQL over raw calls timed in the same run.

    python bench/bench_reports.py [--influx URL] [--repeat 3]

Without --influx it starts its own InfluxDB with its data under
var/bench/reports-influxdb-<SCHEMA_KEY>, so the months are generated once
(a minute or two, with their roll-ups, by rig/gendata.py) and reused by
later runs; a change of the stored schema changes SCHEMA_KEY and so
regenerates them. A database is reused only when its `bench_meta` marker
(written after a complete load) names this SCHEMA_KEY and plan.

Each report runs as `seatmon report ...` runs it (the CLI's own code,
in-process, written to a file). The baseline is the statements the
reports sent before the roll-ups, over the same raw calls: for
`answers --by X`, its per-group statements and the total's order
statistics, and the one-statement NAIVE aggregate; for the monthly page,
the previous answers statements of its four groupings and the distribution.
Prints one JSON document: medians of --repeat runs, the ratios, the bars.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.influx import InfluxV1  # noqa: E402
from seatmon.cli import main as cli  # noqa: E402
from seatmon.report import answers as answers_mod  # noqa: E402
from seatmon.report.query import make_scope, run, where  # noqa: E402
from rig.gendata import Plan, load  # noqa: E402
from rig.servers import InfluxDB  # noqa: E402

# Bump when the stored schema (collector/schema.py, collector/rollup.py) changes.
SCHEMA_KEY = "s16-times"
PLAN = Plan(start=date(2026, 11, 1), days=30, seats=500, calls_per_seat_day=80, outgoing_per_seat_day=10,
            tz="Europe/Berlin", seed=2026, heartbeat_hours=6)
# The 50-seat month ("every report under 1 s"): the same plan as
# bench_reports_small.py's (safety, staffing, units, the daily and weekly pages).
SMALL_PLAN = Plan(start=date(2026, 11, 1), days=30, seats=50, calls_per_seat_day=80, outgoing_per_seat_day=10,
                  tz="Europe/Berlin", seed=2026, heartbeat_hours=6)
# What one would write without thinking about series: every aggregate in one statement.
NAIVE = ("SELECT count(ring_ms), sum(timely), sum(late), sum(missed), sum(abandoned), count(answer_ms), "
         "mean(answer_ms), median(answer_ms), percentile(answer_ms, 90), max(answer_ms) FROM call")
BY_ALL = answers_mod.BY_CHOICES


class BenchInfluxDB(InfluxDB):
    """Snapshots the write cache to TSM files soon after the load, so the
    queries measure the steady state and not an in-memory cache."""

    def command(self) -> list[str]:
        cmd = super().command()
        text = self.config_path.read_text()
        self.config_path.write_text(text.replace("[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "5s"\n'))
        return cmd


@contextmanager
def kept_influx(url: str | None, folder: str = f"reports-influxdb-{SCHEMA_KEY}") -> Iterator[str]:
    """The InfluxDB a report benchmark reads: `url` (--influx, a running
    server), else one started on the data kept under var/bench/FOLDER
    between runs (loaded once), stopped at the end."""
    if url:
        yield url
        return
    server = BenchInfluxDB(ROOT / "var" / "bench" / folder)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def marker(plan: Plan) -> str:
    return f"{SCHEMA_KEY}/{plan.seats}/{plan.days}/{plan.calls_per_seat_day}/{plan.seed}/{plan.tz}"


def loaded(db: InfluxV1, plan: Plan) -> bool:
    try:
        rows = run(db, ["SELECT last(plan) FROM bench_meta"])[0]
    except Exception:
        return False
    return bool(rows) and rows[0][1].get("last") == marker(plan)


def ensure(db: InfluxV1, plan: Plan) -> float | None:
    """Load the plan unless this database already holds it; the load time."""
    if loaded(db, plan):
        return None
    db.query(f'DROP DATABASE "{db.database}"', method="POST")
    t = time.perf_counter()
    points = load(db, plan)
    db.write_lines([f'bench_meta plan="{marker(plan)}" 0'])
    took = round(time.perf_counter() - t, 1)
    print(f"loaded {points} points ({plan.seats} seats) in {took} s", file=sys.stderr)
    time.sleep(15)  # let the cache snapshot to TSM
    return took


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def report_cli(db: InfluxV1, out: str, *args: str) -> None:
    code = cli(["report", *args, "--influx", db.url, "--db", db.database, "--out", out, "--timeout", "600"])
    if code != 0:
        raise SystemExit(f"seatmon report {' '.join(args)} exited {code}")


def old_answers_statements(scope, by: str) -> str:
    grouped, total_stmt = answers_mod.statements(scope, by)
    return ";\n".join(grouped + [total_stmt])


def old_distribution_statements(scope) -> str:
    cond = answers_mod._and(where(scope), answers_mod.ANSWERED)
    edges = answers_mod.DISTRIBUTION_EDGES_MS
    return ";\n".join(f"SELECT count(answer_ms) AS n FROM call{cond} AND answer_ms >= {lo}"
                      + (f" AND answer_ms < {hi}" if hi is not None else "")
                      for lo, hi in zip(edges, list(edges[1:]) + [None]))


def measure(db: InfluxV1, plan: Plan, bys, repeat: int, bars: dict, baseline: bool, tmp: str) -> dict:
    first, last = plan.start.isoformat(), date.fromordinal(plan.start.toordinal() + plan.days - 1).isoformat()
    scope = make_scope(first, last, plan.tz)
    month = plan.start.strftime("%Y-%m")
    series = run(db, ['SHOW SERIES CARDINALITY FROM "call"'])[0]
    calls = run(db, ["SELECT count(ring_ms) FROM call"])[0]
    out = {"seats": plan.seats, "days": plan.days, "calls": calls[0][1]["count"] if calls else 0,
           "call_series": series[0][1].get("count") if series else None,
           "answered": None, "percentiles": None, "reports": []}
    jobs = [(f"answers --by {by}", ("answers", "--by", by, "--from", first, "--to", last, "--tz", plan.tz),
             old_answers_statements(scope, by), bars.get(by)) for by in bys]
    monthly_old = ";\n".join([old_answers_statements(scope, by) for by in ("day", "seat", "hour", "shift")]
                             + [old_distribution_statements(scope)])
    jobs.append(("monthly page", ("monthly", "--month", month, "--tz", plan.tz), monthly_old, bars.get("monthly")))
    for name, args, old, bar in jobs:
        path = os.path.join(tmp, "report.html" if name == "monthly page" else "report.txt")
        report_t = []
        for _ in range(repeat):
            report_t.append(timed(lambda: report_cli(db, path, *args)))
        entry = {"report": name, "report_s": round(statistics.median(report_t), 3),
                 "report_runs_s": [round(x, 3) for x in report_t], "bar_s": bar,
                 "under_bar": statistics.median(report_t) < bar if bar else None}
        if baseline:  # once: the old statements take many seconds each at this size
            b = timed(lambda: db.query(old))
            entry.update(old_statements_s=round(b, 3), ratio_vs_old=round(statistics.median(report_t) / b, 3))
            if name.startswith("answers"):
                by = args[2]
                naive = NAIVE + where(scope) + answers_mod.group_clause(by, scope)
                n = timed(lambda: db.query(naive))
                entry.update(naive_statement_s=round(n, 3), ratio_vs_naive=round(statistics.median(report_t) / n, 3))
        out["reports"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    total = answers_mod.answers(db, scope, "site").total
    out["answered"] = total.answered
    out["percentiles"] = "exact" if total.percentile_resolution_ms == 0 else f"histogram ±{total.percentile_resolution_ms} ms"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true", help="skip the old statements (they take minutes)")
    args = ap.parse_args()
    with kept_influx(args.influx) as url:
        big = InfluxV1(url, "bench_reports", timeout=600)
        small = InfluxV1(url, "bench_reports_small", timeout=600)
        load_big, load_small = ensure(big, PLAN), ensure(small, SMALL_PLAN)
        with tempfile.TemporaryDirectory() as tmp:
            doc = {"schema_key": SCHEMA_KEY, "exact_max": answers_mod.EXACT_MAX, "workers": answers_mod.WORKERS,
                   "slices": answers_mod.SLICES, "load_avg_at_start": os.getloadavg(),
                   "load_s": {"500_seats": load_big, "50_seats": load_small},
                   "month_500_seats": measure(big, PLAN, ("seat", "day"), args.repeat,
                                              {"seat": 2.0, "day": 2.0, "monthly": 10.0}, not args.no_baseline, tmp),
                   "month_50_seats": measure(small, SMALL_PLAN, BY_ALL, args.repeat,
                                             {**{by: 1.0 for by in BY_ALL}, "monthly": 1.0}, not args.no_baseline,
                                             tmp),
                   "load_avg_at_end": os.getloadavg()}
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
