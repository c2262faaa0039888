"""The unit's time-zone table ends (provisioning builds it for TZ_YEARS
years): the config says where, and the unit warns in its heartbeats before
it runs out, so the host refreshes it with `seatmon unit config push`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from firmware.shell import TZ_WARN_DAYS
from shared import protocol
from tools import inventory as inv
from virtual.units.unit import VirtualUnit, default_config

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
T0 = 1795392000000  # 2026-11-23T00:00Z
DAY = 86400000


def test_provisioning_says_where_the_table_ends():
    site = inv.load(EXAMPLE)
    conf = inv.unit_config(site, site.unit("u-0001"))
    year = dt.datetime.now(dt.timezone.utc).year
    assert conf["tz_until"] == int(dt.datetime(year + inv.TZ_YEARS, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert conf["tz"][0][0] == int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert inv.validate_with_firmware(conf)["tz_until"] == conf["tz_until"]


@pytest.mark.parametrize("days,expected", [(TZ_WARN_DAYS + 80, None), (TZ_WARN_DAYS - 1, TZ_WARN_DAYS - 1),
                                           (30, 30), (-5, 0)])
def test_heartbeat_warns_before_the_table_runs_out(tmp_path, days, expected):
    conf = dict(default_config("hq", 1), tz_until=T0 + days * DAY + 3600000)
    vu = VirtualUnit(str(tmp_path / "u"), "hq", 1, ("127.0.0.1", 1), config=conf)
    unit = vu.unit
    try:
        now = unit.board.ticks_ms()
        unit.core.set_clock(now, T0, "ntp")
        hb = json.loads(unit.heartbeat_payload())
        protocol.validate(protocol.HEARTBEAT, hb)
        assert hb.get("tz_days_left") == expected
    finally:
        unit.journal.fs.close()


def test_no_warning_without_a_clock_or_an_end(tmp_path):
    vu = VirtualUnit(str(tmp_path / "u"), "hq", 1, ("127.0.0.1", 1), config=default_config("hq", 1))
    try:
        assert "tz_days_left" not in json.loads(vu.unit.heartbeat_payload())
    finally:
        vu.unit.journal.fs.close()
