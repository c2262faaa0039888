"""Virtual desk units at scale: `seatmon unit simulate --units N` in real time
on this machine, against a private Mosquitto.

Prints JSON: CPU and memory per virtual unit, and how far the units' samplers
lag behind real time, next to a baseline measured in the same run: the same
units and sampler loop with the core replaced by nothing (so the difference is
what the firmware's deciding logic costs).

    python -m bench.bench_sim [--units 200] [--duration 60] [--procs 2]

The issue's bar is ten minutes (--duration 600); the default is CI-sized."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rig.servers import Mosquitto
from virtual.units.cli import simulate


def run(units: int, duration: float, procs: int, broker, data_dir: str, null_core: bool) -> dict:
    opts = {"units": units, "first": 1, "site": "bench", "broker": f"{broker.host}:{broker.port}",
            "speed": 1.0, "scenario_data": None, "data_dir": data_dir, "procs": procs, "duration": duration,
            "seed": 1, "calls_per_hour": 12.0, "outgoing_per_hour": 4.0, "shift_end_min": None,
            "keepalive": 30, "heartbeat_s": 60, "null_core": null_core}
    s = simulate(opts)
    samples_expected = units * duration * 100  # 10 ms sampling
    return {
        "units": units, "procs": s["procs"], "duration_s": round(s["wall_s"], 1),
        "cpu_s": round(s["cpu_s"], 2),
        "cpu_percent_of_one_core_per_unit": round(100 * s["cpu_s"] / s["wall_s"] / units, 4),
        "cpu_us_per_sample": round(1e6 * s["cpu_s"] / max(1, s["samples"]), 2),
        "samples": s["samples"], "samples_vs_real_time": round(s["samples"] / samples_expected, 4),
        "rss_kb_per_unit": round(s["rss_units_kb"] / units, 1),
        "maxrss_kb_per_proc": s["maxrss_kb_per_proc"],
        "lag_ms_max": round(s["lag_ms_max"], 1), "lag_ms_p99": round(s["lag_ms_p99"], 1),
        "events_journaled": s["tally"].get("journaled", 0),
        "calls_generated": s["tally"].get("answered", 0) + s["tally"].get("unanswered", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per run (the bar: 600)")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto", max_queued_messages=0).start()
        try:
            base = run(args.units, args.duration, args.procs, broker, os.path.join(tmp, "base"), True)
            real = run(args.units, args.duration, args.procs, broker, os.path.join(tmp, "real"), False)
        finally:
            broker.stop()
    out = {"bench": "sim", "baseline_null_core": base, "firmware": real,
           "cpu_ratio_vs_baseline": round(real["cpu_s"] / max(1e-9, base["cpu_s"]), 3),
           "rss_ratio_vs_baseline": round(real["rss_kb_per_unit"] / max(1e-9, base["rss_kb_per_unit"]), 3),
           "keeps_up": real["samples_vs_real_time"] > 0.99 and real["lag_ms_max"] < 1000}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
