"""One site file for the host side: the collector, the wallboard and the
reports take broker, InfluxDB, site id and zone from it; their own config
files, options and environment win; errors name the file, line and key."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector import config as collector_config
from seatmon import sitefile
from seatmon.cli import build_parser
from seatmon.wallboard import config as board_config
from tools import inventory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy/site.example.toml"

SITE = """\
[site]
id = "hq"
timezone = "Europe/Berlin"

[broker]
host = "mqtt.hq.example"
port = 8883
ca = "tls/ca.pem"
credentials = "secrets/credentials.json"

[influx]
url = "http://influx.hq.example:8086"
database = "floor"
username = "reader"

[collector.spool]
path = "/srv/spool.db"

[collector.health]
port = 9500

[wallboard]
title = "HQ"
"""


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/credentials.json").write_text(json.dumps({"collector": "c-pw", "wallboard": "w-pw",
                                                                   "technician": "t-pw"}))
    return path


def test_the_collector_takes_broker_influx_site_and_its_own_tables(site):
    cfg = collector_config.load(None, env={}, site=sitefile.load(site, {}))
    m = cfg.mqtt
    assert (m.host, m.port, m.tls, m.site, m.username, m.password) == ("mqtt.hq.example", 8883, True, "hq",
                                                                      "collector", "c-pw")
    assert m.ca_file == str(site.parent / "tls/ca.pem")
    assert (cfg.influx.url, cfg.influx.database, cfg.influx.username) == ("http://influx.hq.example:8086", "floor",
                                                                          "reader")
    assert cfg.spool.path == "/srv/spool.db" and cfg.health.port == 9500 and cfg.source == str(site)


def test_the_collectors_own_file_and_environment_win(site, tmp_path):
    own = tmp_path / "collector.toml"
    own.write_text('[mqtt]\nhost = "127.0.0.1"\npassword = "file-pw"\n[health]\nport = 9600\n')
    cfg = collector_config.load(own, env={"SEATMON_COLLECT_HEALTH_PORT": "9700"}, site=sitefile.load(site, {}))
    assert cfg.mqtt.host == "127.0.0.1" and cfg.mqtt.password == "file-pw" and cfg.health.port == 9700
    assert cfg.mqtt.port == 8883 and cfg.influx.database == "floor" and cfg.spool.path == "/srv/spool.db"
    # the influx secrets shared by every program, from the environment
    cfg = collector_config.load(None, env={}, site=sitefile.load(site, {"SEATMON_INFLUX_PASSWORD": "s3"}))
    assert cfg.influx.password == "s3"


def test_collector_errors_name_the_site_files_line_and_key(site):
    text = SITE.replace("port = 9500", 'port = "many"')
    site.write_text(text)
    with pytest.raises(collector_config.ConfigError,
                       match=rf"{site}:20: key 'collector.health.port': expected an integer"):
        collector_config.load(None, env={}, site=sitefile.load(site, {}))
    site.write_text(text.replace("[collector.health]", "[collector.helth]"))
    with pytest.raises(collector_config.ConfigError, match=rf"{site}:19: unknown section '\[collector.helth\]'"):
        collector_config.load(None, env={}, site=sitefile.load(site, {}))
    site.write_text(SITE.replace("port = 8883", "port = 0"))
    with pytest.raises(sitefile.SiteFileError, match=rf"{site}:7: broker.port: expected 1..65535"):
        sitefile.load(site, {})
    site.write_text(SITE.replace('username = "reader"', 'user = "reader"'))
    with pytest.raises(sitefile.SiteFileError, match=rf"{site}:14: influx.user: unknown key \(did you mean"):
        sitefile.load(site, {})


def test_an_unreadable_credentials_file_is_named_unless_the_password_comes_from_elsewhere(site):
    creds = site.parent / "secrets/credentials.json"
    creds.write_text("not json")
    with pytest.raises(sitefile.SiteFileError, match=rf"{site}:9: broker.credentials: .* is not the JSON"):
        collector_config.load(None, env={}, site=sitefile.load(site, {}))
    cfg = collector_config.load(None, env={"SEATMON_COLLECT_MQTT_PASSWORD": "env-pw"}, site=sitefile.load(site, {}))
    assert cfg.mqtt.password == "env-pw"
    creds.unlink()  # before `seatmon broker config`: no password, no error
    assert collector_config.load(None, env={}, site=sitefile.load(site, {})).mqtt.password == ""


def test_the_wallboard_takes_the_site_and_its_own_file_wins(site, tmp_path):
    cfg = board_config.load(None, environ={}, site=sitefile.load(site, {}))
    assert (cfg.mqtt_host, cfg.mqtt_port, cfg.mqtt_username, cfg.mqtt_password) == ("mqtt.hq.example", 8883,
                                                                                    "wallboard", "w-pw")
    assert cfg.mqtt_tls_ca == str(site.parent / "tls/ca.pem") and cfg.sites == ["hq"] and cfg.title == "HQ"
    assert (cfg.influx_url, cfg.influx_database) == ("http://influx.hq.example:8086", "floor")
    own = tmp_path / "board.toml"
    own.write_text('[board]\ntitle = "Floor 3"\n[mqtt]\nport = 1883\n')
    cfg = board_config.load(own, environ={"SEATMON_MQTT_PASSWORD": "env"}, site=sitefile.load(site, {}))
    assert (cfg.title, cfg.mqtt_port, cfg.mqtt_password, cfg.mqtt_host) == ("Floor 3", 1883, "env", "mqtt.hq.example")
    site.write_text(SITE.replace('title = "HQ"', 'title = "HQ"\nnotice_ms = -1'))
    with pytest.raises(board_config.ConfigError, match=rf"{site}:24: key 'wallboard.notice_ms': expected a positive"):
        board_config.load(None, environ={}, site=sitefile.load(site, {}))


def report_args(*argv, env=None, monkeypatch=None):
    from seatmon import report

    for name in ("SEATMON_TZ", "SEATMON_INFLUX_URL", "SEATMON_INFLUX_DB", "SEATMON_SITE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["report", "answers", "--from", "2026-11-02", *argv])
    scope = report._scope(args)
    return args, scope, report.setting(args, "influx"), report.setting(args, "db")


def test_reports_take_zone_site_and_influxdb_from_the_site_file_after_options_and_environment(site, monkeypatch):
    args, scope, url, db = report_args("--site-file", str(site), monkeypatch=monkeypatch)
    assert (scope.tz, scope.site, url, db) == ("Europe/Berlin", "hq", "http://influx.hq.example:8086", "floor")
    args, scope, url, db = report_args(env={"SEATMON_SITE": str(site), "SEATMON_TZ": "Asia/Tokyo",
                                            "SEATMON_INFLUX_DB": "envdb"}, monkeypatch=monkeypatch)
    assert (scope.tz, url, db) == ("Asia/Tokyo", "http://influx.hq.example:8086", "envdb")
    args, scope, url, db = report_args("--site-file", str(site), "--tz", "UTC", "--site", "b2", "--influx",
                                       "http://127.0.0.1:1", monkeypatch=monkeypatch)
    assert (scope.tz, scope.site, url) == ("UTC", "b2", "http://127.0.0.1:1")


def test_reports_name_a_bad_site_file_before_contacting_anything(tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\nid = "hq"\ntimezone = "Europe/Berlim"\n')
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "report", "answers", "--site-file", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == (f"seatmon report answers: error: {bad}:3: site.timezone: unknown IANA time zone "
                                  "'Europe/Berlim' (did you mean 'Europe/Berlin'?)")


def test_the_example_is_one_file_for_technicians_and_host_side():
    assert inventory.load(EXAMPLE).id == "hq"  # the technicians' commands accept the host tables
    host = sitefile.load(EXAMPLE, {})
    cfg = collector_config.load(None, env={}, site=host)
    assert (cfg.mqtt.site, cfg.mqtt.port, cfg.influx.database, cfg.health.port) == ("hq", 8883, "seatmon", 9464)
    board = board_config.load(None, environ={}, site=host)
    assert board.listen == "127.0.0.1:8080" and board.sites == ["hq"]


def test_the_inventory_checks_the_host_tables_and_reserves_the_selfcheck_unit(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(EXAMPLE.read_text().replace('database = "seatmon"', 'database = 5'))
    with pytest.raises(inventory.InventoryError, match=r"influx.database: expected a string"):
        inventory.load(path)
    path.write_text(EXAMPLE.read_text().replace('id = "u-0003"', 'id = "selfcheck"'))
    with pytest.raises(inventory.InventoryError, match=r"units\[2\].id: 'selfcheck' is reserved"):
        inventory.load(path)


def test_commands_without_any_configuration_say_how(monkeypatch):
    monkeypatch.delenv("SEATMON_SITE", raising=False)
    for argv, says in ((["collect"], "pass --site FILE"), (["board"], "pass --site FILE")):
        res = subprocess.run([sys.executable, "-m", "seatmon.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, env={k: v for k, v in __import__("os").environ.items()
                                              if not k.startswith("SEATMON_")})
        assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_the_board_runs_from_the_site_file_alone(tmp_path, mqtt_broker, influxdb, unique_name):
    """`seatmon board --site FILE` (no board.toml) reaches the rig's broker
    and InfluxDB named in the site file, with the [wallboard] title."""
    import os
    import time
    import urllib.request

    from rig.servers import free_port

    port = free_port()
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nid = "{unique_name}"\ntimezone = "UTC"\n[broker]\nhost = "127.0.0.1"\n'
                    f'port = {mqtt_broker.port}\ntls = false\n[influx]\nurl = "{influxdb.url}"\n'
                    f'database = "{unique_name}"\n[wallboard]\nlisten = "127.0.0.1:{port}"\ntitle = "From the site"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATMON_")}
    env["SEATMON_SITE"] = str(site)
    log = tmp_path / "board.log"
    proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "board"], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    health = json.loads(resp.read())
                    break
            except OSError:  # not up yet, or 503 until the broker is connected
                time.sleep(0.2)
        assert health and health["mqtt"] == "connected", log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert "From the site" in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(20)
