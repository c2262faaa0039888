"""How many seats and events per second one `seatmon board` process keeps up
with, measured from the publish of a unit's message to the moment the change
leaves the board on its server-sent-event stream (an SSE client, no browser).

Setup: a private Mosquitto on loopback, the board as its own process (its
shipped update period, 200 ms), N seats with retained `live` state, then a
steady publisher: 80 % `live` state changes (seat by seat, idle -> ringing ->
talking -> idle) and 20 % `call` events (QoS1), at each rate in turn.
Latency is measured on the live changes: publish -> the SSE patch carrying
that seat in that state.

Baseline, same run: the same messages at the same rates through a bare paho
subscriber that does nothing (publish -> on_message), i.e. what the broker
and a Python client cost before the board does any work.

Bar (issue 8): 2 000 seats at 500 events/s with updates under 1 s.

Usage: python bench/bench_board.py [--seats 2000,10000] [--rates 500,1000,2000,4000] [--seconds 8]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import protocol  # noqa: E402
from rig.servers import Mosquitto, free_port  # noqa: E402

SITE = "bench"
SHIFT = "2026-11-23/day"
CYCLE = {"idle": "ringing", "ringing": "talking", "talking": "idle"}
CALL_SHARE = 5  # every 5th message is a call event


def now_ms() -> int:
    return int(time.time() * 1000)


def seat_name(i: int) -> tuple[str, str]:
    return f"u-{i:05d}", f"{chr(65 + i // 100 % 26)}{i // 2600 or ''}-{i % 100:02d}"


def live_msg(unit, seat, state, ts):
    return protocol.encode(protocol.LIVE, {
        "v": 1, "site": SITE, "unit": unit, "seat": seat, "state": state, "since": ts,
        "rings": 1 if state == "ringing" else None, "pattern": "off", "missed_pending": False,
        "left_on": False, "shift": SHIFT, "ts": ts})


class Publisher:
    def __init__(self, port, client_id):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.max_inflight_messages_set(200)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.seq = 0

    def retained_floor(self, seats, states):
        last = None
        for i in range(seats):
            unit, seat = seat_name(i)
            last = self.c.publish(protocol.topic(SITE, unit, protocol.LIVE), live_msg(unit, seat, states[i], now_ms()),
                                  qos=1, retain=True)
        last.wait_for_publish(30)

    def run(self, seats, states, rate, seconds, on_live):
        """Publish `rate` messages/s for `seconds`; on_live(seat, state, t_pub)."""
        total = int(rate * seconds)
        start = time.monotonic()
        cursor = 0
        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if n % CALL_SHARE == CALL_SHARE - 1:
                self.seq += 1
                unit, seat = seat_name(self.seq % seats)
                msg = {"v": 1, "kind": "call", "site": SITE, "unit": unit, "seat": seat, "boot": 1,
                       "seq": self.seq, "ts": now_ms() - 30000, "clock": "ntp", "shift": SHIFT,
                       "outcome": "answered", "rings": 2, "ring_ms": 6000, "answer_ms": 6000,
                       "within_limit": self.seq % 3 != 0, "limit_ms": 10000, "apology_prompted": False}
                self.c.publish(protocol.topic(SITE, unit, protocol.EVENT), protocol.encode(protocol.EVENT, msg), qos=1)
                continue
            i = cursor % seats
            cursor += 1
            unit, seat = seat_name(i)
            states[i] = CYCLE[states[i]]
            t = time.time()
            on_live(seat, states[i], t)
            self.c.publish(protocol.topic(SITE, unit, protocol.LIVE), live_msg(unit, seat, states[i], int(t * 1000)),
                           qos=0, retain=True)
        return total / (time.monotonic() - start)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Pending:
    """Live changes published and not yet seen, keyed by (seat, state)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: dict[tuple[str, str], float] = {}
        self.latencies: list[float] = []
        self.published = 0

    def sent(self, seat, state, t):
        with self.lock:
            self.waiting[(seat, state)] = t
            self.published += 1

    def seen(self, seat, state, t):
        with self.lock:
            t_pub = self.waiting.pop((seat, state), None)
            if t_pub is not None:
                self.latencies.append(t - t_pub)

    def reset(self):
        with self.lock:
            self.waiting.clear()
            self.latencies = []
            self.published = 0


def sse_reader(port, pending: Pending, ready: threading.Event, stop: threading.Event):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/events")
    resp = conn.getresponse()
    event = None
    while not stop.is_set():
        line = resp.fp.readline()
        if not line:
            break
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: "):
            t = time.time()
            body = json.loads(line[6:])
            if event == b"snapshot":
                ready.set()
                continue
            for tile in body["tiles"]:
                pending.seen(tile["seat"], tile["status"], t)


