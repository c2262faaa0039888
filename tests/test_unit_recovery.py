"""Units that must not die silently: a link task that ends on a flash error,
main.py failing before the shell runs, a leftover provisioning flag, safe
mode that outlives the crash loop. The board cases run on the virtual board
(the real MicroPython unix port, its watchdog behaving as an ESP32's)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from virtual.units.harness import Acknowledger, UnitThread, wait_until
from virtual.units.unit import VirtualUnit


def test_a_sender_ending_on_a_flash_error_restarts_with_the_session(tmp_path, mqtt_broker, unique_name):
    # Before: the sender task ended on the OSError and the session stayed up
    # (heartbeats and pings went on), so nothing more was sent until the
    # connection happened to drop: hours at a quiet seat.
    site = unique_name
    ack = Acknowledger(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-ack")
    vu = VirtualUnit(str(tmp_path / "u"), site, 1, (mqtt_broker.host, mqtt_broker.port), speed=30.0, seed=4,
                     traffic={"calls_per_hour": 240.0, "outgoing_per_hour": 20.0},
                     link={"keepalive": 5, "backoff_max_ms": 1000, "heartbeat_ms": 60000})
    unit = vu.unit
    journal = unit.journal
    real_entries = journal.entries
    failed = []

    def entries(after=None, limit=16):
        if not failed and journal.synced_seq >= 2:
            failed.append((unit.link.connects, journal.synced_seq))
            raise OSError(5, "EIO")  # a flash read error, once
        return real_entries(after, limit)

    journal.entries = entries
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: failed, 60), (journal.synced_seq, unit.link.connects, unit.link.last_error)
        # Everything journaled when the sender died gets delivered and
        # acknowledged, and so does the fault that says what happened.
        def reported():
            with ack.lock:
                return any(e["kind"] == "fault" and e["code"] == "link_task" for e in ack.stored.values())

        assert wait_until(lambda: ack.mark.get("u-0001", 0) >= failed[0][1] and reported(), 60), \
            (failed, journal.synced_seq, ack.mark, unit.link.last_error)
    finally:
        run.stop()
        ack.close()
    assert run.error is None
    assert unit.link.connects > failed[0][0]  # the session was restarted, with its tasks
    with ack.lock:
        faults = [e for e in ack.stored.values() if e["kind"] == "fault"]
    assert any(f["code"] == "link_task" and "EIO" in f["detail"] for f in faults), faults


# ---- on the virtual board ----------------------------------------------------------------

import pytest  # noqa: E402
import serial  # noqa: E402

from tools import flash  # noqa: E402
from rig.servers import free_port  # noqa: E402
from virtual.board import HARD_RESET, UnixBoard  # noqa: E402
from virtual.labsite import loopback_site  # noqa: E402

SELFTEST = "SEATMON SELFTEST "


@pytest.fixture(scope="module")
def unit_board(tmp_path_factory):
    """rev-a's u-0001 provisioned on a virtual ESP32 (no broker: the unit
    runs, sensing and journaling, and keeps trying to connect)."""
    tmp = tmp_path_factory.mktemp("recovery")
    site = loopback_site(tmp, free_port())
    unit = site.unit("u-0001")
    board = UnixBoard(tmp / "u-0001.img", chip="esp32", firmware="ESP32_GENERIC-SPIRAM").start()  # rev-a's image
    try:
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=90, show_progress=False)
        assert result.ok, result.selftest and result.selftest.output
        files = {f.path: f.data for f in flash.board_files(site, unit, flash.load_credentials(site))}
        yield board, json.loads(files["/board.json"]), site, unit
    finally:
        board.stop()


def write_and_reset(board: UnixBoard, files: dict[str, str]) -> int:
    """Stop the running unit (Ctrl-C: its watchdog runs on), write files and
    hard-reset from the raw REPL. Returns the console offset before."""
    mark = len(board.console)
    code = "".join(f"f = open({path!r}, 'w')\nf.write({text!r})\nf.close()\n" for path, text in files.items())
    ser = serial.Serial(board.port, 115200, timeout=0.1)
    try:
        flash._raw_reset(ser, code + "import machine\nmachine.reset()", time.monotonic() + 30)
    finally:
        ser.close()
    return mark


def test_a_leftover_provisioning_flag_holds_the_board_for_its_time_only(unit_board):
    # Before: main.py saw the flag and returned to the REPL, no watchdog, forever.
    board, _, _, _ = unit_board
    mark = write_and_reset(board, {"/provisioning": "3"})
    at = board.wait_console("provisioning not finished: waiting 3 s", 30, start=mark)
    at = board.wait_console("removed, starting the unit", 15, start=at)
    board.wait_console(SELFTEST + "PASS", 60, start=at)
    assert wait_until(lambda: board.wdt_ms == 8000, 15), board.wdt_ms


def test_a_failure_before_the_shell_runs_resets_and_the_next_good_boot_reports_it(unit_board):
    # Before: the FileError went up to the REPL; no watchdog, no reset, forever.
    board, board_json, _, _ = unit_board
    boots = len(board.boots)
    mark = write_and_reset(board, {"/board.json": "{"})
    at = board.wait_console(SELFTEST + "FAIL FileError('board.json", 60, start=mark)
    # main.py armed the watchdog, recorded the cause and reset: again and again, by itself.
    board.wait_console(SELFTEST + "FAIL FileError('board.json", 60, start=at)
    assert board.boots[boots:].count(HARD_RESET) >= 2, board.boots[boots:]
    # The technician puts a good board.json back (the provisioning tool's way
    # in: the hold flag stops the loop), and the unit starts and says why the
    # last boot ended.
    for attempt in range(3):
        try:
            flash.hold_board(board.port, 30)
            break
        except flash.FlashError:  # the Ctrl-C landed between two boots
            if attempt == 2:
                raise
    (Path(board.image).parent / "board.json").write_text(json.dumps(board_json))
    flash.mpremote(board.port, "fs", "cp", str(Path(board.image).parent / "board.json"), ":/board.json")
    test = flash.reset_and_watch(board.port, 60)
    assert test.ok, test.output
    assert "last_crash=FileError('board.json" in test.line, test.line


def test_safe_mode_ends_once_the_unit_has_been_stable(unit_board):
    # Before: safe mode (configs from the host ignored) lasted until the next
    # power cycle, though the crash loop that caused it was long over.
    board, board_json, _, _ = unit_board
    quick = dict(board_json, stable_ms=3000)
    mark = write_and_reset(board, {"/board.json": json.dumps(quick),
                                   "/bootlog.json": json.dumps({"quick": 3, "power": 0, "reason": "watchdog"})})
    at = board.wait_console(SELFTEST + "FAIL", 60, start=mark)
    assert b"safe_mode=3 restarts" in board.console[mark:at + 300]
    board.wait_console(SELFTEST + "PASS", 60, start=at)
    assert board.boots[-1] == HARD_RESET
