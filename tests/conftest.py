"""The test rig: real Mosquitto and InfluxDB servers for the whole session.

By default each server is started on a free loopback port with its data under
pytest's temp dir and stopped at the end, whatever the tests did. To run
against servers that are already up, set:

    SEATMON_TEST_MQTT=127.0.0.1:1883
    SEATMON_TEST_INFLUX=http://127.0.0.1:8086

Tests that stop, kill or reconfigure a server (drills) start their own with
the `mosquitto_factory` / `influxdb_factory` fixtures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from rig.servers import InfluxDB, Mosquitto


def pytest_report_header(config):
    # CI runs the suite twice, once at a far-away date (tests/farclock): say which.
    from datetime import datetime, timezone

    shifted = " (shifted by SEATMON_TEST_DATE)" if os.environ.get("SEATMON_TEST_DATE") else ""
    return f"wall clock: {datetime.now(timezone.utc).isoformat(timespec='seconds')}{shifted}"


@dataclass
class BrokerEndpoint:
    host: str
    port: int
    server: Mosquitto | None = None  # None when the broker is external


@dataclass
class InfluxEndpoint:
    url: str
    server: InfluxDB | None = None


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory) -> BrokerEndpoint:
    external = os.environ.get("SEATMON_TEST_MQTT")
    if external:
        host, _, port = external.rpartition(":")
        yield BrokerEndpoint(host or "127.0.0.1", int(port))
        return
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"), max_queued_messages=0)
    server.start()
    try:
        yield BrokerEndpoint(server.host, server.port, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory) -> InfluxEndpoint:
    external = os.environ.get("SEATMON_TEST_INFLUX")
    if external:
        yield InfluxEndpoint(external.rstrip("/"))
        return
    server = InfluxDB(tmp_path_factory.mktemp("influxdb"))
    server.start()
    try:
        yield InfluxEndpoint(server.url, server)
    finally:
        server.stop()


def _server_factory(cls, tmp_path):
    """make(**kwargs) starts a private server; all are stopped when the test ends."""
    started = []

    def make(**kwargs):
        server = cls(tmp_path / f"{cls.name}{len(started)}", **kwargs)
        started.append(server)
        return server.start()

    return make, started


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    """Every test's audit lines (reports and listings that name agents) go to its own temp dir."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("SEATMON_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def mosquitto_factory(tmp_path):
    """Start private brokers (for drills that stop or restart them)."""
    make, started = _server_factory(Mosquitto, tmp_path)
    yield make
    for server in started:
        server.stop()


@pytest.fixture
def influxdb_factory(tmp_path):
    """Start private InfluxDB servers (for drills that stop or wipe them)."""
    make, started = _server_factory(InfluxDB, tmp_path)
    yield make
    for server in started:
        server.stop()


@pytest.fixture
def unique_name(request) -> str:
    """A name (database, client id, site) unique to this test."""
    import hashlib

    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
