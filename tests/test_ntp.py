"""The unit's NTP client (firmware/shell.py `_ntp_task`, firmware/sntp.py)
against real UDP servers on loopback (virtual/ntpserver.py) that answer
late, wrong, zero or with a Kiss-o'-Death: the sampler never waits on the
network, and only answers that agree set the clock."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from virtual.ntpserver import NtpServer
from virtual.units.unit import VirtualUnit

WORLD_MS = 1795392000000  # 2026-11-23T00:00Z: the simulated world's time when the test starts


@pytest.fixture
def world():
    return (time.time(), WORLD_MS)


def make_unit(tmp_path, world, servers):
    vu = VirtualUnit(str(tmp_path / "unit"), "hq", 1, ("127.0.0.1", 1), world_epoch=world,
                     traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0},
                     settings={"ntp_servers": [s.address for s in servers], "ntp_retry_ms": 300})
    vu.board.socket = socket  # the host's real UDP stack, to reach the servers on loopback
    return vu


def run_ntp(vu, seconds: float) -> float:
    """Run the sampler and the NTP task for `seconds`; returns the worst delay
    (ms) of a 10 ms timer meanwhile: what a blocking call would show."""
    unit = vu.unit
    unit._wifi = True

    async def main():
        tasks = [asyncio.create_task(unit._sampler()), asyncio.create_task(unit._ntp_task())]
        worst = 0.0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, (time.monotonic() - t) * 1000 - 10)
        for task in tasks:
            task.cancel()
        return worst

    try:
        return asyncio.run(main())
    finally:
        unit.journal.fs.close()


def servers(clock, *modes):
    return [NtpServer(now_ms=clock.true_ms, mode=m).start() for m in modes]


def close(all_servers):
    for s in all_servers:
        s.close()


def test_zero_and_kiss_of_death_answers_never_set_the_clock(tmp_path, world):
    vu = make_unit(tmp_path, world, [])
    srv = servers(vu.clock, "zero", "kod")
    vu.unit.s["ntp_servers"] = [s.address for s in srv]
    try:
        run_ntp(vu, 2.0)
    finally:
        close(srv)
    assert all(s.requests >= 1 for s in srv) and sum(s.requests for s in srv) >= 3
    assert not vu.unit.core.synced() and vu.unit.ntp_syncs == 0
    assert "zero transmit time" in vu.unit.ntp_error or "kiss-o'-death" in vu.unit.ntp_error


def test_a_late_server_never_stalls_the_sampler_and_agreeing_servers_set_the_clock(tmp_path, world):
    vu = make_unit(tmp_path, world, [])
    srv = servers(vu.clock, "late", "good", "good")
    vu.unit.s["ntp_servers"] = [s.address for s in srv]
    try:
        worst = run_ntp(vu, 4.0)
    finally:
        close(srv)
    core = vu.unit.core
    assert core.synced(), vu.unit.ntp_error
    assert abs(core.wall(vu.clock.ticks_ms()) - vu.clock.true_ms()) < 200
    assert abs(vu.clock.time() * 1000 - vu.clock.true_ms()) < 200  # the RTC was set too
    assert worst < 150, f"the event loop waited {worst:.0f} ms"  # the late server's 2 s wait ran alongside


def test_a_wrong_server_is_outvoted_and_never_moves_a_synced_clock(tmp_path, world):
    vu = make_unit(tmp_path, world, [])
    srv = servers(vu.clock, "wrong", "good", "good")
    vu.unit.s["ntp_servers"] = [s.address for s in srv]
    try:
        run_ntp(vu, 3.0)
        core = vu.unit.core
        assert core.synced()
        assert abs(core.wall(vu.clock.ticks_ms()) - vu.clock.true_ms()) < 200  # not ten years on
        syncs = vu.unit.ntp_syncs
        vu.unit.s["ntp_ms"] = 300  # re-sync often: the wrong server gets its turns
        run_ntp(vu, 3.0)
        assert srv[0].requests >= 3 and vu.unit.ntp_syncs > syncs
        assert abs(core.wall(vu.clock.ticks_ms()) - vu.clock.true_ms()) < 200
        assert core.jumped is None
        # Two servers agreeing on the wrong time do move the clock, but the
        # shift logic waits for a later answer to agree (core.jumped).
        srv[1].mode = "wrong"
        srv[2].mode = "silent"
        vu.unit.s["ntp_ms"] = 60000
        run_ntp(vu, 1.5)
    finally:
        close(srv)
    assert core.wall(vu.clock.ticks_ms()) - vu.clock.true_ms() > 300 * 86400000
    assert core.jumped is not None


def test_the_site_file_names_the_ntp_servers_and_provisioning_writes_them(tmp_path):
    from pathlib import Path

    from tools import inventory as inv

    example = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
    site = inv.load(example)
    board = inv.board_config(site, site.unit("u-0001"))
    assert board["ntp_servers"] == ["ntp1.hq.example", "ntp2.hq.example", "pool.ntp.org"]
    bad = tmp_path / "site.toml"
    bad.write_text(example.read_text().replace('ntp_servers = ["ntp1.hq.example"', 'ntp_servers = [123', 1))
    with pytest.raises(inv.InventoryError, match=r"site\.ntp_servers.*a list of at most 8 server names"):
        inv.load(bad)
