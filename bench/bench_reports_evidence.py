"""Benchmark: `report agent` (one agent's month) and `report calls --agent`
(one agent's month of calls) on the 500-seat month of bench_reports.py
(1.2 M calls) with a full roster: every seat staffed on every shift
(day 07-15, late 15-23, night 23-07 local, as rig/gendata.py labels
them), 1 500 agents, each on one shift, moving one seat on every day.

    python bench/bench_reports_evidence.py [--influx URL] [--repeat 3]

Without --influx it starts the InfluxDB of bench_reports.py (the same data
folder, so the month is generated once and shared). The roster is written
once (its `bench_meta_roster` marker). Each report runs as the command
runs it (the CLI's own code, in-process, written to a file, the audit line
to a temp file). Baselines timed in the same run: the bare InfluxQL
statement reading one seat's month of raw calls (about what one agent's
calls cost to read), and `report answers --by site` for the month (the
site's figures the agent's page shows beside theirs). Prints one JSON
document: medians of --repeat runs, the ratios, the bars (1 s each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_reports import PLAN, SCHEMA_KEY, ensure, kept_influx, report_cli, timed  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from seatmon.report.query import make_scope, run  # noqa: E402
from seatmon.roster import store  # noqa: E402
from seatmon.roster.model import Agent, Assignment  # noqa: E402

ROSTER_KEY = "r1"
SHIFTS = (("day", 7, 8), ("late", 15, 8), ("night", 23, 8))  # name, local start hour, hours
AGENT = "ag-day-0042"
BARS = {"report agent": 1.0, "report calls --agent": 1.0}


def agent_id(shift: str, k: int) -> str:
    return f"ag-{shift}-{k:04d}"


def assignments(plan, first: date, days: int) -> list[Assignment]:
    """Every seat on every shift of the days: agent k of a shift sits at seat (k + day) mod seats."""
    zone = ZoneInfo(plan.tz)
    out = []
    for d in range(days):
        day = first + timedelta(days=d)
        for name, hour, hours in SHIFTS:
            start = datetime.combine(day, datetime.min.time(), zone).replace(hour=hour)
            end = (start.replace(tzinfo=None) + timedelta(hours=hours)).replace(tzinfo=zone)
            s, e = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
            for k in range(plan.seats):
                seat = plan.seat((k + day.toordinal()) % plan.seats)
                out.append(Assignment(plan.site, seat, f"{day.isoformat()}/{name}", agent_id(name, k), s, e))
    return out


def ensure_roster(db: InfluxV1, plan) -> float | None:
    marker = f"{ROSTER_KEY}/{SCHEMA_KEY}/{plan.seats}/{plan.start}/{plan.days}"
    rows = run(db, ["SELECT last(plan) FROM bench_meta_roster"])[0]
    if rows and rows[0][1].get("last") == marker:
        return None
    t = time.perf_counter()
    # The night before the month reaches into its first day.
    store.write(db, assignments(plan, plan.start - timedelta(days=1), plan.days + 1),
                [Agent(agent_id(n, k), f"Agent {n} {k}", f"{agent_id(n, k)}@site.example")
                 for n, _h, _l in SHIFTS for k in range(plan.seats)])
    db.write_lines([f'bench_meta_roster plan="{marker}" 0'])
    return round(time.perf_counter() - t, 1)


def measure(db: InfluxV1, plan, repeat: int, tmp: str) -> dict:
    first = plan.start.isoformat()
    last = (plan.start + timedelta(days=plan.days - 1)).isoformat()
    month = plan.start.strftime("%Y-%m")
    scope = make_scope(first, last, plan.tz)
    one_seat = (f"SELECT * FROM call WHERE time >= {scope.start_ms}ms AND time < {scope.end_ms}ms "
                f"AND seat = '{plan.seat(42)}'")
    jobs = [("report agent", ("agent", "--agent", AGENT, "--month", month, "--tz", plan.tz), "page.html"),
            ("report calls --agent", ("calls", "--agent", AGENT, "--from", first, "--to", last, "--tz", plan.tz,
                                      "--format", "csv"), "calls.csv"),
            ("answers --by site (baseline)", ("answers", "--by", "site", "--from", first, "--to", last, "--tz",
                                              plan.tz), "answers.txt")]
    out = {"seats": plan.seats, "days": plan.days, "agent": AGENT, "reports": []}
    times = {}
    for name, args, file_name in jobs:
        path = os.path.join(tmp, file_name)
        runs = [timed(lambda: report_cli(db, path, *args)) for _ in range(repeat)]
        times[name] = statistics.median(runs)
        entry = {"report": name, "report_s": round(times[name], 3), "report_runs_s": [round(x, 3) for x in runs],
                 "bar_s": BARS.get(name), "under_bar": times[name] < BARS[name] if name in BARS else None}
        if name == "report calls --agent":
            entry["rows"] = sum(1 for _ in open(path, encoding="utf-8")) - 1
        out["reports"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    raw = statistics.median([timed(lambda: db.query(one_seat)) for _ in range(repeat)])
    out["baseline_one_seat_month_raw_s"] = round(raw, 3)
    base = times["answers --by site (baseline)"]
    for entry in out["reports"]:
        entry["ratio_vs_one_seat_raw"] = round(entry["report_s"] / raw, 2) if raw else None
        entry["ratio_vs_answers_site"] = round(entry["report_s"] / base, 2) if base else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with kept_influx(args.influx) as url:
        db = InfluxV1(url, "bench_reports", timeout=600)
        load_s = ensure(db, PLAN)
        roster_s = ensure_roster(db, PLAN)
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["SEATMON_AUDIT_LOG"] = os.path.join(tmp, "audit.jsonl")
            doc = {"schema_key": SCHEMA_KEY, "roster_key": ROSTER_KEY, "load_avg_at_start": os.getloadavg(),
                   "load_s": load_s, "roster_load_s": roster_s, "month_500_seats": measure(db, PLAN, args.repeat, tmp),
                   "load_avg_at_end": os.getloadavg()}
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
