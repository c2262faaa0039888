"""A message the spool or InfluxDB cannot hold never stalls the collector, and
/health and the log tell the truth when something is wrong. Real Mosquitto,
real InfluxDB, the collector as a real child process where a restart or a
SIGKILL is part of the drill."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from collector import config
from collector.influx import InfluxV1
from collector.service import Collector
from collector.spool import Spool, SpoolError
from shared import protocol as p
from tests.test_collector import (ROOT, CollectorProcess, assert_exact, collector_factory, db, health,  # noqa: F401
                                  publish_in_background, run_cli, stored_ids, units, write_config)
from rig.loadgen import VirtualUnit
from rig.poison import JournalingPoisonUnit
from rig.servers import free_port

BAD_SEQ = 2


def poison_payloads(site: str, unit: str, ts: int) -> list[bytes]:
    """The issue's reproduction: seq 1, 2, 3 of one unit, seq 2 carrying a
    JSON-escaped lone surrogate (valid UTF-8 and valid JSON on the wire)."""
    out = []
    for seq in (1, 2, 3):
        detail = '"\\ud800"' if seq == BAD_SEQ else '"fine"'
        out.append(('{"v":1,"kind":"fault","site":"%s","unit":"%s","seat":"A-01","boot":1,"seq":%d,"ts":%d,'
                    '"clock":"ntp","code":"x","detail":%s}' % (site, unit, seq, ts + seq, detail)).encode())
    return out


class PoisonUnit(VirtualUnit):
    """A unit (or anyone holding its password) publishing raw bytes."""

    def publish_raw(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.client.publish(self.topic(p.EVENT), payload, qos=1).wait_for_publish(10)


def faults_of(url: str, db: str, unit: str) -> dict[int, str]:
    rows = InfluxV1(url, db).query(f'SELECT "seq", "detail" FROM "fault" WHERE "unit" = \'{unit}\'')
    return {seq: detail for series in rows[0].get("series", []) for _, seq, detail in series["values"]}


def quarantine_rows(spool_path: Path) -> list[tuple]:
    db = Spool(spool_path)
    try:
        return db._writer.execute("SELECT topic, payload, reason FROM quarantine ORDER BY id").fetchall()
    finally:
        db.close()


class HealthWatch:
    """Polls /health in the background and keeps every answer."""

    def __init__(self, url_of):
        self.url_of = url_of
        self.seen: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.2):
            try:
                self.seen.append(health(self.url_of()))
            except OSError:
                pass  # between a kill and the restart

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.mark.slow
@pytest.mark.parametrize("kill_midstream", [False, True], ids=["steady", "sigkill-restart"])
def test_a_lone_surrogate_among_twenty_units_stalls_nothing(kill_midstream, tmp_path, mqtt_broker, influxdb, db,
                                                           units):
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, db)
    proc = CollectorProcess(path, free_port()).start()
    gen = units(mqtt_broker.port, db, 20, resend_after=2.0)
    evil = PoisonUnit("127.0.0.1", mqtt_broker.port, db, "u-0666", resend_after=3600).start()
    assert evil.connected.wait(10)
    with HealthWatch(lambda: proc.health_url) as watch:
        publisher = publish_in_background(gen, 40, rate=400)
        time.sleep(0.5)
        evil.publish_raw(poison_payloads(db, "u-0666", int(time.time() * 1000) - 60_000))
        if kill_midstream:
            proc.kill()
            time.sleep(0.5)
            proc.start()
        publisher.join(60)
        assert_exact(influxdb.url, db, gen, timeout=90)
    evil.stop()
    # Every valid event stored once; the bad one quarantined with its reason.
    assert faults_of(influxdb.url, db, "u-0666") == {1: "fine", 3: "fine"}
    rows = [r for r in quarantine_rows(tmp_path / f"spool-{db}.db") if b"u-0666" in r[1]]
    assert len(rows) >= 1 and all(b'"detail":"\\ud800"' in r[1] and b'"seq":2,' in r[1] for r in rows), rows
    assert all("field 'detail'" in r[2] and "printable" in r[2] for r in rows), rows
    # /health stayed truthful: acknowledgements never stopped, so it never said otherwise.
    assert watch.seen and all(h["ok"] for h in watch.seen), [h["problems"] for h in watch.seen if not h["ok"]]
    assert proc.terminate() == 0


@pytest.mark.slow
def test_poison_event_among_valid_traffic_every_unit_fully_acknowledged(tmp_path, mqtt_broker, influxdb, db, units):
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, db)
    proc = CollectorProcess(path, free_port()).start()
    gen = units(mqtt_broker.port, db, 20, resend_after=2.0)
    evil = JournalingPoisonUnit("127.0.0.1", mqtt_broker.port, db, "u-0666", resend_after=1.0).start()
    assert evil.connected.wait(10)
    publisher = publish_in_background(gen, 40, rate=400)
    for _ in range(30):
        evil.publish_next()
        time.sleep(0.01)
    publisher.join(60)
    # Stalled acks make it resend; a collector restart must still know the poison seqs.
    time.sleep(2.5)
    proc.kill()
    proc.start()
    evil.stop()
    evil.start()  # a reconnect resends everything above the ack
    assert gen.wait_acked(90), f"{gen.pending()} events never acknowledged"
    deadline = time.monotonic() + 30
    while evil.mark < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert evil.mark == 30 and not evil.unacked, (evil.mark, sorted(evil.unacked))
    # Every valid event stored exactly once, the poison ones nowhere but the quarantine.
    expected = Counter(gen.published_ids() | {i for i in evil.published_ids() if i[2] not in evil.POISON})
    deadline = time.monotonic() + 30
    while stored_ids(influxdb.url, db) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    assert stored_ids(influxdb.url, db) == expected
    rows = [r for r in quarantine_rows(tmp_path / f"spool-{db}.db") if b"u-0666" in r[1]]
    assert sorted(int(r[1].split(b'"seq":')[1].split(b",")[0]) for r in rows) == list(JournalingPoisonUnit.POISON)
    h = health(proc.health_url)
    assert h["ok"] and h["units"][f"{db}/u-0666"]["acked"] == 30, h
    evil.stop()
    assert proc.terminate() == 0


def test_a_commit_the_spool_refuses_is_split_and_the_culprit_quarantined(tmp_path, mqtt_broker, influxdb, db,
                                                                        collector_factory, units, monkeypatch):
    """Belt and braces behind the validator: should a batch still fail to
    commit for a reason a retry cannot cure, ingest goes message by message."""
    c = collector_factory(mqtt_broker.port, influxdb.url, db)
    real_commit = c.spool.commit

    def commit(lines, quarantined, changed, *more):
        if any("seq=7i" in line and "u-0003" in line for line, *_ in lines):
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return real_commit(lines, quarantined, changed, *more)

    monkeypatch.setattr(c.spool, "commit", commit)
    gen = units(mqtt_broker.port, db, 5, resend_after=3600)
    gen.publish(20, rate=500)
    deadline = time.monotonic() + 30
    while health(c.health_url)["isolated"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    h = health(c.health_url)
    assert h["isolated"] == 1 and h["ok"], h
    rows = c.spool._writer.execute("SELECT reason FROM quarantine").fetchall()
    assert len(rows) == 1 and rows[0][0].startswith("could not be stored: UnicodeEncodeError")
    expected = {ident for ident in gen.published_ids() if ident != ("u-0003", 1, 7)}
    deadline = time.monotonic() + 30
    while set(stored_ids(influxdb.url, db)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(stored_ids(influxdb.url, db)) == expected


# ---- health and the log when the servers are not there ----------------------------


def _dead_port() -> int:
    return free_port()  # nothing listens there


def test_health_and_log_say_when_broker_and_influxdb_are_unreachable(tmp_path, caplog):
    broker_port, influx_port = _dead_port(), _dead_port()
    path = write_config(tmp_path / "c.toml", broker_port, f"http://127.0.0.1:{influx_port}", "nowhere",
                        health={"port": 0, "unreachable_s": 1.0, "warn_every_s": 60.0})
    caplog.set_level(logging.INFO, logger="seatmon.collector")
    c = Collector(config.load(path, env={}))
    c.IDLE_PING_S = 0.2
    c.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            h = health(c.health_url)
            if {"broker", "influx"} <= set(h["problems"]):
                break
            time.sleep(0.2)
        assert not h["ok"] and {"broker", "influx"} <= set(h["problems"]), h
        assert f"127.0.0.1:{broker_port}" in h["problems"]["broker"]
        with urllib_open(c.health_url.replace("/health", "/metrics")) as text:
            assert "seatmon_collector_ok 0" in text
            assert 'seatmon_collector_problem{problem="broker"} 1' in text
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            if any(f"127.0.0.1:{broker_port}" in w for w in warnings) and \
                    any(f"127.0.0.1:{influx_port}" in w for w in warnings):
                break
            time.sleep(0.2)
        broker_lines = [w for w in warnings if f"broker 127.0.0.1:{broker_port} unreachable" in w]
        assert broker_lines and "Connection refused" in broker_lines[0], warnings
        assert any(f"InfluxDB http://127.0.0.1:{influx_port} unreachable" in w for w in warnings), warnings
        # Rate-limited: one warning per problem until warn_every_s passes.
        time.sleep(2.5)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "unreachable for" in
                    r.getMessage()]
        assert len(warnings) == 2, warnings
    finally:
        c.stop(flush_timeout=1)


def urllib_open(url):
    import contextlib
    import urllib.request

    @contextlib.contextmanager
    def opened():
        with urllib.request.urlopen(url, timeout=5) as resp:
            yield resp.read().decode()
    return opened()


def test_health_says_stalled_while_messages_wait_and_nothing_is_stored(tmp_path, mqtt_broker, influxdb, db,
                                                                      collector_factory, units):
    # A slow disk: every commit takes 3 s; the stall threshold is 1 s.
    c = collector_factory(mqtt_broker.port, influxdb.url, db, spool={"test_commit_delay_s": 3.0},
                          health={"port": 0, "stall_s": 1.0})
    gen = units(mqtt_broker.port, db, 2, resend_after=3600)
    gen.publish(5, rate=100)
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        h = health(c.health_url)
        seen.append(h)
        if "stalled" in h["problems"]:
            break
        time.sleep(0.1)
    assert "stalled" in seen[-1]["problems"] and not seen[-1]["ok"], seen[-1]
    assert "nothing stored or acknowledged" in seen[-1]["problems"]["stalled"]
    assert gen.wait_acked(30)
    deadline = time.monotonic() + 5
    while health(c.health_url)["problems"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health(c.health_url)["ok"]


# ---- the command line -----------------------------------------------------------------


def test_collect_without_a_config_refuses_and_creates_nothing(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SEATMON_COLLECT_")}
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "collect"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "deploy/collector.example.toml" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_collect_never_creates_the_spool_directory(tmp_path, mqtt_broker, influxdb, unique_name):
    missing = tmp_path / "not" / "here"
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, unique_name,
                        spool={"path": str(missing / "spool.db")})
    for args in ([], ["init-db"]):
        res = run_cli("--config", str(path), *args)
        assert res.returncode == 2, res.stderr
        assert f"spool directory {missing} does not exist" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("--config", str(path), "--check")
    assert res.returncode == 1 and f"spool directory {missing}: missing" in res.stdout
    assert not missing.parent.exists()
    with pytest.raises(SpoolError):
        Spool(missing / "spool.db")


def test_the_example_config_is_complete_and_valid():
    import tomllib

    example = ROOT / "deploy/collector.example.toml"
    cfg = config.load(example, env={})
    raw = tomllib.loads(example.read_text())
    for section, keys in config.SCHEMA.items():
        for key in keys:
            assert key in raw.get(section, {}), f"{section}.{key} missing from {example.name}"
    assert cfg.spool.path == "/var/lib/seatmon/collector/spool.db"
    docs = (ROOT / "docs/collector.md").read_text()
    for section, keys in config.SCHEMA.items():
        for key in keys:
            assert f"{section}.{key}" in docs, f"docs/collector.md does not describe {section}.{key}"
