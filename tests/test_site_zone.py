"""The site's time zone travels with the data: site file -> the unit's
config -> its status birth -> the collector -> InfluxDB -> the reports'
default zone. Timestamps are UTC literals; the local days are worked out by
hand in the comments."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from collector import config as collector_config
from collector.influx import InfluxV1
from collector.rollstore import rebuild
from collector.schema import event_point, line, status_point
from collector.service import Collector
from firmware import config as fw_config
from seatmon.cli import main as cli
from shared import protocol as p
from tests.test_collector import write_config
from tools import inventory as inv
from rig.servers import free_port
from virtual.units.harness import UnitThread, wait_until
from virtual.units.unit import VirtualUnit

ROOT = Path(__file__).resolve().parent.parent


def ms(utc: str) -> int:
    return int(datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp() * 1000)


# ---- the wire and the config ----------------------------------------------------------------

BIRTH = {"v": 1, "site": "hq", "unit": "u-0001", "state": "online", "ts": 1763900000000, "boot": 3,
         "fw": "0.1.0", "reason": "power_on", "seat": "A-01"}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC",
                                  "America/Port-au-Prince"])
def test_the_birth_carries_an_iana_zone(zone):
    assert p.decode(p.STATUS, p.encode(p.STATUS, dict(BIRTH, tz=zone)))["tz"] == zone
    assert fw_config.validate({"site": "hq", "unit": "u-1", "seat": "A", "tz_name": zone})["tz_name"] == zone


@pytest.mark.parametrize("zone", ["", "Asia/Shang hai", "x" * 65, "Europe/Berlin\n", "Europe\\Berlin", 8])
def test_a_zone_that_is_not_a_name_is_refused(zone):
    with pytest.raises(p.ProtocolError, match="field 'tz': expected an IANA time-zone name"):
        p.validate(p.STATUS, dict(BIRTH, tz=zone))
    if zone != "":  # "" in the config: no zone known
        with pytest.raises(fw_config.ConfigError, match="config key 'tz_name': expected an IANA time-zone name"):
            fw_config.validate({"site": "hq", "unit": "u-1", "seat": "A", "tz_name": zone})


def test_a_unit_without_a_zone_announces_none():
    assert fw_config.validate({"site": "hq", "unit": "u-1", "seat": "A"})["tz_name"] == ""


def shanghai_site(tmp_path: Path, site_id: str = "hq") -> inv.Site:
    text = (ROOT / "deploy/site.example.toml").read_text()
    text = text.replace('timezone = "Europe/Berlin"', 'timezone = "Asia/Shanghai"')
    text = text.replace('id = "hq"', f'id = "{site_id}"', 1)
    path = tmp_path / "site.toml"
    path.write_text(text)
    return inv.load(path)


def test_provisioning_writes_the_zone_name_into_the_units_config(tmp_path):
    site = shanghai_site(tmp_path)
    conf = inv.validate_with_firmware(inv.unit_config(site, site.unit("u-0001")))
    assert conf["tz_name"] == "Asia/Shanghai" and conf["tz"][0][1] == 480  # UTC+8, no DST


# ---- end to end: the real firmware's birth, stored by the collector, read by a report --------

def test_a_units_zone_reaches_influxdb_and_the_reports_default(tmp_path, mqtt_broker, influxdb, unique_name,
                                                              capsys, monkeypatch):
    site = shanghai_site(tmp_path, unique_name)
    conf = inv.unit_config(site, site.unit("u-0001"))
    InfluxV1(influxdb.url, unique_name).create_database()
    collector = Collector(collector_config.load(
        write_config(tmp_path / "collector.toml", mqtt_broker.port, influxdb.url, unique_name), env={})).start()
    run = None
    try:
        assert collector.subscribed.wait(20)
        vu = VirtualUnit(str(tmp_path / "unit"), unique_name, 1, (mqtt_broker.host, mqtt_broker.port),
                         config=conf, traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0})
        run = UnitThread(vu)
        db = InfluxV1(influxdb.url, unique_name)

        def stored():
            series = db.query('SELECT "tz", "seat" FROM "status"')[0].get("series", [])
            return series[0]["values"] if series else []
        assert wait_until(lambda: stored(), 30), "no status point stored"
    finally:
        if run is not None:
            run.stop()
        collector.stop(flush_timeout=5)
    assert [row[1:] for row in stored()][-1] == ["Asia/Shanghai", "A-01"]
    monkeypatch.delenv("SEATMON_TZ", raising=False)
    code = cli(["report", "units", "--influx", influxdb.url, "--db", unique_name, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["tz"] == "Asia/Shanghai" and "UTC" not in err


# ---- the reports' zone, on hand-built data ---------------------------------------------------

@pytest.fixture
def db(influxdb, unique_name, monkeypatch):
    monkeypatch.delenv("SEATMON_TZ", raising=False)
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    return client


def write(db, lines):
    """Store raw lines and recompute the roll-ups the reports read."""
    db.write_lines(lines)
    rebuild(db, ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))


def birth(site, unit, ts, tz=None):
    msg = {"v": 1, "site": site, "unit": unit, "state": "online", "ts": ms(ts), "boot": 1, "seat": unit[2:]}
    if tz:
        msg["tz"] = tz
    return line(status_point(p.validate(p.STATUS, msg), ms(ts)))


def call(site, seat, ts, seq, answer_ms):
    msg = {"v": 1, "kind": "call", "site": site, "unit": "u-" + seat, "seat": seat, "boot": 1, "seq": seq,
           "ts": ms(ts), "clock": "ntp", "outcome": "answered", "rings": 1, "ring_ms": answer_ms,
           "answer_ms": answer_ms, "within_limit": True, "limit_ms": 10000, "apology_prompted": False}
    return line(event_point(p.validate_event(msg)))


def report(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database])
    out, err = capsys.readouterr()
    return code, out, err


def days(out: str) -> list[tuple[str, int]]:
    return [(g["group"], g["calls"]) for g in json.loads(out)["groups"]]


SHANGHAI_DAY = ("answers", "--by", "day", "--from", "2026-11-10", "--to", "2026-11-11", "--format", "json")


def test_without_tz_the_report_uses_the_zone_the_units_announced(db, capsys):
    # 2026-11-10 23:30Z is 11-11 07:30 in Shanghai (UTC+8); 12:00Z is 11-10 20:00 there.
    write(db, [birth("hq", "u-A", "2026-11-01T00:00:00Z", "Europe/Berlin"),
                    birth("hq", "u-A", "2026-11-09T00:00:00Z", "Asia/Shanghai"),  # the last one counts
                    birth("hq", "u-B", "2026-11-09T00:00:00Z"),  # a unit provisioned without a zone
                    call("hq", "A", "2026-11-10T12:00:00Z", 1, 3000),
                    call("hq", "A", "2026-11-10T23:30:00Z", 2, 4000)])
    code, out, err = report(db, capsys, *SHANGHAI_DAY)
    assert code == 0 and err == "", err
    assert json.loads(out)["tz"] == "Asia/Shanghai"
    assert days(out) == [("2026-11-10", 1), ("2026-11-11", 1)]
    # --tz wins over the data: both calls on the UTC day 11-10.
    code, out, err = report(db, capsys, *SHANGHAI_DAY, "--tz", "UTC")
    assert code == 0 and days(out) == [("2026-11-10", 2)] and json.loads(out)["tz"] == "UTC"


def test_the_environment_wins_over_the_data(db, capsys, monkeypatch):
    write(db, [birth("hq", "u-A", "2026-11-09T00:00:00Z", "Asia/Shanghai"),
                    call("hq", "A", "2026-11-10T23:30:00Z", 1, 4000)])
    monkeypatch.setenv("SEATMON_TZ", "UTC")
    code, out, err = report(db, capsys, *SHANGHAI_DAY)
    assert code == 0 and days(out) == [("2026-11-10", 1)]


def test_a_daily_page_names_the_announced_zone(db, capsys, tmp_path):
    # The page says the announced zone, not UTC.
    write(db, [birth("hq", "u-A", "2026-11-09T00:00:00Z", "Asia/Shanghai"),
                    call("hq", "A", "2026-11-10T23:30:00Z", 1, 4000)])
    out_file = tmp_path / "day.html"
    code, _out, err = report(db, capsys, "daily", "--day", "2026-11-11", "--out", str(out_file))
    assert code == 0, err
    page = out_file.read_text()
    assert "2026-11-11 to 2026-11-11 (Asia/Shanghai); dates and hours in Asia/Shanghai." in page


def test_no_zone_known_anywhere_falls_back_to_utc_and_says_so(db, capsys, tmp_path):
    write(db, [birth("hq", "u-A", "2026-11-09T00:00:00Z"),
                    call("hq", "A", "2026-11-10T23:30:00Z", 1, 4000)])
    code, out, err = report(db, capsys, *SHANGHAI_DAY)
    assert code == 0 and days(out) == [("2026-11-10", 1)] and json.loads(out)["tz"] == "UTC"
    assert err.count("\n") == 1 and "times are in UTC" in err and "--tz" in err
    page = tmp_path / "m.html"
    code, _out, err = report(db, capsys, "monthly", "--month", "2026-11", "--out", str(page))
    assert code == 0 and "times are in UTC" in err
    assert '<p class="warn">2026-11-01 to 2026-11-30 (UTC); dates and hours in UTC: no time zone is known' \
        in page.read_text()


def test_sites_in_different_zones_need_tz_or_site(db, capsys):
    write(db, [birth("east", "u-A", "2026-11-09T00:00:00Z", "Asia/Shanghai"),
                    birth("west", "u-B", "2026-11-09T00:00:00Z", "Europe/Berlin"),
                    call("east", "A", "2026-11-10T23:30:00Z", 1, 4000),
                    call("west", "B", "2026-11-10T23:30:00Z", 1, 4000)])
    code, out, err = report(db, capsys, *SHANGHAI_DAY)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "different time zones (east Asia/Shanghai, west Europe/Berlin)" in err and "--tz" in err
    # One site: its own zone. Berlin is UTC+1 in November: 23:30Z is 11-11 00:30.
    code, out, err = report(db, capsys, *SHANGHAI_DAY, "--site", "west")
    assert code == 0 and json.loads(out)["tz"] == "Europe/Berlin" and days(out) == [("2026-11-11", 1)]
    code, out, err = report(db, capsys, *SHANGHAI_DAY, "--tz", "UTC")
    assert code == 0 and days(out) == [("2026-11-10", 2)]


def test_a_zone_this_host_does_not_know_is_a_clear_error(db, capsys):
    write(db, [birth("hq", "u-A", "2026-11-09T00:00:00Z", "Mars/Olympus_Mons"),
                    call("hq", "A", "2026-11-10T23:30:00Z", 1, 4000)])
    code, out, err = report(db, capsys, *SHANGHAI_DAY)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "'Mars/Olympus_Mons'" in err and "--tz" in err


def test_dates_are_still_checked_before_influxdb_without_a_zone(capsys, monkeypatch):
    monkeypatch.delenv("SEATMON_TZ", raising=False)
    code = cli(["report", "daily", "--day", "2026-11-31", "--influx", f"http://127.0.0.1:{free_port()}"])
    _out, err = capsys.readouterr()
    assert code == 2 and "--day" in err and "InfluxDB" not in err


# ---- the virtual units announce the zone they run in -----------------------------------------

def test_a_virtual_unit_keeps_its_shifts_in_its_zone_and_announces_it(tmp_path):
    # No broker at this address: only the config and the birth are looked at.
    vu = VirtualUnit(str(tmp_path / "u"), "sim", 1, ("127.0.0.1", 9), speed=60.0, seed=1,
                     traffic={"shift_end_ms": 3000000}, tz="Asia/Shanghai")
    try:
        conf = json.loads((tmp_path / "u" / "config.json").read_text())
        end = (vu.start_ms + vu.traffic.shift_end_ms) // 1000
        assert conf["shifts"]["mon"][-1][2] == time.strftime("%H:%M", time.gmtime(end + 8 * 3600))  # UTC+8
        assert conf["tz_name"] == "Asia/Shanghai" and conf["tz"][-1][1] == 480
        assert json.loads(vu.unit.birth_payload())["tz"] == "Asia/Shanghai"
    finally:
        vu.unit.journal.fs.close()


def test_virtual_units_run_in_utc_unless_told_and_say_so(tmp_path):
    vu = VirtualUnit(str(tmp_path / "u"), "sim", 1, ("127.0.0.1", 9))
    try:
        assert json.loads(vu.unit.birth_payload())["tz"] == "UTC"
    finally:
        vu.unit.journal.fs.close()