def bare_subscriber(port, pending: Pending):
    def on_message(client, userdata, m):
        if m.topic.endswith("/live"):
            t = time.time()
            msg = json.loads(m.payload)
            pending.seen(msg["seat"], msg["state"], t)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe([(protocol.subscription(protocol.LIVE), 0), (protocol.subscription(protocol.EVENT), 1)])
    c.loop_start()
    return c


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(pending: Pending, achieved: float, wall: float) -> dict:
    lat = sorted(pending.latencies)
    out = {"events_per_s": round(achieved, 1), "live_published": pending.published, "live_seen": len(lat),
           "live_missing": pending.published - len(lat)}
    if lat:
        out.update(p50_ms=round(1000 * statistics.median(lat), 1),
                   p99_ms=round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
                   max_ms=round(1000 * lat[-1], 1))
    return out


def wait_board(port, board, seats, log_path):
    deadline = time.monotonic() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            h = json.loads(c.getresponse().read())
            if h["seats"] >= seats and h["mqtt"] == "connected":
                return  # holds the whole retained floor
        except OSError:
            pass
        if time.monotonic() > deadline or board.poll() is not None:
            raise SystemExit("board did not start: " + log_path.read_text())
        time.sleep(0.2)


def run_case(seats: int, rates: list[int], seconds: float, tmp: Path) -> tuple[dict, dict]:
    """(baseline, board) figures per rate for one floor size, on a fresh broker."""
    broker = Mosquitto(tmp / "mosquitto", max_queued_messages=0, persistence=False).start()
    try:
        states = ["idle"] * seats
        pub = Publisher(broker.port, "bench-pub")
        pub.retained_floor(seats, states)

        # Baseline: a bare subscriber, same messages and rates.
        pending = Pending()
        bare = bare_subscriber(broker.port, pending)
        time.sleep(1.0)  # retained floor delivered
        baseline = {}
        for rate in rates:
            pending.reset()
            t0 = time.monotonic()
            achieved = pub.run(seats, states, rate, seconds, pending.sent)
            time.sleep(1.0)
            baseline[str(rate)] = figures(pending, achieved, time.monotonic() - t0)
        bare.loop_stop()
        bare.disconnect()

        # The board, as its own process, with its shipped settings.
        port = free_port()
        cfg = tmp / "board.toml"
        cfg.write_text(f'[mqtt]\nport = {broker.port}\nclient_id = "bench-board"\n'
                       f'[board]\nlisten = "127.0.0.1:{port}"\n')
        log_path = tmp / "board.log"
        board = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "board", "--config", str(cfg),
                                  "--log-level", "WARNING"], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
        try:
            wait_board(port, board, seats, log_path)
            pending = Pending()
            ready, stop = threading.Event(), threading.Event()
            threading.Thread(target=sse_reader, args=(port, pending, ready, stop), daemon=True).start()
            ready.wait(10)
            time.sleep(0.5)
            board_figs = {}
            for rate in rates:
                pending.reset()
                cpu0, t0 = cpu_seconds(board.pid), time.monotonic()
                achieved = pub.run(seats, states, rate, seconds, pending.sent)
                time.sleep(1.5)  # let the last updates arrive
                wall = time.monotonic() - t0
                f = figures(pending, achieved, wall)
                f["board_cpu_share"] = round((cpu_seconds(board.pid) - cpu0) / wall, 2)
                f["keeps_up"] = f["live_missing"] == 0 and f.get("p99_ms", 1e9) < 1000
                board_figs[str(rate)] = f
            stop.set()
        finally:
            board.terminate()
            board.wait(10)
        pub.close()
    finally:
        broker.stop()
    return baseline, board_figs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seats", default="2000,10000", help="floor sizes, comma-separated")
    ap.add_argument("--rates", default="500,1000,2000,4000", help="events per second, comma-separated")
    ap.add_argument("--seconds", type=float, default=8.0, help="per rate")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    result = {"bench": "board", "seconds_per_rate": args.seconds, "update_ms": 200,
              "bar": {"seats": 2000, "events_per_s": 500, "p99_ms_under": 1000}, "floors": {}}
    for seats in [int(s) for s in args.seats.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            baseline, board_figs = run_case(seats, rates, args.seconds, Path(tmp))
        kept = 0  # the highest rate such that every rate up to it kept up
        for rate in sorted(int(r) for r in board_figs):
            if not board_figs[str(rate)]["keeps_up"]:
                break
            kept = rate
        result["floors"][str(seats)] = {
            "baseline_bare_subscriber": baseline,
            "board": board_figs,
            "p99_ratio_board_over_baseline": {
                r: round(board_figs[r]["p99_ms"] / max(baseline[r]["p99_ms"], 0.1), 1)
                for r in board_figs if "p99_ms" in board_figs[r] and "p99_ms" in baseline[r]},
            "keeps_up_to_events_per_s": kept,
        }
    floor = result["floors"].get("2000")
    result["meets_bar"] = bool(floor and floor["board"].get("500", {}).get("keeps_up"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
