"""Collector drills against a real Mosquitto and a real InfluxDB. Each ends
with an exact count: every event the virtual units published is in InfluxDB
exactly once, by (unit, boot, seq)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from collector import config
from collector.influx import InfluxV1
from collector.ingest import refused_identity
from collector.service import Collector
from shared import protocol as p
from rig.loadgen import LoadGen
from tools.certs import make_ca_and_server
from rig.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
# The shipped broker settings (the rig's launcher adds `user root` when run as root).
DEPLOY_BROKER_CONF = (ROOT / "deploy/mosquitto/seatmon.conf").read_text()
EVENT_MEASUREMENTS = ("call", "outgoing", "reminder", "shift_end")


# ---- rig -----------------------------------------------------------------------


def write_config(path: Path, broker_port: int, influx_url: str, db: str, **sections) -> Path:
    values = {
        "mqtt": {"port": broker_port, "client_id": f"collector-{db}", "site": db},
        "influx": {"url": influx_url, "database": db, "retry_initial_s": 0.2, "retry_max_s": 1.0},
        "spool": {"path": str(path.parent / f"spool-{db}.db")},
        "health": {"port": 0},
        "ack": {"interval_s": 0.2},
    }
    for section, entries in sections.items():
        values.setdefault(section, {}).update(entries)
    lines = []
    for section, entries in values.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in entries.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_ids(url: str, db: str) -> Counter:
    client = InfluxV1(url, db)
    measurements = ",".join(f'"{m}"' for m in EVENT_MEASUREMENTS)
    ids: Counter = Counter()
    for result in client.query(f'SELECT "boot","seq","unit" FROM {measurements}'):
        for series in result.get("series", []):
            cols = series["columns"]
            b, s, u = cols.index("boot"), cols.index("seq"), cols.index("unit")
            ids.update((row[u], row[b], row[s]) for row in series["values"])
    return ids


def assert_exact(url: str, db: str, gen: LoadGen, timeout: float = 60.0) -> None:
    """Wait until everything published is acked and queryable, then compare."""
    assert gen.wait_acked(timeout), f"{gen.pending()} events never acknowledged"
    expected = Counter(gen.published_ids())
    deadline = time.monotonic() + timeout
    while True:
        got = stored_ids(url, db)
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    missing = expected - got
    extra = got - expected
    assert not missing and not extra, f"missing {len(missing)} (e.g. {sorted(missing)[:3]}), extra {len(extra)}"
    assert max(got.values()) == 1


def health(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


class CollectorProcess:
    """`python -m seatmon.cli collect --config FILE` as a real child process."""

    def __init__(self, config_path: Path, health_port: int):
        self.config_path = config_path
        self.health_url = f"http://127.0.0.1:{health_port}/health"
        self.env = dict(os.environ, SEATMON_COLLECT_HEALTH_PORT=str(health_port))
        self.log = config_path.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CollectorProcess":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "collect", "--config",
                                          str(self.config_path)], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if health(self.health_url)["connected"]:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("collector did not come up:\n" + self.log.read_text())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def db(influxdb, unique_name):
    InfluxV1(influxdb.url, unique_name).create_database()
    return unique_name


@pytest.fixture
def collector_factory(tmp_path):
    started: list[Collector] = []

    def make(broker_port: int, influx_url: str, db: str, wait_subscribed: bool = True, **sections) -> Collector:
        path = write_config(tmp_path / f"{db}-{len(started)}.toml", broker_port, influx_url, db, **sections)
        collector = Collector(config.load(path, env={})).start()
        started.append(collector)
        if wait_subscribed:  # a message published before the SUBACK would not reach a new session
            assert collector.subscribed.wait(20), "collector did not subscribe"
        return collector

    yield make
    for collector in started:
        if not collector._stop.is_set():
            collector.stop(flush_timeout=5)


@pytest.fixture
def units():
    gens: list[LoadGen] = []

    def make(port: int, site: str, count: int, **kw) -> LoadGen:
        gen = LoadGen("127.0.0.1", port, site, count, **kw).start()
        gens.append(gen)
        return gen

    yield make
    for gen in gens:
        gen.stop()


def publish_in_background(gen: LoadGen, per_unit: int, rate: float) -> threading.Thread:
    thread = threading.Thread(target=gen.publish, args=(per_unit, rate), daemon=True)
    thread.start()
    return thread


# ---- drills ----------------------------------------------------------------------


@pytest.mark.slow
def test_steady_stream_and_redelivered_duplicates(mqtt_broker, influxdb, db, collector_factory, units):
    c = collector_factory(mqtt_broker.port, influxdb.url, db)
    gen = units(mqtt_broker.port, db, 20)
    gen.publish(150)
    assert_exact(influxdb.url, db, gen)
    # Redeliver every event again, as a unit that lost its ack mark would.
    for unit in gen.units:
        for seq in range(1, unit.next_seq):
            unit.client.publish(unit.topic(p.EVENT), p.encode(p.EVENT, unit.make_event(seq)), qos=1)
    deadline = time.monotonic() + 30
    while health(c.health_url)["duplicates"] < 3000 and time.monotonic() < deadline:
        time.sleep(0.2)
    h = health(c.health_url)
    assert h["duplicates"] == 3000 and h["events"] == 3000 and h["quarantined"] == 0
    assert h["units"][f"{db}/u-0001"]["acked"] == 150 and h["lost"] == 0
    assert_exact(influxdb.url, db, gen)
    # Status (birth) and heartbeats are stored too.
    client = InfluxV1(influxdb.url, db)
    status = client.query('SELECT count("online") FROM "status"')[0]["series"][0]["values"][0][1]
    beats = client.query('SELECT count("acked") FROM "heartbeat"')[0]["series"][0]["values"][0][1]
    assert status >= 20 and beats >= 20


@pytest.mark.slow
def test_influxdb_stopped_mid_stream(mqtt_broker, influxdb_factory, unique_name, collector_factory, units):
    influx = influxdb_factory()
    InfluxV1(influx.url, unique_name).create_database()
    c = collector_factory(mqtt_broker.port, influx.url, unique_name)
    gen = units(mqtt_broker.port, unique_name, 10)
    gen.publish(100)
    influx.stop()
    gen.publish(200)
    # Units are acknowledged from the spool while InfluxDB is away.
    assert gen.wait_acked(30)
    h = health(c.health_url)
    assert h["spool_depth"] >= 1000 and h["write_errors"] >= 1
    time.sleep(2)
    influx.start()
    assert_exact(influx.url, unique_name, gen)
    assert health(c.health_url)["spool_depth"] == 0


@pytest.mark.slow
def test_broker_restarted_mid_stream(mosquitto_factory, influxdb, db, collector_factory, units):
    broker = mosquitto_factory(extra_config=DEPLOY_BROKER_CONF)
    collector_factory(broker.port, influxdb.url, db)
    gen = units(broker.port, db, 10, resend_after=2.0)
    publisher = publish_in_background(gen, 300, rate=1500)
    time.sleep(0.7)
    broker.stop()
    time.sleep(0.5)
    broker.start()
    publisher.join(30)
    assert_exact(influxdb.url, db, gen, timeout=90)
    assert (broker.data_dir / "mosquitto.db").exists()  # persistence really on
    assert "Permission denied" not in broker.log_path.read_text()


@pytest.mark.slow
def test_collector_sigkilled_mid_stream_and_restarted(tmp_path, mosquitto_factory, influxdb, db, units):
    broker = mosquitto_factory(extra_config=DEPLOY_BROKER_CONF)
    path = write_config(tmp_path / "c.toml", broker.port, influxdb.url, db)
    proc = CollectorProcess(path, free_port()).start()
    gen = units(broker.port, db, 10, resend_after=2.0)
    publisher = publish_in_background(gen, 300, rate=1500)
    time.sleep(1.0)
    proc.kill()
    time.sleep(0.5)
    proc.start()
    publisher.join(30)
    assert_exact(influxdb.url, db, gen, timeout=90)
    # SIGTERM: a clean shutdown that flushes, exit code 0.
    assert proc.terminate() == 0
    assert '"msg": "stopped"' in proc.log.read_text()


@pytest.mark.slow
def test_two_collectors_on_a_shared_subscription_one_killed(tmp_path, mosquitto_factory, influxdb, db, units):
    broker = mosquitto_factory(extra_config=DEPLOY_BROKER_CONF)
    procs = []
    for name in ("a", "b"):
        path = write_config(tmp_path / f"{name}.toml", broker.port, influxdb.url, db,
                            mqtt={"client_id": f"collector-{name}", "shared_group": "g", "session_expiry_s": 5},
                            spool={"path": str(tmp_path / f"spool-{name}.db")})
        procs.append(CollectorProcess(path, free_port()).start())
    gen = units(broker.port, db, 10, resend_after=2.0)
    publisher = publish_in_background(gen, 300, rate=1500)
    time.sleep(1.0)
    procs[0].kill()
    publisher.join(30)
    # The survivor alone gets every unit fully acknowledged: its peer's stored
    # seqs were announced, and once the dead peer's short session expires the
    # broker stops queueing a share for it, so the units' resends reach the
    # survivor.
    assert gen.wait_acked(90), f"{gen.pending()} events never acknowledged"
    # The killed collector's spool still holds what it acked: a restart (as
    # systemd does) drains it, and the count is exact.
    procs[0].start()
    assert_exact(influxdb.url, db, gen, timeout=60)
    assert health(procs[1].health_url)["events"] > 0
    for proc in procs:
        assert proc.terminate() == 0


@pytest.mark.slow
def test_default_queue_limits_and_a_slow_collector(mosquitto_factory, influxdb, db, collector_factory, units):
    # Mosquitto's defaults: max_queued_messages 1000 drops what a slow subscriber cannot take.
    broker = mosquitto_factory(max_queued_messages=None)
    c = collector_factory(broker.port, influxdb.url, db,
                          spool={"test_commit_delay_s": 0.05, "commit_max_messages": 100})
    gen = units(broker.port, db, 20, resend_after=2.0)
    gen.publish(300)
    assert_exact(influxdb.url, db, gen, timeout=120)
    assert gen.resends() > 0  # the broker did drop, and the units' resends made up for it
    assert health(c.health_url)["duplicates"] >= 0


# ---- hostile payloads ----------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=8)
_GOOD = {"v": 1, "kind": "call", "site": "evil", "unit": "u-0666", "seat": "X", "boot": 1, "seq": 1,
         "ts": int(time.time() * 1000), "clock": "ntp", "outcome": "missed", "rings": 3, "ring_ms": 12000,
         "within_limit": False, "limit_ms": 10000, "apology_prompted": False}


def _mutated(draw_field, value):
    msg = dict(_GOOD)
    msg[draw_field] = value
    return json.dumps(msg).encode()


_hostile = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=2049, max_size=2400),
    _json.map(lambda v: json.dumps(v).encode()),
    st.builds(_mutated, st.sampled_from(sorted(_GOOD) + ["colour", "x"]), _json),
    st.builds(lambda ts: json.dumps(dict(_GOOD, ts=ts)).encode(), st.integers(min_value=p.TS_MAX - 10 ** 9)),
    st.builds(lambda u: json.dumps(dict(_GOOD, unit=u)).encode(), st.text(min_size=1, max_size=40)),
)


def hostile_payloads(n: int) -> list[bytes]:
    out: list[bytes] = []

    # Each example draws a list: the per-example overhead, not the drawing,
    # dominates hypothesis's time for payloads this small.
    @settings(max_examples=max(1, n // 10), database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(_hostile, min_size=5, max_size=15))
    def collect(payloads):
        for payload in payloads:
            try:  # keep only what the protocol refuses on the hostile unit's topic
                msg = p.decode(p.EVENT, payload)
                p.check_topic_matches("evil", "u-0666", msg)
                if msg["ts"] > time.time() * 1000 + 86400_000:
                    raise p.ProtocolError("ts", "future")
            except p.ProtocolError:
                out.append(payload)

    while len(out) < n:
        collect()
    return out[:n]


@pytest.mark.slow
def test_ten_thousand_hostile_payloads_mixed_into_the_stream(mqtt_broker, influxdb, db, collector_factory, units):
    bad = hostile_payloads(10_000)
    c = collector_factory(mqtt_broker.port, influxdb.url, db, mqtt={"site": "+"})
    gen = units(mqtt_broker.port, db, 10)
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"evil-{db}", protocol=mqtt.MQTTv5)
    attacker.max_inflight_messages_set(100)
    attacker.connect("127.0.0.1", mqtt_broker.port)
    attacker.loop_start()
    topic = p.topic("evil", "u-0666", p.EVENT)
    publisher = publish_in_background(gen, 200, rate=2000)
    infos = [attacker.publish(topic, payload, qos=1) for payload in bad]
    publisher.join(30)
    for info in infos:
        info.wait_for_publish(30)
    assert_exact(influxdb.url, db, gen, timeout=60)
    # Each payload with no readable seq is kept; of those with one, the first
    # per seq is kept (it counts as handled) and the rest are its resends.
    idents = [refused_identity("evil", "u-0666", payload) for payload in bad]
    kept = idents.count(None) + len(set(idents) - {None})
    deadline = time.monotonic() + 30
    while health(c.health_url)["quarantined"] < kept and time.monotonic() < deadline:
        time.sleep(0.2)
    h = health(c.health_url)
    assert h["quarantined"] == kept and h["duplicates"] >= len(bad) - kept and h["ok"]
    rows = c.spool._writer.execute("SELECT count(*), min(length(reason)) FROM quarantine").fetchone()
    assert rows[0] == kept and rows[1] > 5
    attacker.disconnect()
    attacker.loop_stop()


# ---- the command line -------------------------------------------------------------------


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seatmon.cli", "collect", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **(env or {})))


def test_cli_check_init_db_and_config_errors(tmp_path, mqtt_broker, influxdb, unique_name):
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, unique_name)
    r = run_cli("--config", str(path), "--check")
    assert r.returncode == 1 and "missing (run `seatmon collect init-db`)" in r.stdout
    r = run_cli("--config", str(path), "init-db")
    assert r.returncode == 0, r.stderr
    r = run_cli("--config", str(path), "--check")
    assert r.returncode == 0 and "broker 127.0.0.1" in r.stdout and ": ok (version" in r.stdout
    r = run_cli("--config", str(path), "--check", env={"SEATMON_COLLECT_MQTT_PORT": str(free_port())})
    assert r.returncode == 1 and "unreachable" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[influx]\nurl = "http://x"\nbatch_lines = "lots"\n')
    r = run_cli("--config", str(bad))
    assert r.returncode == 2 and "bad.toml:3: key 'influx.batch_lines': expected an integer" in r.stderr


def test_cli_quarantine_list_show_replay(tmp_path, mqtt_broker, influxdb, db, collector_factory):
    c = collector_factory(mqtt_broker.port, influxdb.url, db, validation={"max_past_s": 60})
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"q-{db}", protocol=mqtt.MQTTv5)
    sender.connect("127.0.0.1", mqtt_broker.port)
    sender.loop_start()
    old = dict(_GOOD, site=db, unit="u-1", ts=int(time.time() * 1000) - 3_600_000)
    sender.publish(p.topic(db, "u-1", p.EVENT), json.dumps(old), qos=1).wait_for_publish(10)
    deadline = time.monotonic() + 10
    while health(c.health_url)["quarantined"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    path = c.cfg.source
    r = run_cli("--config", path, "quarantine", "list")
    assert r.returncode == 0 and "1 quarantined in total" in r.stdout and "in the past" in r.stdout
    qid = r.stdout.splitlines()[1].split()[0]
    r = run_cli("--config", path, "quarantine", "show", qid)
    shown = json.loads(r.stdout)
    assert shown["topic"] == f"seatmon/v1/{db}/u-1/event" and json.loads(shown["payload"])["unit"] == "u-1"
    # After the operator widens the clock window, a replay stores it.
    c.ingestor.limits.max_past_ms = 86400_000
    r = run_cli("--config", path, "quarantine", "replay", "--all")
    assert r.returncode == 0 and "replayed 1 message(s)" in r.stdout
    deadline = time.monotonic() + 10
    while stored_ids(influxdb.url, db) != Counter({("u-1", 1, 1): 1}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored_ids(influxdb.url, db) == Counter({("u-1", 1, 1): 1})
    sender.disconnect()
    sender.loop_stop()


def test_tls_and_password(tmp_path, mosquitto_factory, influxdb, db, collector_factory, units):
    """The collector over TLS with a username and password; a wrong password
    is refused and --check says so."""
    certs = make_ca_and_server(tmp_path / "certs")
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "collector", "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "unit", "unitpw"], check=True)
    tls_port = free_port()
    broker = mosquitto_factory(extra_config=DEPLOY_BROKER_CONF + "\n".join([
        "", "per_listener_settings false", f"password_file {passwd}", "allow_anonymous false",
        f"listener {tls_port} 127.0.0.1", f"certfile {certs['cert']}", f"keyfile {certs['key']}"]))
    tls = {"port": tls_port, "tls": True, "ca_file": str(certs["ca"]), "username": "collector",
           "password": "s3cret"}
    c = collector_factory(broker.port, influxdb.url, db, mqtt=tls)
    # Units on the plain listener, with their own credentials.
    gen = LoadGen("127.0.0.1", broker.port, db, 3)
    for unit in gen.units:
        unit.client.username_pw_set("unit", "unitpw")
    gen.start()
    try:
        gen.publish(50)
        assert_exact(influxdb.url, db, gen)
        assert health(c.health_url)["connected"]
    finally:
        gen.stop()
    path = write_config(tmp_path / "wrong.toml", tls_port, influxdb.url, db, mqtt=dict(tls, password="nope"))
    r = run_cli("--config", str(path), "--check")
    assert r.returncode == 1 and "refused" in r.stdout


def test_lost_events_are_counted_once_the_unit_gives_up(mqtt_broker, influxdb, db, collector_factory, units):
    """A unit whose journal overflowed (seq 3-4 never sent) says so with its
    heartbeat `acked`: the gap becomes a seq_gap point and a lost count, and
    the ack mark moves past it."""
    c = collector_factory(mqtt_broker.port, influxdb.url, db)
    gen = units(mqtt_broker.port, db, 1, heartbeat_every=0)
    unit = gen.units[0]
    for seq in (1, 2, 5):
        payload = p.encode(p.EVENT, unit.make_event(seq))
        unit.client.publish(unit.topic(p.EVENT), payload, qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 10
    while health(c.health_url)["events"] < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health(c.health_url)["units"][f"{db}/u-0001"]["acked"] == 2  # held back by the gap
    unit.mark = 5  # the unit dropped 3-4 from a full journal and moved on
    unit.heartbeat()
    deadline = time.monotonic() + 10
    while health(c.health_url)["lost"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    h = health(c.health_url)
    assert h["lost"] == 2 and h["units"][f"{db}/u-0001"] == {"last_seen_ms": h["units"][f"{db}/u-0001"]["last_seen_ms"],
                                                             "acked": 5, "lost": 2}
    client = InfluxV1(influxdb.url, db)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        series = client.query('SELECT "first_seq","last_seq","count" FROM "seq_gap"')[0].get("series")
        if series:
            break
        time.sleep(0.2)
    assert [row[1:] for row in series[0]["values"]] == [[3, 4, 2]]
