"""A load generator that behaves like desk units on the wire (docs/protocol.md):

- each unit is its own MQTT client (QoS1, retained `online` birth, `offline`
  Last Will) publishing valid protocol events with a `seq` that never restarts;
- it keeps every event it sent until the collector's retained `ack` topic
  covers it, and after a reconnect, or when the ack has not moved for
  `resend_after` seconds, resends everything above the ack mark;
- it publishes heartbeats carrying its own `acked` mark;
- it counts the broker's PUBACKs, so `LoadGen.wait_published` can wait until
  nothing is left in the MQTT client's outgoing queue (a process that exits
  before that loses what was still queued).

Used by the collector drills and benchmark; also runnable by hand:
    python -m rig.loadgen --port 1883 --units 20 --events 1000 --rate 2000
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import threading
import time

import paho.mqtt.client as mqtt

from shared import protocol as p


def now_ms() -> int:
    return int(time.time() * 1000)


class VirtualUnit:
    def __init__(self, host: str, port: int, site: str, unit: str, *, seat: str = "A-01", boot: int = 1,
                 prefix: str = p.DEFAULT_PREFIX, resend_after: float = 3.0, t0_ms: int | None = None,
                 seed: int = 0, clock=None):
        self.clock = clock or now_ms  # the wall clock its statuses and heartbeats carry (epoch ms)
        self.host, self.port, self.site, self.unit, self.seat = host, port, site, unit, seat
        self.boot, self.prefix, self.resend_after = boot, prefix, resend_after
        self.t0_ms = t0_ms if t0_ms is not None else self.clock() - 3_600_000
        self.rng = random.Random(seed)
        self.next_seq = 1
        self.mark = 0  # the collector's ack for us
        self.unacked: dict[int, bytes] = {}  # the "journal": seq -> payload, in seq order
        self.sent_ms: dict[int, float] = {}  # seq -> time.time() of first publish (latency figures)
        self.acked_ms: dict[int, float] = {}
        self.resends = 0
        self.published = 0  # QoS1 publishes handed to the MQTT client
        self.pubacked = 0  # PUBACKs received for them
        self.lock = threading.Lock()
        self.last_progress = time.monotonic()
        self.connected_once = False
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"unit-{site}-{unit}",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.1, 2)
        self.client.will_set(self.topic(p.STATUS), p.encode(p.STATUS, {"v": 1, "site": site, "unit": unit,
                                                                       "state": "offline"}), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_ack
        self.client.on_publish = self._on_puback

    def topic(self, channel: str) -> str:
        return p.topic(self.site, self.unit, channel, self.prefix)

    def start(self) -> "VirtualUnit":
        self.client.connect_async(self.host, self.port, keepalive=15)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _publish(self, channel: str, payload: bytes, retain: bool = False) -> None:
        with self.lock:
            self.published += 1  # counted before the PUBACK can possibly arrive
        self.client.publish(self.topic(channel), payload, qos=1, retain=retain)

    def _on_puback(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self.pubacked += 1

    def unpublished(self) -> int:
        """QoS1 messages the broker has not acknowledged yet."""
        with self.lock:
            return max(0, self.published - self.pubacked)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        client.subscribe(self.topic(p.ACK), qos=1)
        self._publish(p.STATUS, p.encode(p.STATUS, {
            "v": 1, "site": self.site, "unit": self.unit, "state": "online", "ts": self.clock(), "boot": self.boot,
            "fw": "loadgen", "reason": "power_on", "seat": self.seat}), retain=True)
        if self.connected_once:
            self.resend()  # after a reconnect: everything above the ack mark
        self.connected_once = True
        self.connected.set()

    def _on_ack(self, client, userdata, msg):
        try:
            ack = p.decode(p.ACK, msg.payload)
        except p.ProtocolError:
            return
        now = time.time()
        with self.lock:
            if ack["seq"] > self.mark:
                for seq in range(self.mark + 1, ack["seq"] + 1):
                    if self.unacked.pop(seq, None) is not None:
                        self.acked_ms.setdefault(seq, now)
                self.mark = ack["seq"]
                self.last_progress = time.monotonic()

    def make_event(self, seq: int) -> dict:
        base = {"v": 1, "site": self.site, "unit": self.unit, "seat": self.seat, "boot": self.boot, "seq": seq,
                "ts": self.t0_ms + seq, "clock": "ntp", "shift": "2026-11-23/day"}
        r = self.rng.random()
        if r < 0.7:
            outcome = self.rng.choice(("answered", "answered", "answered", "missed", "abandoned"))
            ring_ms = self.rng.randint(1000, 20000)
            answered = outcome == "answered"
            base.update(kind="call", outcome=outcome, rings=ring_ms // 3000 + 1, ring_ms=ring_ms,
                        within_limit=answered and ring_ms <= 10000, limit_ms=10000,
                        apology_prompted=answered and ring_ms > 10000)
            if answered:
                base.update(answer_ms=ring_ms, talk_ms=self.rng.randint(5000, 600000))
        elif r < 0.85:
            base.update(kind="outgoing", talk_ms=self.rng.randint(1000, 300000))
        elif r < 0.95:
            base.update(kind="reminder", pattern="missed", action=self.rng.choice(("start", "stop", "ack")))
        else:
            base.update(kind="shift_end", equipment="off", action="none", idle_ms=self.rng.randint(0, 10 ** 6))
        return base

    def publish_next(self) -> int:
        with self.lock:
            seq = self.next_seq
            self.next_seq += 1
            payload = p.encode(p.EVENT, self.make_event(seq))
            self.unacked[seq] = payload
            self.sent_ms[seq] = time.time()
        self._publish(p.EVENT, payload)
        return seq

    def resend(self) -> int:
        with self.lock:
            pending = [(s, pl) for s, pl in self.unacked.items() if s > self.mark]
            self.last_progress = time.monotonic()
        for _, payload in pending:
            self._publish(p.EVENT, payload)
        self.resends += len(pending)
        return len(pending)

    def heartbeat(self) -> None:
        with self.lock:
            depth, mark = len(self.unacked), self.mark
        self._publish(p.HEARTBEAT, p.encode(p.HEARTBEAT, {
            "v": 1, "site": self.site, "unit": self.unit, "boot": self.boot, "ts": self.clock(), "uptime_s": 60,
            "heap_free": 80000, "journal_depth": depth, "dropped": 0, "acked": mark}))

    def tick(self) -> None:
        """Resend when the ack has not moved for a while."""
        with self.lock:
            stalled = self.unacked and time.monotonic() - self.last_progress > self.resend_after
        if stalled and self.connected.is_set():
            self.resend()

    def published_ids(self) -> set[tuple[str, int, int]]:
        return {(self.unit, self.boot, s) for s in range(1, self.next_seq)}


class LoadGen:
    """Several virtual units in one process."""

    def __init__(self, host: str, port: int, site: str, units: int, *, prefix: str = p.DEFAULT_PREFIX,
                 resend_after: float = 3.0, heartbeat_every: float = 2.0, first_unit: int = 1):
        t0 = now_ms() - 3_600_000
        self.units = [VirtualUnit(host, port, site, f"u-{i:04d}", seat=f"S-{i:04d}", prefix=prefix,
                                  resend_after=resend_after, t0_ms=t0, seed=i)
                      for i in range(first_unit, first_unit + units)]
        self.heartbeat_every = heartbeat_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> "LoadGen":
        for unit in self.units:
            unit.start()
        for unit in self.units:
            if not unit.connected.wait(timeout):
                raise RuntimeError(f"unit {unit.unit} could not connect")
        self._thread = threading.Thread(target=self._maintain, daemon=True)
        self._thread.start()
        return self

    def _maintain(self) -> None:
        last_hb = 0.0
        while not self._stop.wait(0.25):
            for unit in self.units:
                unit.tick()
            if self.heartbeat_every and time.monotonic() - last_hb > self.heartbeat_every:
                last_hb = time.monotonic()
                for unit in self.units:
                    if unit.connected.is_set():
                        unit.heartbeat()

    def publish(self, per_unit: int, rate: float | None = None) -> int:
        """Publish `per_unit` events from every unit, round robin, at `rate`
        events/s in total (None: as fast as the clients take them)."""
        total = 0
        start = time.monotonic()
        for _ in range(per_unit):
            for unit in self.units:
                unit.publish_next()
                total += 1
                if rate:
                    ahead = total / rate - (time.monotonic() - start)
                    if ahead > 0.002:
                        time.sleep(ahead)
        return total

    def pending(self) -> int:
        return sum(len(u.unacked) for u in self.units)

    def unpublished(self) -> int:
        return sum(u.unpublished() for u in self.units)

    def wait_published(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every QoS1 message the units
        handed to their clients (PUBACK), so stopping loses nothing queued."""
        deadline = time.monotonic() + timeout
        while self.unpublished() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.unpublished() == 0

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.1)
        return self.pending() == 0

    def published_ids(self) -> set[tuple[str, int, int]]:
        return set(itertools.chain.from_iterable(u.published_ids() for u in self.units))

    def resends(self) -> int:
        return sum(u.resends for u in self.units)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for unit in self.units:
            unit.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--site", default="loadgen")
    ap.add_argument("--units", type=int, default=10)
    ap.add_argument("--events", type=int, default=100, help="events per unit")
    ap.add_argument("--rate", type=float, default=None, help="events/s in total (default: as fast as possible)")
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for every event to be acked")
    args = ap.parse_args(argv)
    gen = LoadGen(args.host, args.port, args.site, args.units).start()
    start = time.monotonic()
    total = gen.publish(args.events, args.rate)
    ok = gen.wait_acked(args.wait)
    gen.wait_published(5)  # heartbeats still queued
    print(json.dumps({"published": total, "all_acked": ok, "seconds": round(time.monotonic() - start, 2),
                      "resent": gen.resends()}))
    gen.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
