"""Units that must not die silently: a link task that ends on a flash error,
main.py failing before the shell runs, a leftover provisioning flag, safe
mode that outlives the crash loop. The board cases run on the virtual board
(the real MicroPython unix port, its watchdog behaving as an ESP32's)."""

from __future__ import annotations

import json
import time

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
            failed.append(unit.link.connects)
            raise OSError(5, "EIO")  # a flash read error, once
        return real_entries(after, limit)

    journal.entries = entries
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: failed, 60), (journal.synced_seq, unit.link.connects, unit.link.last_error)
        assert wait_until(lambda: journal.synced_seq >= 6 and ack.mark.get("u-0001", 0) >= 6, 60), \
            (journal.synced_seq, ack.mark, unit.link.last_error)
    finally:
        run.stop()
        ack.close()
    assert run.error is None
    assert unit.link.connects > failed[0]  # the session was restarted, with its tasks
    with ack.lock:
        faults = [e for e in ack.stored.values() if e["kind"] == "fault"]
    assert any(f["code"] == "link_task" and "EIO" in f["detail"] for f in faults), faults
