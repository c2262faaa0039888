"""Provisioning checks the board it talks to: its real chip (os.uname()
.machine, "... with ESP32S3") against the unit's hardware revision, and its
machine.unique_id() against the site file's `uid` per unit, so two units
never share one board (nor one board two identities)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import flash
from tools import inventory as inv
from rig.servers import free_port
from virtual.board import UnixBoard
from virtual.labsite import loopback_site

BOARD_UID = "24a160c0ffee"  # virtual.board.UnixBoard's default


def with_uids(site_path: Path, uids: dict[str, str]) -> inv.Site:
    text = site_path.read_text()
    for unit, uid in uids.items():
        text = text.replace(f'id = "{unit}"\n', f'id = "{unit}"\nuid = "{uid}"\n', 1)
    site_path.write_text(text)
    return inv.load(site_path)


def test_a_uid_given_to_two_units_is_refused_naming_both(tmp_path):
    site = loopback_site(tmp_path, free_port())
    original = site.path.read_text()
    with pytest.raises(inv.InventoryError, match=r"units\[1\]\.uid: board 24a160c0ffee is already unit 'u-0001'"):
        with_uids(site.path, {"u-0001": BOARD_UID, "u-0002": BOARD_UID})
    site.path.write_text(original)
    with pytest.raises(inv.InventoryError, match="lower-case hex"):
        with_uids(site.path, {"u-0003": "24:A1:60"})


def test_provisioning_checks_the_boards_chip_and_uid(tmp_path):
    # Before: a board of another chip, or another unit's board, was
    # provisioned as asked: an S3 with rev-a's ESP32 pins passed its self-test
    # (GPIO 32-35 exist there too), and a board swap went unnoticed.
    site = loopback_site(tmp_path, free_port())
    board = UnixBoard(tmp_path / "s3.img", chip="esp32-s3").start()
    try:
        board.wait_console(">>> ", 30)
        wrong = flash.provision(site, site.unit("u-0001"), board.port, timeout=60, show_progress=False)
        assert "the board is an esp32-s3, hardware revision rev-a is an esp32" in wrong.error, wrong.error
        assert wrong.copied == 0
        site = with_uids(site.path, {"u-0001": "0123456789ab"})
        taken = flash.provision(site, site.unit("u-0003"), board.port, timeout=60, show_progress=False)
        assert taken.ok, taken.error or taken.selftest.output  # rev-b is an S3: this board is u-0003's
        site = with_uids(site.path, {"u-0002": BOARD_UID})
        other = flash.provision(site, site.unit("u-0003"), board.port, timeout=60, show_progress=False)
        assert f"this board (uid {BOARD_UID}) is unit u-0002 in the site file" in other.error, other.error
    finally:
        board.stop()
