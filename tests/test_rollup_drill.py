"""The roll-up drill: two collectors on one shared subscription, killed and
restarted, InfluxDB paused (SIGSTOP) mid-stream, late and resent events; at
the end every `rollup_15m` and `rollup_day` point must equal a
recomputation from the raw rows (docs/schema.md, the guarantee), and no
point may exist that the recomputation does not have.

Randomised: each seed draws its own schedule of kills and pauses."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from collector import rollup as ru
from collector.influx import InfluxV1
from tests.test_collector import (DEPLOY_BROKER_CONF, CollectorProcess, health, units,  # noqa: F401 (fixtures)
                                  write_config)
from tests.test_collector_rollup import _raw_rollups
from rig.servers import free_port

TZ = "Europe/Berlin"
# Load: enough writes in flight while refreshes read for torn rows to show.
UNITS, PER_UNIT, RATE = 16, 500, 800.0
DAY = 86400_000


def _stored_days(client: InfluxV1) -> dict:
    out = {}
    for result in client.query(f"SELECT * FROM {ru.MEASUREMENT_DAY}"):
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                out[(row["site"], row["seat"], row.get("shift"), row["time"])] = ru.Rollup.from_fields(row)
    return out


def _mismatch(client: InfluxV1) -> str:
    """'' when every roll-up point equals the recomputation, else what differs."""
    fresh, stored = _raw_rollups(client)
    days = ru.rollup_day(fresh, TZ)
    stored_days = _stored_days(client)
    out = []
    for name, want, got in (("rollup_15m", fresh, stored), ("rollup_day", days, stored_days)):
        for key in sorted(set(want) | set(got), key=repr):
            if want.get(key) != got.get(key):
                w, g = want.get(key), got.get(key)
                out.append(f"{name} {key}: recomputed {w.calls if w else None} calls/"
                           f"{w.outgoing if w else None} out, stored {g.calls if g else None}/"
                           f"{g.outgoing if g else None}")
    return "\n".join(out)


def _chaos(rng: random.Random, procs: list[CollectorProcess], influx, until: float) -> list[str]:
    """Kill a collector (restarted a moment later) or pause InfluxDB, at
    random, until `until`. Returns what it did."""
    done = []
    while time.monotonic() < until:
        time.sleep(rng.uniform(0.3, 1.2))
        if rng.random() < 0.4:
            proc = rng.choice(procs)
            proc.kill()
            time.sleep(rng.uniform(0.0, 0.8))
            proc.start()
            done.append(f"kill {procs.index(proc)}")
        else:
            pause = rng.uniform(0.2, 2.5)
            influx.proc.send_signal(signal.SIGSTOP)
            time.sleep(pause)
            influx.proc.send_signal(signal.SIGCONT)
            done.append(f"pause {pause:.1f}s")
    return done


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_roll_ups_equal_the_raw_rows_after_kills_pauses_and_late_events(seed, tmp_path, mosquitto_factory,
                                                                          influxdb_factory, unique_name, units):
    rng = random.Random(seed)
    db = unique_name
    broker = mosquitto_factory(extra_config=DEPLOY_BROKER_CONF)
    influx = influxdb_factory()
    client = InfluxV1(influx.url, db)
    client.create_database()
    procs = []
    for name in ("a", "b"):
        path = write_config(tmp_path / f"{name}.toml", broker.port, influx.url, db,
                            mqtt={"client_id": f"collector-{name}", "shared_group": "g", "session_expiry_s": 5},
                            spool={"path": str(tmp_path / f"spool-{name}.db")},
                            influx={"batch_lines": 40, "timeout_s": 3, "retry_initial_s": 0.1, "retry_max_s": 0.5},
                            rollup={"interval_s": 0.05, "settle_s": 0.5, "tz": TZ})
        procs.append(CollectorProcess(path, free_port()).start())
    gen = units(broker.port, db, UNITS, resend_after=1.0)
    late = units(broker.port, db, 4, resend_after=1.0, first_unit=100)
    for unit in late.units:  # days late: their own intervals and days
        unit.t0_ms -= rng.randint(1, 3) * DAY + rng.randint(0, DAY)
    publishers = [threading.Thread(target=g.publish, args=(n, rate), daemon=True)
                  for g, n, rate in ((gen, PER_UNIT, RATE), (late, 80, 40.0))]
    for t in publishers:
        t.start()
    try:
        actions = _chaos(rng, procs, influx, time.monotonic() + PER_UNIT * UNITS / RATE)
    finally:
        influx.proc.send_signal(signal.SIGCONT)
    for t in publishers:
        t.join(60)
    assert gen.wait_acked(120) and late.wait_acked(60), f"{gen.pending() + late.pending()} never acknowledged"
    # Settled: nothing left to write or refresh on either collector; then compare.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        states = [health(p.health_url) for p in procs]
        if all(s["spool_depth"] == 0 and s["rollup_pending"] == 0 for s in states):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    mismatch = _mismatch(client)
    for proc in procs:
        assert proc.terminate() == 0
    assert not mismatch, f"seed {seed}, chaos {actions}:\n{mismatch}"
