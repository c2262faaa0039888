"""A fresh USB provisioning is not undone by a stale retained config: every
config the host builds says which version of the site file it came from
(`issued`, the file's modification time), and a unit keeps the config it runs
over a retained one built from an older file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tools import inventory as inv
from virtual.units.unit import VirtualUnit

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"


def test_configs_carry_the_site_files_version(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(EXAMPLE.read_text())
    os.utime(path, (1790000000, 1790000000))
    site = inv.load(path)
    conf = inv.unit_config(site, site.unit("u-0001"))
    assert conf["issued"] == 1790000000000
    assert inv.validate_with_firmware(conf)["issued"] == 1790000000000
    assert inv.unit_config(site, site.unit("u-0001")) == conf  # the same file: the same config, nothing to copy again


def test_a_retained_config_older_than_the_provisioned_one_is_kept_out(tmp_path):
    # Before: at first connect the broker's retained config (pushed months
    # ago) replaced what the technician had just provisioned over USB.
    fresh = {"site": "hq", "unit": "u-0001", "seat": "S-0001", "limit_ms": 12000, "issued": 1790000000000}
    vu = VirtualUnit(str(tmp_path / "u"), "hq", 1, ("127.0.0.1", 1), config=fresh)
    unit = vu.unit
    codes = []
    fault = unit.core.fault
    unit.core.fault = lambda now, code, detail=None: (codes.append(code), fault(now, code, detail))
    try:
        unit.apply_remote_config({"limit_ms": 8000, "issued": 1780000000000})  # the stale retained one
        assert unit.core.conf["limit_ms"] == 12000
        unit.apply_remote_config({"limit_ms": 9000})  # pushed before configs said where they came from
        assert unit.core.conf["limit_ms"] == 12000
        assert codes.count("config_stale") == 2, codes
        with open(tmp_path / "u" / "config.json") as fh:
            assert json.load(fh)["limit_ms"] == 12000
        unit.apply_remote_config({"limit_ms": 15000, "issued": 1790000000000 + 60000})  # a newer push
        assert unit.core.conf["limit_ms"] == 15000
    finally:
        unit.journal.fs.close()
