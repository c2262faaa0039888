"""Test and demo helpers around virtual units: run one in a background
thread, watch topics, and a small acknowledger that stands in for the
collector (stores received events in memory and publishes the retained `ack`
with the highest contiguous seq, as docs/protocol.md says)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import paho.mqtt.client as paho

from shared import protocol


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


class UnitThread:
    """A VirtualUnit's asyncio loop in a thread; stop() ends it (Will or not)."""

    def __init__(self, vunit):
        self.vunit = vunit
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self._task = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.vunit.run())
        try:
            self.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 (kept for the test to see)
            self.error = exc

    def call(self, fn, *args):
        """Run fn(*args) on the unit's loop and return its result."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self, clean: bool = True):
        if self.thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self.vunit.unit.stop(clean), self.loop)
            try:
                fut.result(10)
            except Exception:  # noqa: BLE001 (the loop may already be failing)
                pass
            self.loop.call_soon_threadsafe(self._task.cancel)
            self.thread.join(10)


class Watcher:
    """A paho subscriber recording (topic, payload, retained) per message."""

    def __init__(self, host: str, port: int, topic: str, name: str, user: str | None = None,
                 password: str | None = None):
        self.got: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.topic = topic
        self.subscribed = threading.Event()  # set on SUBACK: from then on nothing published is missed
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self.topic, qos=1)
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append((msg.topic, msg.payload, bool(msg.retain)))

    def channel(self, name: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.got if t.endswith("/" + name)]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Acknowledger:
    """Stands in for the collector: keeps every event it receives (in memory:
    "durably stored" for these tests) and publishes the retained `ack` with the
    highest contiguous seq per unit (one board incarnation per unit here).
    `delay_s` makes it a slow consumer."""

    def __init__(self, host: str, port: int, site: str, name: str, delay_s: float = 0.0,
                 prefix: str = protocol.DEFAULT_PREFIX):
        self.prefix = prefix
        self.site = site
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.arrivals: list[tuple[str, int, int]] = []  # (unit, boot, seq) in arrival order
        self.stored: dict[tuple[str, int], dict] = {}  # (unit, seq) -> event
        self.mark: dict[str, int] = {}
        self.conflicts: list = []  # a seq seen with two different boots: a reused seq
        # A persistent session, as the collector's: the broker keeps its
        # messages while it is away (up to the broker's queue limit).
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(
            protocol.subscription(protocol.EVENT, prefix, site), qos=1)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        if self.delay_s:
            time.sleep(self.delay_s)
        ev = protocol.decode(protocol.EVENT, msg.payload)
        unit = ev["unit"]
        with self.lock:
            self.arrivals.append((unit, ev["boot"], ev["seq"]))
            old = self.stored.get((unit, ev["seq"]))
            if old is not None and old["boot"] != ev["boot"]:
                self.conflicts.append((old, ev))
            self.stored[(unit, ev["seq"])] = ev
            mark = self.mark.get(unit, 0)
            start = mark
            while (unit, mark + 1) in self.stored:
                mark += 1
            self.mark[unit] = mark
        if mark != start:
            ack = {"v": 1, "unit": unit, "seq": mark}
            if ev.get("inc"):
                ack["inc"] = ev["inc"]  # the unit takes only an ack naming its incarnation
            client.publish(protocol.topic(self.site, unit, protocol.ACK, self.prefix),
                           protocol.encode(protocol.ACK, ack), qos=1, retain=True)

    def seqs(self, unit: str) -> list[int]:
        with self.lock:
            return sorted(s for (u, s) in self.stored if u == unit)

    def first_arrival_order(self, unit: str) -> list[int]:
        seen = set()
        out = []
        with self.lock:
            for u, _, s in self.arrivals:
                if u == unit and s not in seen:
                    seen.add(s)
                    out.append(s)
        return out

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
