"""The provisioned unit on the virtual board (the real MicroPython unix
port) and its NTP servers: an answer with a zero transmit time never sets
its clock, so with TLS it waits, unconnected, for a real answer; then it
connects with the true time."""

from __future__ import annotations

import json
import time

import pytest

from tests.test_unit_on_board import rig, wait_for, watch_status  # noqa: F401  (rig: fixture)
from tools import flash
from virtual.board import UnixBoard


@pytest.mark.slow
def test_zero_answers_never_set_the_clock_and_a_good_one_does(rig, tmp_path):  # noqa: F811
    site = rig["site"]
    unit = site.unit("u-0001")
    board = UnixBoard(tmp_path / "u-0001.img", chip="esp32", firmware="ESP32_GENERIC-SPIRAM").start()  # rev-a's image
    board.ntp_server.mode = "zero"  # every server the site file names answers 2036 (a zero transmit time)
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    observer, statuses = watch_status(rig["broker"].port, tmp_path / "tls" / "ca.pem", creds["collector"], site.id)
    births = lambda: [s for s in statuses if s.get("unit") == "u-0001" and s["state"] == "online"]  # noqa: E731
    try:
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.ok, result.selftest and result.selftest.output
        # One round over the site's three servers (each reaches the fake one), then a retry in 60 s.
        wait_for(lambda: board.ntp_server.requests >= 3, 30, "the unit asking its NTP servers")
        time.sleep(2)
        assert board.rtc_ms is None and not births()  # no clock: TLS cannot check the broker's certificate
        board.ntp_server.mode = "good"
        birth = wait_for(lambda: births() and births()[0], 90, "the birth once NTP answers")
        assert abs(board.rtc_ms - time.time() * 1000) < 5000
        assert abs(birth["ts"] - time.time() * 1000) < 60000
    finally:
        observer.loop_stop()
        observer.disconnect()
        board.stop()
