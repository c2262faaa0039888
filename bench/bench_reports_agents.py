"""Benchmark: the per-agent reports over bench_reports.py's 500-seat month
(1.2 M calls) with a full roster: 3 shifts a day, agents rotating seats
weekly, a few seat changes inside shifts (rig/genroster.py).

    python bench/bench_reports_agents.py [--influx URL] [--repeat 3]

Shares bench_reports.py's server and database (generated once, reused).
The baseline is measured in the same run, on the same data, with no
roster: `answers --by seat`, the monthly page composed as before this
change (previous_page) and today's without the agent table (no roster: no
table). Each round drops the roster, runs the baseline, writes the roster
and runs the per-agent reports; at the end the roster is dropped again, so
the database is as bench_reports.py left it. Each report runs as `seatmon
report ...` runs it (the CLI's own code, in-process, written to a file).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_reports import PLAN, SCHEMA_KEY, ensure, kept_influx, report_cli, timed  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from rig.genroster import roster  # noqa: E402
from seatmon.report import answers as answers_mod  # noqa: E402
from seatmon.report import monthly as monthly_mod  # noqa: E402
from seatmon.report import safety as safety_mod  # noqa: E402
from seatmon.report import staffing as staffing_mod  # noqa: E402
from seatmon.report import units as units_mod  # noqa: E402
from seatmon.report.query import month_scope  # noqa: E402
from seatmon.roster import store  # noqa: E402

CHANGES = 0.003  # share of shifts with a seat change at a random minute (~140 in the month)
BARS = {"answers --by agent": 2.0, "monthly page with the agent table": 5.0, "monthly page, no roster": 5.0}


def previous_page(db: InfluxV1, month: str, tz: str, path: str) -> None:
    """The monthly page composed as before this change (the baseline): the
    hour grid and staffing by day each read on their own, no agent table."""
    scope = month_scope(month, tz)
    with ThreadPoolExecutor(max_workers=4) as pool:
        others = [pool.submit(safety_mod.read, db, scope), pool.submit(units_mod.units, db, scope),
                  pool.submit(staffing_mod.staffing, db, scope, "day", 60)]
        hours = pool.submit(answers_mod.hour_grid, db, scope)
        pulled = answers_mod.pull(db, scope, ("day", "seat", "shift"), hist=True)
        by_day, by_seat, by_shift = (pulled.reports[by] for by in ("day", "seat", "shift"))
        safety_rows, units, staffing_day = (f.result() for f in others)
        page = monthly_mod.render_monthly(scope, by_day, by_seat, hours.result(), by_shift,
                                          answers_mod.bins_from_hist(pulled.hist),
                                          *(safety_mod.build(safety_rows, scope, by) for by in ("seat", "day")),
                                          units, staffing_day)
    Path(path).write_text(page, encoding="utf-8")


def drop_roster(db: InfluxV1) -> None:
    db.query(f"DELETE FROM {store.MEASUREMENT}", method="POST")  # no error when there is none


def measure(db: InfluxV1, phases, repeat: int, tmp: str) -> dict:
    """`phases`: (set-up, jobs) pairs. Each round runs every phase's set-up
    and then its jobs, `repeat` rounds (so a change in the machine's load
    hits every job alike, with and without the roster); medians."""
    runs: dict[str, list[float]] = {name: [] for _setup, jobs in phases for name, _args in jobs}
    for _ in range(repeat):
        for setup, jobs in phases:
            setup()
            for name, args in jobs:
                path = os.path.join(tmp, "report.html" if args[0] in ("monthly", "previous") else "report.txt")
                if args[0] == "previous":
                    runs[name].append(timed(lambda: previous_page(db, args[1], args[2], path)))
                else:
                    runs[name].append(timed(lambda: report_cli(db, path, *args)))
                print(json.dumps({name: round(runs[name][-1], 3)}), file=sys.stderr, flush=True)
    out = {}
    for name, values in runs.items():
        median = statistics.median(values)
        bar = BARS.get(name)
        out[name] = {"report_s": round(median, 3), "runs_s": [round(x, 3) for x in values], "bar_s": bar,
                     "under_bar": median < bar if bar else None}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    first = PLAN.start.isoformat()
    last = PLAN.start.replace(day=PLAN.days).isoformat()
    month, tz = PLAN.start.strftime("%Y-%m"), PLAN.tz
    with kept_influx(args.influx) as url:
        try:
            db = InfluxV1(url, "bench_reports", timeout=600)
            ensure(db, PLAN)
            drop_roster(db)
            assignments, agents = roster(PLAN, seed=2026, changes=CHANGES)
            changed = len(assignments) - len({(a.seat, a.shift) for a in assignments})
            with tempfile.TemporaryDirectory() as tmp:
                doc = {"schema_key": SCHEMA_KEY, "load_avg_at_start": os.getloadavg(), "seats": PLAN.seats,
                       "days": PLAN.days, "assignments": len(assignments), "agents": len(agents),
                       "seat_changes_inside_shifts": changed}
                one = agents[0].id
                span = ("--from", first, "--to", last, "--tz", tz)
                baseline = [("monthly page as before", ("previous", month, tz)),
                            ("monthly page, no roster", ("monthly", "--month", month, "--tz", tz)),
                            ("answers --by seat", ("answers", "--by", "seat", *span))]
                per_agent = [("answers --by agent", ("answers", "--by", "agent", *span)),
                             ("monthly page with the agent table", ("monthly", "--month", month, "--tz", tz)),
                             (f"answers --agent {one} --by day", ("answers", "--agent", one, "--by", "day", *span)),
                             ("safety --by agent", ("safety", "--by", "agent", *span)),
                             ("staffing --by agent", ("staffing", "--by", "agent", *span)),
                             ("yearly", ("yearly", "--year", str(PLAN.start.year), "--tz", tz))]
                writes: list[float] = []

                def with_roster() -> None:
                    t = time.perf_counter()
                    store.write(db, assignments, agents)
                    writes.append(time.perf_counter() - t)

                got = measure(db, [(lambda: drop_roster(db), baseline), (with_roster, per_agent)], args.repeat, tmp)
                doc["roster_write_s"] = round(statistics.median(writes), 2)
                doc["baseline"] = {name: got[name] for name, _a in baseline}
                doc["per_agent"] = {name: got[name] for name, _a in per_agent}
                base, per = doc["baseline"], doc["per_agent"]
                doc["ratios"] = {
                    "answers by agent / by seat": round(per["answers --by agent"]["report_s"]
                                                        / base["answers --by seat"]["report_s"], 2),
                    "monthly with / without the agent table": round(
                        per["monthly page with the agent table"]["report_s"]
                        / base["monthly page, no roster"]["report_s"], 2),
                    "monthly without the agent table / as before": round(
                        base["monthly page, no roster"]["report_s"] / base["monthly page as before"]["report_s"], 2)}
                doc["load_avg_at_end"] = os.getloadavg()
            print(json.dumps(doc, indent=2))
        finally:
            drop_roster(InfluxV1(url, "bench_reports"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
