"""Ingest with roll-ups on vs off: prints one JSON object.

The collector keeps roll-ups current as it stores events (docs/collector.md,
"Roll-ups kept current"); `rollup.enabled = false` turns that off. Measured
in one run, alternating off and on, each time on fresh servers (Mosquitto
with the shipped config, InfluxDB 1.x) and a fresh collector process, with
bench/bench_collector.py's machinery (its publishers, collector process,
counting and latency probe):

- sustained_eps: units -> broker -> collector -> InfluxDB, first publish to
  the last event queryable, every event checked by (unit, boot, seq); two
  load shapes: `dense` (bench_collector's load: each unit's events 1 ms
  apart, so each seat's whole load falls in one or two 15-minute intervals,
  the worst case for roll-ups, which re-read every row of an interval) and
  `spaced` (one event per unit every 60 s of event time: a busy seat, many
  intervals);
- rollup_settled_s (on): from the last event queryable to no dirty roll-up
  key left, and whether the stored roll-ups then count every call;
- latency p50/p99: publish -> queryable at 1 000 events/s (bench_collector's
  probe), off and on.

`ratio` = on / off (throughput; the bar is >= 0.9) and on / off for latency.

    python bench/bench_rollup_ingest.py [--events 100000] [--units 8] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_collector as bc  # noqa: E402

from collector.influx import InfluxV1  # noqa: E402
from rig.loadgen import LoadGen  # noqa: E402
from rig.servers import InfluxDB, Mosquitto, free_port  # noqa: E402

SPACING_MS = 60_000
_ROLLUPS = {"on": True}  # what bc.write_config writes (patched below)


def _write_config(path, broker, influx, db, health_port, spool):
    bc_write_config(path, broker, influx, db, health_port, spool)
    with open(path, "a") as out:
        out.write(f"[rollup]\nenabled = {'true' if _ROLLUPS['on'] else 'false'}\n")
    return path


bc_write_config = bc.write_config
bc.write_config = _write_config  # latency() and every collector started here get the [rollup] table


def _spaced_publisher(port, site, units, first_unit, per_unit, go, results):
    """bench_collector's publisher, with each unit's events SPACING_MS apart."""
    gen = LoadGen("127.0.0.1", port, site, units, first_unit=first_unit, heartbeat_every=0)
    for unit in gen.units:
        unit.t0_ms = int(time.time() * 1000) - (per_unit + 60) * SPACING_MS
        make = unit.make_event

        def spaced(seq, make=make, unit=unit):
            event = make(seq)
            event["ts"] = unit.t0_ms + seq * SPACING_MS
            return event

        unit.make_event = spaced
    gen.start()
    results.put(("ready", 0, 0))
    go.wait()
    gen.publish(per_unit)
    results.put(("published", units * per_unit, 0))
    results.put(("done", int(gen.wait_acked(120)), gen.resends()))
    gen.stop()


def _rollup_calls(client: InfluxV1) -> int:
    rows = client.query("SELECT sum(calls) FROM rollup_15m")[0].get("series", [])
    return rows[0]["values"][0][1] if rows else 0


def sustained(tmp: Path, shape: str, rollups: bool, units: int, per_unit: int, procs: int) -> dict:
    """One run on fresh servers: bench_collector.sustained's method, plus the
    roll-ups' settling time and check."""
    _ROLLUPS["on"] = rollups
    bc._publisher = _spaced_publisher if shape == "spaced" else ORIGINAL_PUBLISHER
    conf = (ROOT / "deploy/mosquitto/seatmon.conf").read_text()
    with Mosquitto(tmp / "mosquitto", extra_config=conf) as broker, InfluxDB(tmp / "influxdb") as influx:
        db = "sustained"
        client = InfluxV1(influx.url, db)
        client.create_database()
        port = free_port()
        proc = bc.CollectorProcess(bc.write_config(tmp / "c.toml", broker, influx, db, port, tmp / "s.db"),
                                   port, tmp / "c.log")
        pubs = bc.Publishers(broker.port, db, units, per_unit, procs)
        total = len(pubs.expected)
        start = pubs.start()
        while bc.count_events(client) < total and time.perf_counter() - start < 600:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        fin = pubs.finish()
        exact = fin["acked"] and sorted(bc.stored_ids(client)) == sorted(pubs.expected)
        out = {"shape": shape, "rollups": rollups, "events": total, "seconds": round(elapsed, 2),
               "eps": round(total / elapsed), "exact": exact}
        if rollups:
            queryable = time.perf_counter()
            while proc.health()["rollup_pending"] and time.perf_counter() - queryable < 600:
                time.sleep(0.1)
            out["rollup_settled_s"] = round(time.perf_counter() - queryable, 2)
            calls = client.query("SELECT count(seq) FROM call")[0]["series"][0]["values"][0][1]
            out["rollups_count_every_call"] = _rollup_calls(client) == calls
            if not out["rollups_count_every_call"]:  # say how far off, and whether it was only late
                out["calls"], out["rollup_calls"] = calls, _rollup_calls(client)
                time.sleep(2 * 10 + 5)
                out["rollup_calls_25s_later"] = _rollup_calls(client)
            out["rollup_refreshes"] = proc.health()["rollup_refreshes"]
        proc.stop()
    return out


ORIGINAL_PUBLISHER = bc._publisher


def latency(tmp: Path, rollups: bool, seconds: int) -> dict:
    _ROLLUPS["on"] = rollups
    conf = (ROOT / "deploy/mosquitto/seatmon.conf").read_text()
    with Mosquitto(tmp / "mosquitto", extra_config=conf) as broker, InfluxDB(tmp / "influxdb") as influx:
        return bc.latency(broker, influx, tmp, 1000, seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events per sustained run")
    ap.add_argument("--units", type=int, default=8)
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs per load shape")
    ap.add_argument("--latency-seconds", type=int, default=15)
    ap.add_argument("--shapes", default="dense,spaced", help="load shapes to run (comma-separated)")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script itself")
    args = ap.parse_args()
    if args.quick:
        args.events, args.rounds, args.latency_seconds = 10_000, 1, 3
    per_unit = args.events // args.units
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-rollup-") as tmp_name:
        tmp = Path(tmp_name)
        n = 0
        shapes = args.shapes.split(",")
        for shape in shapes:
            for _ in range(args.rounds):
                for rollups in (False, True):
                    n += 1
                    runs.append(sustained(tmp / f"run{n}", shape, rollups, args.units, per_unit, args.procs))
        lat = {}
        for rollups in (False, True):
            n += 1
            lat["on" if rollups else "off"] = latency(tmp / f"run{n}", rollups, args.latency_seconds)
    out = {"machine_cpus": os.cpu_count(), "load": os.getloadavg()[0], "runs": runs}
    for shape in shapes:
        off = statistics.median(r["eps"] for r in runs if r["shape"] == shape and not r["rollups"])
        on = statistics.median(r["eps"] for r in runs if r["shape"] == shape and r["rollups"])
        out[f"{shape}_eps_off"] = round(off)
        out[f"{shape}_eps_on"] = round(on)
        out[f"{shape}_ratio"] = round(on / off, 3)
    out["latency_off"] = lat["off"]
    out["latency_on"] = lat["on"]
    out["latency_p99_ratio"] = round(lat["on"]["p99_ms"] / lat["off"]["p99_ms"], 3)
    out["bars"] = {
        "throughput_within_10pct": all(out[f"{s}_ratio"] >= 0.9 for s in shapes),
        "nothing_lost": all(r["exact"] for r in runs),
        "rollups_exact": all(r.get("rollups_count_every_call", True) for r in runs),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
