"""`seatmon selfcheck` against a real installation: Mosquitto and InfluxDB
from the rig, a real `seatmon collect --site` process, all configured by one
site file; then with one server down."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from collector.influx import InfluxV1
from seatmon import selfcheck
from rig.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def seatmon(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "seatmon.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


def site_file(path: Path, broker_port: int, influx_url: str, db: str, health_port: int) -> Path:
    path.write_text(f"""
[site]
id = "{db}"
timezone = "Europe/Berlin"

[broker]
host = "127.0.0.1"
port = {broker_port}
tls = false
credentials = "credentials.json"

[influx]
url = "{influx_url}"
database = "{db}"

[collector.spool]
path = "{path.parent / 'spool.db'}"

[collector.health]
port = {health_port}
unreachable_s = 1.0
""")
    return path


class Collector:
    def __init__(self, site: Path, health_port: int):
        self.log = site.with_suffix(".log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "collect", "--site", str(site)],
                                         cwd=ROOT, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{health_port}/health"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if json.loads(resp.read())["subscribed"]:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("collector did not come up:\n" + self.log.read_text())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def lines(res) -> dict[str, str]:
    """check name (its first words) -> 'ok' or 'FAIL'."""
    out = {}
    for line in res.stdout.splitlines():
        if line.startswith("  "):
            status, _, rest = line.strip().partition("  ")
            out[rest.strip()] = status
    return out


@pytest.fixture
def installation(tmp_path, mqtt_broker, influxdb_factory, unique_name):
    influx = influxdb_factory()
    health_port = free_port()
    site = site_file(tmp_path / "site.toml", mqtt_broker.port, influx.url, unique_name, health_port)
    res = seatmon("collect", "--site", site, "init-db")
    assert res.returncode == 0, res.stderr
    collector = Collector(site, health_port)
    yield site, influx, collector
    collector.stop()


def test_selfcheck_passes_on_a_working_installation_and_leaves_no_test_point(installation):
    site, influx, _ = installation
    res = seatmon("selfcheck", "--site", site, "--timeout", "30")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "Traceback" not in out + res.stderr
    checks = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(checks) == 6 and all(line.startswith("  ok") for line in checks), out
    assert "test event published and read back from InfluxDB through the collector" in out
    assert "seatmon selfcheck: all checks passed" in out
    # The test point was deleted: the reports never see it.
    db = site.read_text().split('database = "')[1].split('"')[0]
    rows = InfluxV1(influx.url, db).query("SELECT count(boot) FROM selftest")
    assert not rows[0].get("series"), rows
    # A second run publishes a new event (a higher seq), which the collector stores again.
    res = seatmon("selfcheck", "--site", site, "--timeout", "30")
    assert res.returncode == 0, res.stdout


def test_selfcheck_with_influxdb_down_names_each_failure_and_its_fix(installation):
    site, influx, _ = installation
    influx.stop()
    res = seatmon("selfcheck", "--site", site, "--timeout", "5")
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    assert "Traceback" not in out + res.stderr
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert any(f"InfluxDB {influx.url}: " in f and "unreachable" in f and "-> start InfluxDB" in f for f in fails), out
    assert any("database" in f and "not tried" in f for f in fails), out
    # (the collector notices only when it next writes: its health line may still say ok)
    assert any("test event" in f and "not tried" in f for f in fails), out
    assert f"  FAIL  InfluxDB {influx.url}: unreachable" in out, out
    assert [line for line in out.splitlines() if line.startswith("  ok")][0].startswith("  ok    broker"), out


def test_selfcheck_with_the_broker_down(tmp_path, influxdb, unique_name):
    closed = free_port()
    site = site_file(tmp_path / "site.toml", closed, influxdb.url, unique_name, free_port())
    res = seatmon("selfcheck", "--site", site, "--timeout", "3")
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr
    out = res.stdout
    assert f"FAIL  broker 127.0.0.1:{closed}: unreachable" in out and "-> start Mosquitto" in out, out
    assert f"database '{unique_name}': missing -> run `seatmon collect --site FILE init-db`" in out, out
    assert "FAIL  collector health" in out and "start the collector" in out, out


def test_selfcheck_without_configuration_or_with_a_bad_site_file(tmp_path):
    res = seatmon("selfcheck", env={"SEATMON_SITE": ""})
    assert res.returncode == 2 and "pass --site FILE" in res.stderr
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\nid = "hq"\ntimezone = "UTC"\n[influx]\nurl = "nope:x"\n')
    res = seatmon("selfcheck", "--site", bad)
    assert res.returncode == 2 and f"{bad}:5: influx.url" in res.stderr and "Traceback" not in res.stderr


def test_the_test_event_is_valid_and_new_each_run():
    from shared import protocol

    a, b = selfcheck.test_event("hq", 1_800_000_000_000), selfcheck.test_event("hq", 1_800_000_001_000)
    assert protocol.decode(protocol.EVENT, protocol.encode(protocol.EVENT, a))["unit"] == "selfcheck"
    assert a["seq"] < b["seq"]


def test_selfcheck_on_the_example_site_with_the_generated_broker_tls_accounts_and_acl(tmp_path, mosquitto_factory,
                                                                                     influxdb, unique_name):
    """The installation as docs/operators.md builds it: deploy/site.example.toml,
    the broker running the mosquitto.conf, passwd and ACL `seatmon broker
    config` wrote (TLS, no anonymous access), the collector logging in as
    `collector` and selfcheck as `technician`, both from the credentials file."""
    import shutil

    from tests.test_tools_broker import _make_tls
    from tools import broker_config as bc
    from tools import inventory as inv

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl (setup.sh installs it)")
    (tmp_path / "tls").mkdir()
    _make_tls(tmp_path / "tls")
    port, health_port = free_port(), free_port()
    text = (ROOT / "deploy/site.example.toml").read_text()
    text = (text.replace("port = 8883", f"port = {port}").replace('host = "mqtt.hq.example"', 'host = "127.0.0.1"')
            .replace('url = "http://127.0.0.1:8086"', f'url = "{influxdb.url}"')
            .replace('database = "seatmon"', f'database = "{unique_name}"')
            .replace('path = "/var/lib/seatmon/collector/spool.db"', f'path = "{tmp_path / "spool.db"}"')
            .replace("port = 9464", f"port = {health_port}"))
    site = tmp_path / "site.toml"
    site.write_text(text)
    out = tmp_path / "broker"
    bc.write(inv.load(site), out, persistence_dir=str(tmp_path / "data") + "/")
    conf = out / "mosquitto.conf"
    if os.geteuid() == 0:  # as servers.Mosquitto does: root would drop to a user who cannot enter tmp dirs
        conf.write_text(conf.read_text() + "user root\n")
    mosquitto_factory(port=port, config_file=conf)
    assert seatmon("collect", "--site", site, "init-db").returncode == 0
    collector = Collector(site, health_port)
    try:
        res = seatmon("selfcheck", "--site", site, "--timeout", "30")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"ok    broker 127.0.0.1:{port} (TLS): connected as technician" in res.stdout
        assert "as technician" in res.stdout.split("test event")[1]
        # a wrong technician password is named, with its fix
        res = seatmon("selfcheck", "--site", site, "--timeout", "10",
                      env={"SEATMON_SELFCHECK_MQTT_PASSWORD": "wrong"})
        assert res.returncode == 1 and "refused the login of technician" in res.stdout, res.stdout
    finally:
        collector.stop()
