"""The host-side local-time table (tools/tztable.py) against zoneinfo, through
the firmware's own lookup (firmware/localtime.py)."""

import json
import random
import subprocess
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from firmware import config, localtime
from tools import tztable

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe", "Asia/Kolkata"]


@pytest.mark.parametrize("zone", ZONES)
def test_table_matches_zoneinfo(zone):
    rows = tztable.build(zone, 2025, 2035)
    tz = ZoneInfo(zone)
    rnd = random.Random(zone)
    lo, hi = rows[0][0], int(datetime(2035, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    instants = [rnd.randrange(lo, hi) for _ in range(2000)]
    for at, _ in rows[1:]:  # right at and just before every change
        instants += [at, at - 1, at + 1]
    for ms in instants:
        want = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(tz)
        local = localtime.to_local_ms(rows, ms)
        assert localtime.local_text(rows, ms) == want.strftime("%Y-%m-%d %H:%M"), (zone, ms)
        assert local - ms == int(want.utcoffset().total_seconds()) * 1000


def test_berlin_changes_are_the_known_instants():
    rows = tztable.build("Europe/Berlin", 2026, 2027)
    assert rows == [[1767225600000, 60], [1774746000000, 120], [1792890000000, 60]]
    assert tztable.build("Asia/Shanghai", 2026, 2030) == [[1767225600000, 480]]


def test_cli_output_is_a_valid_config_value():
    out = subprocess.run([sys.executable, "-m", "tools.tztable", "America/New_York", "--from", "2026", "--to", "2028"],
                         capture_output=True, text=True, check=True).stdout
    tz = json.loads(out)["tz"]
    conf = config.validate({"site": "s", "unit": "u", "seat": "a", "tz": tz})
    assert len(conf["tz"]) == 5


def test_cli_rejects_an_unknown_zone():
    res = subprocess.run([sys.executable, "-m", "tools.tztable", "Mars/Olympus"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Mars/Olympus" in res.stderr
