"""Reconnecting after the broker went away (firmware/link.py): the backoff
starts again after a session that lasted, and a floor of units that lost the
broker at the same instant comes back spread out, not in one burst.

Virtual units (the real firmware on fake pins and radio) against a real
Mosquitto that the test stops and starts."""

import asyncio
import threading
import time

import pytest

from firmware import link as link_mod
from virtual.units.harness import UnitThread, wait_until
from virtual.units.unit import VirtualUnit

QUIET = {"calls_per_hour": 2.0, "outgoing_per_hour": 1.0}


def test_backoff_doubles_while_connects_fail_and_starts_again_after_a_lasting_session():
    from firmware.link import BACKOFF_MIN_MS, ReconnectBackoff
    b = ReconnectBackoff(60000)
    mid = 32768  # a random draw in the middle: the wait is the step itself
    steps = [b.next_ms(mid) for _ in range(7)]
    assert steps == [2000, 4000, 8000, 16000, 32000, 60000, 60000]
    b.session_ended(link_mod.SESSION_LASTED_MS - 1)  # a session that dropped at once: no reset
    assert b.next_ms(mid) == 60000
    b.session_ended(link_mod.SESSION_LASTED_MS)
    assert b.next_ms(mid) == BACKOFF_MIN_MS
    # The draw spreads each wait over [step/2, step*3/2).
    fresh = ReconnectBackoff(60000)
    assert fresh.next_ms(0) == 1000
    fresh = ReconnectBackoff(60000)
    assert fresh.next_ms(65535) == 2999
    # A site cap below the first step is honoured.
    assert ReconnectBackoff(1000).next_ms(mid) == 1000


def test_reconnect_after_every_broker_restart_is_quick_once_sessions_lasted(tmp_path, mosquitto_factory,
                                                                            unique_name, monkeypatch):
    # Before: the session always ends by raising, so the reset after a good
    # session was never reached: the n-th restart cost 2**(n-1) s, up to
    # backoff_max_ms (60 s) from the sixth on.
    monkeypatch.setattr(link_mod, "SESSION_LASTED_MS", 1500, raising=False)  # "lasted", shortened for the test
    broker = mosquitto_factory()
    vu = VirtualUnit(str(tmp_path / "u"), unique_name, 1, (broker.host, broker.port), speed=1.0, seed=1,
                     traffic=QUIET, link={"backoff_max_ms": 60000, "keepalive": 5})
    link = vu.unit.link
    run = UnitThread(vu)
    took = []
    try:
        assert wait_until(lambda: link.connects == 1, 20), link.last_error
        for n in range(2, 7):
            time.sleep(2.0)  # the session lasts
            broker.stop()
            t0 = time.monotonic()
            broker.start()
            assert wait_until(lambda: link.connects == n, 30), link.last_error
            took.append(time.monotonic() - t0)
    finally:
        run.stop()
    assert run.error is None
    # Each reconnect is a first step: 1-3 s after the drop (plus start-up slack).
    assert max(took) < 4.5, took


def _floor(tmp_path, site, broker, n):
    return [VirtualUnit(str(tmp_path / ("u%02d" % i)), site, i, (broker.host, broker.port), speed=1.0, seed=2,
                        traffic=QUIET, link={"keepalive": 10, "heartbeat_ms": 600000})
            for i in range(1, n + 1)]


class FloorLoop:
    """Many virtual units on one asyncio loop in a thread (as `seatmon unit
    simulate` runs them); records the real time of every connect per unit."""

    def __init__(self, units):
        self.units = units
        self.connects: list[tuple[float, int]] = []  # (monotonic s, unit index)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self._stop = None
        self.thread.start()

    async def _main(self):
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(u.run()) for u in self.units]
        seen = [0] * len(self.units)
        while not self._stop.is_set():
            for i, u in enumerate(self.units):
                if u.unit.link.connects != seen[i]:
                    seen[i] = u.unit.link.connects
                    self.connects.append((time.monotonic(), i))
            await asyncio.sleep(0.005)
        for u in self.units:
            try:
                await asyncio.wait_for(u.unit.stop(True), 5)
            except Exception:  # noqa: BLE001 (a unit between sessions has nothing to close)
                pass
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def connected(self):
        return sum(1 for u in self.units if u.unit.link.connected)

    def stop(self):
        self.loop.call_soon_threadsafe(lambda: self._stop.set())
        self.thread.join(30)


def busiest(times, window_s):
    """Most connects within any `window_s` of real time."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("units", [40])
def test_a_floor_reconnects_spread_out_after_a_broker_restart(tmp_path, mosquitto_factory, unique_name, units):
    # Before: no jitter; every unit waited exactly the same 1 s after the
    # drop and the whole floor came back in one burst (all 40 within 0.25 s).
    broker = mosquitto_factory()
    floor = FloorLoop(_floor(tmp_path, unique_name, broker, units))
    try:
        assert wait_until(lambda: floor.connected() == units, 60), floor.connected()
        time.sleep(1.0)
        broker.stop()
        t0 = time.monotonic()
        broker.start()
        assert wait_until(lambda: floor.connected() == units, 60), floor.connected()
    finally:
        floor.stop()
    again = [t - t0 for t, _ in floor.connects if t >= t0]
    assert len(again) == units
    spread = max(again) - min(again)
    burst = busiest(again, 0.25)
    print("reconnects after the restart: first %.2f s, last %.2f s, spread %.2f s, at most %d in 0.25 s"
          % (min(again), max(again), spread, burst))
    assert spread >= 1.0, again
    assert burst <= 15, sorted(again)
    assert max(again) < 8.0, sorted(again)
