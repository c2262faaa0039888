"""While InfluxDB is away the writer retries with capped exponential backoff
(docs/collector.md), in every path: new events arriving, idle, and a
shutdown that tries to flush. Attempts are counted, not timed: over a window
of W seconds the backoff allows at most the attempts whose waits fit in W."""

from __future__ import annotations

import time

from collector import config
from collector.service import Collector
from tests.test_collector import units, write_config  # noqa: F401 (fixtures)
from rig.servers import free_port

INITIAL, CAP = 0.2, 1.0


def allowed_attempts(window_s: float, initial: float = INITIAL, cap: float = CAP) -> int:
    """The most write attempts capped exponential backoff permits in a window
    (the first attempt at its start)."""
    attempts, spent, wait = 1, 0.0, initial
    while spent + wait <= window_s:
        spent += wait
        attempts += 1
        wait = min(wait * 2, cap)
    return attempts


def test_allowed_attempts():
    assert allowed_attempts(0.1) == 1
    assert allowed_attempts(0.2) == 2
    assert allowed_attempts(3.0) == 5  # at 0, 0.2, 0.6, 1.4 and 2.4 s; the next at 3.4


def test_influxdb_down_new_events_and_a_flushing_stop_keep_the_backoff(tmp_path, mqtt_broker, unique_name, units):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every write is refused at once
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, dead, unique_name,
                        influx={"retry_initial_s": INITIAL, "retry_max_s": CAP}, rollup={"enabled": False})
    c = Collector(config.load(path, env={})).start()
    try:
        assert c.subscribed.wait(20)
        gen = units(mqtt_broker.port, unique_name, 3)
        started = time.monotonic()
        for _ in range(6):  # events keep arriving while InfluxDB is down
            gen.publish(2)
            time.sleep(0.4)
        assert gen.wait_acked(30)  # acknowledged from the spool meanwhile
        assert c.spool.depth >= 2
        attempts, window = c.stats.write_errors, time.monotonic() - started
        assert 1 <= attempts <= allowed_attempts(window) + 1, (attempts, window)
    finally:
        before = c.stats.write_errors
        stopping = time.monotonic()
        c.stop(flush_timeout=2.0)
        during_stop, window = c.stats.write_errors - before, time.monotonic() - stopping
    # Stopping wakes the writer to flush, but it still waits out its backoff
    # (at most one wait of CAP, plus the attempts a fresh backoff allows).
    assert during_stop <= allowed_attempts(window, CAP, CAP), (during_stop, window)
    assert c.spool.depth >= 2  # kept for the next start
