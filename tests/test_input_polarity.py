"""Input polarity per hardware revision: the site file's `active_low` is
checked by the inventory, written to board.json by provisioning, and the unit
reads each input with it (an opto or open-collector sensor pulls its pin low
when active; other sensors drive it high)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware import shell
from shared import boardfiles
from tools import inventory as inv
from virtual.units.fakes import Machine, Network, NtpNet, SimClock

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
REV_A = 'board = "esp32"\nfirmware = "ESP32_GENERIC-SPIRAM"\nactive_low = ["ring", "hook"]\n'
DISC_PIN = 27  # a free GPIO on the example's rev-a


def site_with(tmp_path, rev_a_extra: str = "", active_low: str | None = '["ring", "hook"]'):
    """The example site; rev-a gets `active_low` (None: the key left out) and
    a disconnect opto on DISC_PIN."""
    text = EXAMPLE.read_text()
    assert REV_A in text
    rev = 'board = "esp32"\nfirmware = "ESP32_GENERIC-SPIRAM"\n' + (f"active_low = {active_low}\n" if active_low is not None else "") + rev_a_extra
    text = text.replace(REV_A, rev, 1).replace("relay = 26 }", f"relay = 26, disconnect = {DISC_PIN} }}", 1)
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path, text


def test_every_revision_writes_its_polarity_to_board_json(tmp_path):
    path, _ = site_with(tmp_path, active_low='["ring", "hook", "power", "disconnect"]')
    site = inv.load(path)
    assert inv.board_config(site, site.unit("u-0001"))["active_low"] == ["ring", "hook", "power", "disconnect"]
    # A revision that says nothing gets the default written out, not left to the firmware.
    assert inv.board_config(site, site.unit("u-0003"))["active_low"] == ["ring", "hook"]
    path, _ = site_with(tmp_path, active_low="[]")
    assert inv.board_config(inv.load(path), inv.load(path).unit("u-0001"))["active_low"] == []


@pytest.mark.parametrize("value,words", [
    ('["ring", "hok"]', "'hok': not an input (expected ring, hook, power, disconnect) (did you mean 'hook'?)"),
    ('["ring", "button"]', "'button': the button is always a contact to ground"),
    ('"ring"', "expected a list of input names"),
])
def test_a_bad_polarity_is_refused_naming_key_and_line(tmp_path, value, words):
    path, text = site_with(tmp_path, active_low=value)
    with pytest.raises(inv.InventoryError) as err:
        inv.load(path)
    msg = str(err.value)
    assert "hardware.rev-a.active_low" in msg and words in msg, msg
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("active_low = " + value))
    assert f":{line}:" in msg or f"line {line}" in msg, msg


def test_an_adc_power_sense_with_a_polarity_is_refused(tmp_path):
    path, _ = site_with(tmp_path, active_low='["ring", "hook", "power"]')
    text = path.read_text().replace('id = "u-0001"\nseat = "A-01"\n', 'id = "u-0001"\nseat = "A-01"\npower_sense = "adc"\n', 1)
    path.write_text(text)
    with pytest.raises(inv.InventoryError, match="an ADC power sense has no polarity"):
        inv.load(path)


class Levels:
    """Electrical levels per GPIO, set by the test."""

    def __init__(self):
        self.by_name: dict[str, int] = {}

    def level(self, name, tick):
        return self.by_name.get(name, 1)

    def adc(self, tick):
        return 0


def boot_provisioned(tmp_path, site_path, unit_id="u-0001"):
    site = inv.load(site_path)
    unit_conf = site.unit(unit_id)
    root = tmp_path / "flash"
    root.mkdir()
    board_json = inv.board_config(site, unit_conf)
    (root / boardfiles.BOARD).write_text(json.dumps(board_json))
    conf = inv.unit_config(site, unit_conf)
    conf["disconnect_supervision"] = True
    (root / boardfiles.CONFIG).write_text(json.dumps(conf))
    clock = SimClock(1.0)
    levels = Levels()
    names = {gpio: role for role, gpio in board_json["pins"].items() if gpio is not None}
    machine = Machine(clock, levels, names)
    network = Network()
    board, unit = shell.from_files(str(root), machine=machine, network=network, socket=NtpNet(clock, network),
                                   clock=clock)
    return board, unit, levels


def read(board, levels, **pins):
    levels.by_name.update(pins)
    inputs = dict.fromkeys(("ring", "hook", "power", "button", "disc"))
    board.read_inputs(inputs, 0)
    return inputs


@pytest.mark.parametrize("polarity", ["active_low", "active_high"])
def test_the_unit_reads_disconnect_and_power_with_the_revisions_polarity(tmp_path, polarity):
    # Before: board.json never carried active_low, so power and disconnect
    # were always read active-high: a disconnect opto wired like the ring and
    # hook optos (idle = pin high) read "line dropped" all the time, and every
    # call became "agent hung up first".
    low = '["ring", "hook", "power", "disconnect"]' if polarity == "active_low" else '["ring", "hook"]'
    path, _ = site_with(tmp_path, active_low=low)
    board, unit, levels = boot_provisioned(tmp_path, path)
    try:
        active, idle = (0, 1) if polarity == "active_low" else (1, 0)
        got = read(board, levels, ring=1, hook=1, disconnect=idle, power=idle)
        assert (got["ring"], got["hook"], got["disc"], got["power"]) == (False, False, False, False)
        got = read(board, levels, disconnect=active, power=active)
        assert (got["disc"], got["power"]) == (True, True)
        got = read(board, levels, ring=0, hook=0)  # the ring and hook optos are active-low in both
        assert (got["ring"], got["hook"]) == (True, True)
    finally:
        unit.journal.fs.close()
