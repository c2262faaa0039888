"""Collector benchmark: prints one JSON object.

Measured in one run, on servers started here (Mosquitto with the shipped
deploy config, InfluxDB 1.x), with the collector as a real child process:

- influx_ceiling_eps: pre-built 5000-line batches posted straight to /write;
- broker_ceiling_eps: the load generator's units -> a plain QoS1 subscriber;
- sustained_eps: units -> broker -> collector -> InfluxDB, first publish to
  the last event queryable, every event checked by (unit, boot, seq);
  `sustained_ratio` is it over the smaller ceiling;
- backlog_drain_s: a spool pre-filled with 300 000 events, drained by a
  starting collector;
- p99_latency_ms: publish -> queryable at 1 000 events/s;
- collector_peak_rss_mb: VmHWM of the collector process.

    python bench/bench_collector.py [--events 100000] [--units 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from collector import schema  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from collector.spool import Spool  # noqa: E402
from shared import protocol as p  # noqa: E402
from tools.loadgen import LoadGen, VirtualUnit  # noqa: E402
from tools.servers import InfluxDB, Mosquitto, free_port  # noqa: E402

MEASUREMENTS = '"call","outgoing","reminder","shift_end"'


def write_config(path: Path, broker: Mosquitto, influx: InfluxDB, db: str, health_port: int, spool: Path) -> Path:
    path.write_text(
        f'[mqtt]\nport = {broker.port}\nclient_id = "bench-{db}"\nsite = "{db}"\n'
        f'[influx]\nurl = "{influx.url}"\ndatabase = "{db}"\nretry_initial_s = 0.2\nretry_max_s = 1.0\n'
        f'[spool]\npath = "{spool}"\n'
        f'[health]\nport = {health_port}\n'
        f'[log]\nlevel = "warning"\n')
    return path


class CollectorProcess:
    def __init__(self, config: Path, health_port: int, log: Path):
        self.health_url = f"http://127.0.0.1:{health_port}/health"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "collect", "--config", str(config)],
                                         cwd=ROOT, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.health()["connected"]:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("collector did not start; see " + str(log))

    def health(self) -> dict:
        with urllib.request.urlopen(self.health_url, timeout=5) as resp:
            return json.loads(resp.read())

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def count_events(influx: InfluxV1) -> int:
    total = 0
    for result in influx.query(f"SELECT count(seq) FROM {MEASUREMENTS}"):
        for series in result.get("series", []):
            total += series["values"][0][1]
    return total


def stored_ids(influx: InfluxV1) -> list[tuple]:
    ids = []
    for result in influx.query(f'SELECT "boot","seq","unit" FROM {MEASUREMENTS}'):
        for series in result.get("series", []):
            cols = series["columns"]
            b, s, u = cols.index("boot"), cols.index("seq"), cols.index("unit")
            ids += [(row[u], row[b], row[s]) for row in series["values"]]
    return ids


def _publisher(port: int, site: str, units: int, first_unit: int, per_unit: int, go, results) -> None:
    """One load-generator process: connect, wait for the start signal,
    publish, wait until the collector acked everything (if asked)."""
    gen = LoadGen("127.0.0.1", port, site, units, first_unit=first_unit, heartbeat_every=0).start()
    results.put(("ready", 0, 0))
    go.wait()
    gen.publish(per_unit)
    results.put(("published", units * per_unit, 0))
    acked = gen.wait_acked(120) if site != "brokerceiling" else True
    results.put(("done", int(acked), gen.resends()))
    gen.stop()


class Publishers:
    """`procs` load-generator processes (one Python process cannot saturate
    the broker: paho sends each message with its own syscall under the GIL)."""

    def __init__(self, port: int, site: str, units: int, per_unit: int, procs: int):
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.results = ctx.Queue()
        per_proc = units // procs
        self.procs = [ctx.Process(target=_publisher, args=(port, site, per_proc, 1 + i * per_proc, per_unit,
                                                            self.go, self.results), daemon=True)
                      for i in range(procs)]
        self.expected = {(f"u-{i:04d}", 1, s) for i in range(1, 1 + per_proc * procs) for s in range(1, per_unit + 1)}
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            assert self.results.get(timeout=60)[0] == "ready"

    def start(self) -> float:
        self.go.set()
        return time.perf_counter()

    def finish(self) -> dict:
        acked, resent, published_at = True, 0, []
        for _ in range(2 * len(self.procs)):
            kind, a, b = self.results.get(timeout=300)
            if kind == "published":
                published_at.append(time.perf_counter())
            else:
                acked &= bool(a)
                resent += b
        for proc in self.procs:
            proc.join(30)
        return {"acked": acked, "resent": resent}


def influx_ceiling(influx: InfluxDB, events: int) -> float:
    db = InfluxV1(influx.url, "ceiling")
    db.create_database()
    unit = VirtualUnit("127.0.0.1", 1, "ceiling", "u-0001")  # never connected: only builds events
    lines = [schema.line(schema.event_point(unit.make_event(seq))) for seq in range(1, events + 1)]
    batches = [lines[i:i + 5000] for i in range(0, len(lines), 5000)]
    start = time.perf_counter()
    for batch in batches:
        db.write_lines(batch)
    return events / (time.perf_counter() - start)


def broker_ceiling(broker: Mosquitto, units: int, per_unit: int, procs: int) -> float:
    total = units // procs * procs * per_unit
    got = 0
    done = threading.Event()

    def on_message(client, userdata, msg):
        nonlocal got
        got += 1
        if got >= total:
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plain-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(p.subscription(p.EVENT, site="brokerceiling"), qos=1)
    sub.loop_start()
    time.sleep(0.5)
    pubs = Publishers(broker.port, "brokerceiling", units, per_unit, procs)
    start = pubs.start()
    done.wait(300)
    elapsed = time.perf_counter() - start
    pubs.finish()
    sub.loop_stop()
    sub.disconnect()
    return got / elapsed


def sustained(broker, influx, tmp: Path, units: int, per_unit: int, procs: int) -> dict:
    db = "sustained"
    client = InfluxV1(influx.url, db)
    client.create_database()
    port = free_port()
    proc = CollectorProcess(write_config(tmp / "sustained.toml", broker, influx, db, port, tmp / "s.db"),
                            port, tmp / "sustained.log")
    pubs = Publishers(broker.port, db, units, per_unit, procs)
    total = len(pubs.expected)
    start = pubs.start()
    while count_events(client) < total and time.perf_counter() - start < 600:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    fin = pubs.finish()
    ids = stored_ids(client)
    exact = fin["acked"] and len(ids) == total and set(ids) == pubs.expected
    health = proc.health()
    rss = proc.peak_rss_mb()
    proc.stop()
    return {"events": total, "seconds": round(elapsed, 2), "eps": total / elapsed, "publisher_procs": procs,
            "exact": exact, "duplicates": health["duplicates"], "resent": fin["resent"], "rss_mb": rss}


def backlog(broker, influx, tmp: Path, events: int) -> dict:
    db = "backlog"
    client = InfluxV1(influx.url, db)
    client.create_database()
    spool_path = tmp / "backlog.db"
    spool = Spool(spool_path)
    unit = VirtualUnit("127.0.0.1", 1, db, "u-0001")
    now = int(time.time() * 1000)
    for lo in range(1, events + 1, 50_000):
        rows = [(schema.line(schema.event_point(unit.make_event(seq))), now)
                for seq in range(lo, min(lo + 50_000, events + 1))]
        spool.commit(rows, [], [])
    spool.close()
    port = free_port()
    start = time.perf_counter()
    proc = CollectorProcess(write_config(tmp / "backlog.toml", broker, influx, db, port, spool_path),
                            port, tmp / "backlog.log")
    while proc.health()["spool_depth"] > 0 and time.perf_counter() - start < 300:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    count = count_events(client)
    rss = proc.peak_rss_mb()
    proc.stop()
    return {"events": events, "drain_s": round(elapsed, 2), "stored": count, "rss_mb": rss}


def latency(broker, influx, tmp: Path, rate: int, seconds: int, units: int = 20) -> dict:
    """Publish at `rate`; poll InfluxDB every 50 ms for each unit's highest
    stored seq (the spool drains in order, so everything at or below it is
    queryable) and time each event from publish to first seen."""
    db = "latency"
    client = InfluxV1(influx.url, db)
    client.create_database()
    port = free_port()
    proc = CollectorProcess(write_config(tmp / "latency.toml", broker, influx, db, port, tmp / "l.db"),
                            port, tmp / "latency.log")
    gen = LoadGen("127.0.0.1", broker.port, db, units).start()
    per_unit = rate * seconds // units
    publisher = threading.Thread(target=gen.publish, args=(per_unit, rate), daemon=True)
    publisher.start()
    seen: dict[str, int] = {u.unit: 0 for u in gen.units}
    lat: list[float] = []
    by_unit = {u.unit: u for u in gen.units}
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline and sum(seen.values()) < per_unit * units:
        time.sleep(0.05)
        result = client.query(f"SELECT max(seq) FROM {MEASUREMENTS} GROUP BY unit")
        now = time.time()
        best: dict[str, int] = {}
        for series in result[0].get("series", []):
            unit = series["tags"]["unit"]
            best[unit] = max(best.get(unit, 0), series["values"][0][1])
        for unit, top in best.items():
            if top > seen[unit]:
                sent = by_unit[unit].sent_ms
                lat += [now - sent[s] for s in range(seen[unit] + 1, top + 1)]
                seen[unit] = top
    publisher.join()
    rss = proc.peak_rss_mb()
    gen.stop()
    proc.stop()
    lat.sort()
    return {"events": len(lat), "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1), "max_ms": round(lat[-1] * 1000, 1), "rss_mb": rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events for the sustained and ceiling runs")
    ap.add_argument("--units", type=int, default=8)
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--backlog", type=int, default=300_000)
    ap.add_argument("--latency-seconds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script itself")
    args = ap.parse_args()
    if args.quick:
        args.events, args.backlog, args.latency_seconds = 20_000, 30_000, 5
    per_unit = args.events // args.units
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp_name:
        tmp = Path(tmp_name)
        conf = (ROOT / "deploy/mosquitto/seatmon.conf").read_text()
        with Mosquitto(tmp / "mosquitto", extra_config=conf) as broker, InfluxDB(tmp / "influxdb") as influx:
            influx_eps = influx_ceiling(influx, args.events)
            broker_eps = broker_ceiling(broker, args.units, per_unit, args.procs)
            run = sustained(broker, influx, tmp, args.units, per_unit, args.procs)
            drain = backlog(broker, influx, tmp, args.backlog)
            lat = latency(broker, influx, tmp, 1000, args.latency_seconds)
    ceiling = min(influx_eps, broker_eps)
    out = {
        "machine_cpus": os.cpu_count(),
        "influx_ceiling_eps": round(influx_eps),
        "broker_ceiling_eps": round(broker_eps),
        "sustained_eps": round(run["eps"]),
        "sustained_ratio": round(run["eps"] / ceiling, 3),
        "sustained": run | {"eps": round(run["eps"])},
        "backlog_events": drain["events"],
        "backlog_drain_s": drain["drain_s"],
        "backlog_stored": drain["stored"],
        "p99_latency_ms": lat["p99_ms"],
        "latency": lat,
        "collector_peak_rss_mb": round(max(run["rss_mb"], drain["rss_mb"], lat["rss_mb"]), 1),
        "bars": {
            "sustained_eps>=20000": run["eps"] >= 20_000,
            "sustained_ratio>=0.25": run["eps"] / ceiling >= 0.25,
            "nothing_lost": run["exact"] and drain["stored"] == drain["events"],
            "backlog_drain_s<20": drain["drain_s"] < 20,
            "p99_latency_ms<2000": lat["p99_ms"] < 2000,
            "rss_mb<200": max(run["rss_mb"], drain["rss_mb"], lat["rss_mb"]) < 200,
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
