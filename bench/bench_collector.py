"""Collector benchmark: prints one JSON object.

Measured in one run, on servers started here (Mosquitto with the shipped
deploy config, InfluxDB 1.x), with the collector as a real child process.
Every figure counts distinct events, by (unit, boot, seq); duplicates and
losses are printed beside it, never folded in.

- broker_ceiling_eps: what Mosquitto itself carries, C client to C client:
  `mosquitto_pub -q 1 -l` processes in parallel (Debian `mosquitto-clients`),
  fed pre-built valid event payloads, into one `mosquitto_sub -q 1` that
  stamps each arrival. A publisher exits once its last message is
  acknowledged (PUBACK). Median of `--ceiling-runs` runs, interleaved with
  the collector runs so both see the same machine load.
- collector_eps: units (the load generator: paho clients that wait for the
  collector's end-to-end acks and resend what stays unacknowledged) ->
  broker -> collector -> InfluxDB, first publish to the last distinct
  event queryable, every event checked; `collector_over_broker_ceiling`.
- collector_c_fed_eps: the same collector fed by the C publishers above
  (no acks waited for, no resends): the collector without a Python load
  generator on the same two cores.
- paho_subscriber_eps: the load generator -> a paho QoS1 subscriber that
  does nothing: what one Python MQTT client receives.
- influx_ceiling_eps: pre-built 5000-line batches posted straight to /write.
- backlog_drain_s: a spool pre-filled with 300 000 events, drained by a
  starting collector;
- p99_latency_ms: publish -> queryable at 1 000 events/s;
- collector_peak_rss_mb: VmHWM of the collector process.

Exits 1 when any run lost events (the figures are printed all the same).

    python bench/bench_collector.py [--events 100000] [--units 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from collector import schema  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from collector.spool import Spool  # noqa: E402
from shared import protocol as p  # noqa: E402
from rig.loadgen import LoadGen, VirtualUnit  # noqa: E402
from rig.servers import InfluxDB, Mosquitto, free_port  # noqa: E402

MEASUREMENTS = '"call","outgoing","reminder","shift_end"'
# mosquitto_pub -l disconnects on the PUBACK whose 16-bit message id equals its
# last message's; past 65 535 lines an earlier message has that id, and it can
# quit early with exit status 0 (seen: 34 531 of 100 000 sent). Stay below.
C_LINES_MAX = 60_000
# MQTT v5 like the units; 1000 messages in flight (the libmosquitto default of
# 20 makes the publisher, not the broker, the bound).
C_PUB_OPTS = ["-q", "1", "-V", "mqttv5", "-M", "1000"]
MARKER = b"bench-subscribed"


def c_client(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed; install it with: sudo apt-get install -y mosquitto-clients")
    return found


def event_id(payload: bytes | bytearray) -> tuple:
    event = json.loads(payload)
    return event["unit"], event["boot"], event["seq"]


def tally(arrivals: Iterable[tuple[float, bytes | bytearray]], expected: set) -> dict:
    """What a receiver really got from (arrival time, payload) pairs:
    distinct expected events, duplicates, losses, and when the last new
    event arrived. Payloads that are not events (the start marker) are skipped."""
    first: dict[tuple, float] = {}
    received = 0
    for at, payload in arrivals:
        try:
            key = event_id(payload)
        except (ValueError, KeyError, TypeError):
            continue
        received += 1
        if key not in first or at < first[key]:
            first[key] = at
    got = first.keys() & expected
    return {"received": received, "distinct": len(got), "duplicates": received - len(first),
            "lost": len(expected) - len(got), "unexpected": len(first) - len(got),
            "last_new_at": max((first[k] for k in got), default=None)}


def broker_log_problems(broker: Mosquitto) -> list[str]:
    """Lines where Mosquitto says it dropped messages or a client."""
    try:
        text = broker.log_path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if re.search(r"dropp|out of memory|exceed", line, re.I)]


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


# ---- C clients (Debian mosquitto-clients) ------------------------------------


def write_payloads(folder: Path, site: str, units: int, per_unit: int) -> tuple[list[tuple[str, Path]], set]:
    """One file of valid event payloads, one a line, per unit: (topic, file)
    pairs for the C publishers, and the ids they carry."""
    if per_unit > C_LINES_MAX:
        raise SystemExit(f"{per_unit} events per C publisher: at most {C_LINES_MAX} (use more --c-publishers)")
    folder.mkdir(parents=True, exist_ok=True)
    t0 = int(time.time() * 1000) - 3_600_000
    jobs, expected = [], set()
    for i in range(1, units + 1):
        unit = VirtualUnit("127.0.0.1", 1, site, f"u-{i:04d}", seat=f"S-{i:04d}", t0_ms=t0, seed=i)  # never connected
        path = folder / f"{unit.unit}.txt"
        with open(path, "wb") as fh:
            for seq in range(1, per_unit + 1):
                fh.write(p.encode(p.EVENT, unit.make_event(seq)) + b"\n")
        jobs.append((unit.topic(p.EVENT), path))
        expected |= {(unit.unit, unit.boot, seq) for seq in range(1, per_unit + 1)}
    return jobs, expected


class CPublishers:
    """`mosquitto_pub -l`, one process per (topic, file). Each exits once the
    broker acknowledged its last message (and so every one before it)."""

    def __init__(self, port: int, jobs: list[tuple[str, Path]], tag: str, log_dir: Path):
        pub = c_client("mosquitto_pub")
        self.errors = [log_dir / f"{tag}-{n}.err" for n in range(len(jobs))]
        self.procs = []
        for n, (topic, path) in enumerate(jobs):
            with open(path, "rb") as stdin, open(self.errors[n], "wb") as err:
                self.procs.append(subprocess.Popen(
                    [pub, "-h", "127.0.0.1", "-p", str(port), *C_PUB_OPTS, "-i", f"bench-{tag}-{n}", "-l", "-t", topic],
                    stdin=stdin, stdout=subprocess.DEVNULL, stderr=err))

    def done(self) -> bool:
        return all(proc.poll() is not None for proc in self.procs)

    def wait(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errors = [e.read_text(errors="replace").strip() for e in self.errors]
        return {"exit_codes": sorted({proc.returncode for proc in self.procs}),
                "errors": [e for e in errors if e][:3]}


class CSubscriber:
    """`mosquitto_sub -q 1` writing `<arrival time> <payload>` lines to a file."""

    def __init__(self, port: int, site: str, out: Path, client_id: str):
        self.port, self.out = port, out
        with open(out, "wb") as fh, open(out.with_suffix(".err"), "wb") as err:
            self.proc = subprocess.Popen(
                [c_client("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "mqttv5",
                 "-i", client_id, "-t", p.subscription(p.EVENT, site=site), "-F", "%U %p"],
                stdout=fh, stderr=err)
        self._reader = open(out, "rb")
        self._lines = 0
        # Subscribed once a marker published after the start comes back.
        marker_topic = p.topic(site, "bench-marker", p.EVENT)
        deadline = time.monotonic() + 15
        while self.lines() == 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("mosquitto_sub did not subscribe; see " + str(out.with_suffix(".err")))
            subprocess.run([c_client("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                            "-t", marker_topic, "-m", MARKER.decode()], check=True, timeout=10)
            time.sleep(0.2)
        self.markers = self.lines()

    def lines(self) -> int:
        self._lines += self._reader.read().count(b"\n")
        return self._lines

    def wait(self, total: int, publishers_done: Callable[[], bool], quiet: float = 2.0, timeout: float = 120) -> None:
        """Until `total` events arrived, or the publishers are done and
        nothing arrived for `quiet` s (a loss), or `timeout`."""
        deadline = time.monotonic() + timeout
        last, changed = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.lines() - self.markers
            if n >= total:
                return
            if n != last:
                last, changed = n, time.monotonic()
            elif publishers_done() and time.monotonic() - changed > quiet:
                return
            time.sleep(0.05)

    def arrivals(self) -> Iterable[tuple[float, bytes]]:
        with open(self.out, "rb") as fh:
            for line in fh:
                at, _, payload = line.rstrip(b"\n").partition(b" ")
                if payload != MARKER:
                    yield float(at), payload

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._reader.close()


def broker_ceiling(broker: Mosquitto, tmp: Path, jobs: list, expected: set, run: int, site: str = "ceiling") -> dict:
    """C publishers -> Mosquitto -> C subscriber: distinct events per second
    from the publishers' start to the last new event's arrival."""
    sub = CSubscriber(broker.port, site, tmp / f"c-sub-{run}.txt", f"bench-c-sub-{run}")
    start = time.time()
    pubs = CPublishers(broker.port, jobs, f"c-pub-{run}", tmp)
    sub.wait(len(expected), pubs.done)
    exits = pubs.wait(60)
    sub.stop()
    got = tally(sub.arrivals(), expected)
    seconds = (got.pop("last_new_at") or time.time()) - start
    (tmp / f"c-sub-{run}.txt").unlink()
    return {"eps": round(got["distinct"] / seconds), "seconds": round(seconds, 2), "events": len(expected),
            **got, "publishers": len(jobs), **exits}


# ---- the load generator (Python units) -----------------------------------------


def _publisher(port: int, site: str, units: int, first_unit: int, per_unit: int, wait_acks: bool, go,
               results) -> None:
    """One load-generator process: connect, wait for the start signal,
    publish, then wait for the collector's acks (if asked) and until the
    broker acknowledged every message; only then stop (leaving earlier
    loses what is still queued in the MQTT client)."""
    # Without a collector no end-to-end ack ever comes: resending after 3 s
    # would only add duplicates.
    gen = LoadGen("127.0.0.1", port, site, units, first_unit=first_unit, heartbeat_every=0,
                  resend_after=3.0 if wait_acks else float("inf")).start()
    results.put(("ready", {}))
    go.wait()
    gen.publish(per_unit)
    results.put(("published", {}))
    acked = gen.wait_acked(120) if wait_acks else None
    pubacked = gen.wait_published(120)
    results.put(("done", {"acked": acked, "pubacked": pubacked, "resent": gen.resends()}))
    gen.stop()


class Publishers:
    """`procs` load-generator processes (one Python process cannot saturate
    the broker: paho sends each message with its own syscall under the GIL)."""

    def __init__(self, port: int, site: str, units: int, per_unit: int, procs: int, wait_acks: bool = True):
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.results = ctx.Queue()
        per_proc = units // procs
        self.procs = [ctx.Process(target=_publisher, args=(port, site, per_proc, 1 + i * per_proc, per_unit,
                                                            wait_acks, self.go, self.results), daemon=True)
                      for i in range(procs)]
        self.expected = {(f"u-{i:04d}", 1, s) for i in range(1, 1 + per_proc * procs) for s in range(1, per_unit + 1)}
        self.reports: list[dict] = []
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            assert self.results.get(timeout=60)[0] == "ready"

    def start(self) -> float:
        self.go.set()
        return time.perf_counter()

    def _collect(self, timeout: float | None) -> None:
        while len(self.reports) < len(self.procs):
            try:
                kind, report = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
            except queue.Empty:
                return
            if kind == "done":
                self.reports.append(report)

    def done(self) -> bool:
        self._collect(None)
        return len(self.reports) == len(self.procs)

    def finish(self, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while not self.done() and time.monotonic() < deadline:
            self._collect(1.0)
        for proc in self.procs:
            proc.join(30)
        finished = len(self.reports) == len(self.procs)
        return {"acked": finished and all(r["acked"] is not False for r in self.reports),
                "pubacked": finished and all(r["pubacked"] for r in self.reports),
                "resent": sum(r["resent"] for r in self.reports)}


def paho_subscriber(broker: Mosquitto, units: int, per_unit: int, procs: int) -> dict:
    """The load generator -> a paho QoS1 subscriber that only keeps what it
    receives: what one Python MQTT client takes in."""
    arrivals: list[tuple[float, bytes | bytearray]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plain-sub", protocol=mqtt.MQTTv5)
    sub.on_message = lambda client, userdata, msg: arrivals.append((time.perf_counter(), msg.payload))
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe(p.subscription(p.EVENT, site="pahosub"), qos=1)
    sub.loop_start()
    subscribed.wait(10)
    pubs = Publishers(broker.port, "pahosub", units, per_unit, procs, wait_acks=False)
    total = len(pubs.expected)
    start = pubs.start()
    last, changed = -1, time.monotonic()
    while len(arrivals) < total and time.perf_counter() - start < 300:
        if len(arrivals) != last:
            last, changed = len(arrivals), time.monotonic()
        elif pubs.done() and time.monotonic() - changed > 2.0:
            break  # everything was acknowledged by the broker, and nothing more comes: lost
        time.sleep(0.05)
    fin = pubs.finish()
    sub.loop_stop()
    sub.disconnect()
    got = tally(list(arrivals), pubs.expected)
    seconds = (got.pop("last_new_at") or time.perf_counter()) - start
    return {"eps": round(got["distinct"] / seconds), "seconds": round(seconds, 2), "events": total, **got,
            "publisher_procs": procs, "publishers_pubacked": fin["pubacked"], "resent": fin["resent"]}


# ---- the collector -------------------------------------------------------------


def wait_stored(client: InfluxV1, total: int, start: float, publishers_done: Callable[[], bool],
                quiet: float = 30, timeout: float = 600) -> float:
    """Poll InfluxDB until `total` points are stored (points of one event
    merge, so points are distinct events), or the publishers are done and
    nothing new arrived for `quiet` s; returns the time of the last progress."""
    last, changed = -1, time.perf_counter()
    while time.perf_counter() - start < timeout:
        n = count_events(client)
        now = time.perf_counter()
        if n >= total:
            return now
        if n != last:
            last, changed = n, now
        elif publishers_done() and now - changed > quiet:
            break
        time.sleep(0.05)
    return changed


def stored_tally(client: InfluxV1, expected: set) -> dict:
    ids = stored_ids(client)
    distinct = set(ids)
    return {"stored_rows": len(ids), "distinct": len(distinct & expected), "lost": len(expected - distinct),
            "unexpected": len(distinct - expected)}


def sustained(broker, influx, tmp: Path, units: int, per_unit: int, procs: int) -> dict:
    """Units (load generator, waiting for the collector's acks) -> broker ->
    collector -> InfluxDB."""
    db = "sustained"
    client = InfluxV1(influx.url, db)
    client.create_database()
    port = free_port()
    proc = CollectorProcess(write_config(tmp / "sustained.toml", broker, influx, db, port, tmp / "s.db"),
                            port, tmp / "sustained.log")
    pubs = Publishers(broker.port, db, units, per_unit, procs)
    total = len(pubs.expected)
    start = pubs.start()
    end = wait_stored(client, total, start, pubs.done)
    elapsed = end - start
    fin = pubs.finish()
    got = stored_tally(client, pubs.expected)
    health = proc.health()
    rss = proc.peak_rss_mb()
    proc.stop()
    return {"events": total, "seconds": round(elapsed, 2), "eps": got["distinct"] / elapsed, "publisher_procs": procs,
            **got, "exact": fin["acked"] and got["distinct"] == total and got["unexpected"] == 0,
            "duplicates": health["duplicates"], "resent": fin["resent"], "rss_mb": rss}


def sustained_c(broker, influx, tmp: Path, units: int, per_unit: int) -> dict:
    """The C publishers -> broker -> collector -> InfluxDB (nobody waits for
    the collector's acks, nobody resends)."""
    db = "cfed"
    client = InfluxV1(influx.url, db)
    client.create_database()
    jobs, expected = write_payloads(tmp / "cfed", db, units, per_unit)
    port = free_port()
    proc = CollectorProcess(write_config(tmp / "cfed.toml", broker, influx, db, port, tmp / "c.db"),
                            port, tmp / "cfed.log")
    start = time.perf_counter()
    pubs = CPublishers(broker.port, jobs, "c-fed", tmp)
    end = wait_stored(client, len(expected), start, pubs.done)
    exits = pubs.wait(60)
    got = stored_tally(client, expected)
    health = proc.health()
    rss = proc.peak_rss_mb()
    proc.stop()
    return {"events": len(expected), "seconds": round(end - start, 2), "eps": got["distinct"] / (end - start),
            "publishers": len(jobs), **got, "duplicates": health["duplicates"], **exits,
            "rss_mb": rss}


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
    gen.wait_published(10)
    gen.stop()
    proc.stop()
    lat.sort()
    return {"events": len(lat), "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1), "max_ms": round(lat[-1] * 1000, 1), "rss_mb": rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events for the collector and ceiling runs")
    ap.add_argument("--units", type=int, default=8, help="load-generator units")
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--c-publishers", type=int, default=4, help="mosquitto_pub processes (one unit each)")
    ap.add_argument("--ceiling-runs", type=int, default=3, help="C-client ceiling runs (the median is the figure)")
    ap.add_argument("--backlog", type=int, default=300_000)
    ap.add_argument("--latency-seconds", type=int, default=15)
    ap.add_argument("--stock-broker", action="store_true",
                    help="also run the C-client ceiling once on Mosquitto's defaults (max_queued_messages 1000)")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script itself")
    args = ap.parse_args()
    if args.quick:
        args.events, args.backlog, args.latency_seconds, args.ceiling_runs = 20_000, 30_000, 5, 1
    for name in ("mosquitto_pub", "mosquitto_sub"):
        c_client(name)
    per_unit = args.events // args.units
    c_per_unit = args.events // args.c_publishers
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp_name:
        tmp = Path(tmp_name)
        conf = (ROOT / "deploy/mosquitto/seatmon.conf").read_text()
        with Mosquitto(tmp / "mosquitto", extra_config=conf) as broker, InfluxDB(tmp / "influxdb") as influx:
            influx_eps = influx_ceiling(influx, args.events)
            jobs, expected = write_payloads(tmp / "ceiling", "ceiling", args.c_publishers, c_per_unit)
            ceiling_runs: list[dict] = []

            def ceiling_run() -> None:
                if len(ceiling_runs) < args.ceiling_runs:
                    ceiling_runs.append(broker_ceiling(broker, tmp, jobs, expected, len(ceiling_runs)))

            # Ceiling runs interleaved with the others, so both see the same machine load.
            ceiling_run()
            paho = paho_subscriber(broker, args.units, per_unit, args.procs)
            ceiling_run()
            run = sustained(broker, influx, tmp, args.units, per_unit, args.procs)
            ceiling_run()
            cfed = sustained_c(broker, influx, tmp, args.c_publishers, c_per_unit)
            while len(ceiling_runs) < args.ceiling_runs:
                ceiling_run()
            drain = backlog(broker, influx, tmp, args.backlog)
            lat = latency(broker, influx, tmp, 1000, args.latency_seconds)
            log_problems = broker_log_problems(broker)
        stock = None
        if args.stock_broker:
            with Mosquitto(tmp / "stock-mosquitto") as plain:
                stock = broker_ceiling(plain, tmp, jobs, expected, 99)
                stock["broker_log_problems"] = broker_log_problems(plain)[:3]
    broker_eps = statistics.median(r["eps"] for r in ceiling_runs)
    ceiling = min(influx_eps, broker_eps)
    rss = max(run["rss_mb"], cfed["rss_mb"], drain["rss_mb"], lat["rss_mb"])
    nothing_lost = (run["exact"] and cfed["lost"] == 0 and drain["stored"] == drain["events"]
                    and paho["lost"] == 0 and all(r["lost"] == 0 for r in ceiling_runs))
    out = {
        "machine_cpus": os.cpu_count(),
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "collector_eps": round(run["eps"]),
        "broker_ceiling_eps": round(broker_eps),
        "collector_over_broker_ceiling": round(run["eps"] / broker_eps, 3),
        "collector_c_fed_eps": round(cfed["eps"]),
        "collector_c_fed_over_broker_ceiling": round(cfed["eps"] / broker_eps, 3),
        "paho_subscriber_eps": paho["eps"],
        "collector_over_paho_subscriber": round(run["eps"] / paho["eps"], 3),
        "influx_ceiling_eps": round(influx_eps),
        "collector_over_ceiling": round(run["eps"] / ceiling, 3),
        "nothing_lost": nothing_lost,
        "broker_ceiling": {
            "method": (f"{args.c_publishers} x mosquitto_pub {' '.join(C_PUB_OPTS)} -l (pre-built event payloads, "
                       "one unit each) -> Mosquitto (deploy config) -> mosquitto_sub -q 1 -V mqttv5; "
                       "distinct events / (last new arrival - publishers' start); median of the runs"),
            "runs_eps": [r["eps"] for r in ceiling_runs],
            "runs": ceiling_runs},
        "collector": run | {"eps": round(run["eps"])},
        "collector_c_fed": cfed | {"eps": round(cfed["eps"])},
        "paho_subscriber": paho,
        "broker_log_problems": log_problems[:5],
        "backlog_events": drain["events"],
        "backlog_drain_s": drain["drain_s"],
        "backlog_stored": drain["stored"],
        "p99_latency_ms": lat["p99_ms"],
        "latency": lat,
        "collector_peak_rss_mb": round(rss, 1),
        "bars": {
            "collector_eps>=20000": run["eps"] >= 20_000,
            "collector_over_ceiling>=0.25": run["eps"] / ceiling >= 0.25,
            "nothing_lost": nothing_lost,
            "backlog_drain_s<20": drain["drain_s"] < 20,
            "p99_latency_ms<2000": lat["p99_ms"] < 2000,
            "rss_mb<200": rss < 200,
        },
    }
    if stock is not None:
        out["stock_broker_ceiling"] = stock
    print(json.dumps(out, indent=2))
    return 0 if nothing_lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
