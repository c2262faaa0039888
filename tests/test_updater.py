"""The running unit's side of an update (firmware/updater.py) in CPython, on
the files `seatmon flash provision` writes: an offer and its chunks go into
a slot, the slot becomes the trial, the boot selector runs it, the unit
confirms; refusals answer on update_ack, journal an `update` event and keep
nothing of firmware/ota.py."""

from __future__ import annotations

import json
import sys

from firmware import otaboot, otastate, updater
from shared import otaimage, protocol
from tests.test_boardfiles import MONDAY_9_UTC, boot, make_site, write_files
from tools import broker_config as bc
from tools import fleet, flash
from virtual.units.fakes import SimClock as Clock


def _unit(tmp_path, unit_id="u-0001"):
    site, creds = make_site(tmp_path)
    conf = site.unit(unit_id)
    root = tmp_path / "flash"
    write_files(flash.board_files(site, conf, creds), root)
    chip = site.data["hardware"][conf["hardware"]]["board"]
    _, unit, _ = boot(root, chip, Clock(MONDAY_9_UTC))
    return site, creds, unit, root


def _journaled(unit, kind="update"):
    """The events the core hands the shell to journal, once it has a clock."""
    unit.core.set_clock(unit.board.ticks_ms(), MONDAY_9_UTC)
    events = unit.core.step(unit.board.ticks_ms(), dict.fromkeys(("ring", "hook", "button", "disc"), False)
                            | {"power": None})
    return [e for e in events if e["kind"] == kind]


def test_an_offer_is_staged_as_the_next_boots_trial_and_confirmed(tmp_path):
    site, creds, unit, root = _unit(tmp_path)
    files = fleet.image_files()
    offer, stream = otaimage.build(files, "9.0.0", "esp32", "rev-a", creds[bc.OTA_KEY].encode())
    fields = otaimage.fields(offer)
    up = unit.updater
    up.on_message(offer)
    assert up.answer["next"] == 0
    for chunk in otaimage.chunks(fields, stream):
        up.on_message(chunk)
    assert up.answer == {"v": 1, "site": site.id, "unit": "u-0001", "image": fields["sha256"][:8],
                         "next": len(otaimage.chunks(fields, stream)), "of": len(otaimage.chunks(fields, stream)),
                         "staged": True}
    protocol.decode(protocol.UPDATE_ACK, protocol.encode(protocol.UPDATE_ACK, up.answer))
    for path, data in files:
        assert (root / "ota" / "a" / path).read_bytes() == data
    state = json.loads((root / otastate.STATE).read_text())
    assert (state["trial"], state["trial_version"], state["tried"]) == ("a", "9.0.0", False)
    assert up.staged_at is not None  # resets into it once the seat is idle
    # The next boot runs it on trial, first on sys.path.
    saved_path, saved_modules = list(sys.path), dict(sys.modules)
    try:
        assert otaboot.select(str(root) + "/") == "a"
        assert sys.path[0] == str(root / "ota" / "a")
        assert "firmware.shell" not in sys.modules  # the slot's packages load from here on
    finally:  # this process goes on with the modules it had
        sys.path[:] = saved_path
        sys.modules.clear()
        sys.modules.update(saved_modules)
    assert otastate.in_trial(json.loads((root / otastate.STATE).read_text()))
    steps = [e["step"] for e in _journaled(unit)]
    assert steps == ["receiving", "staged"]


def test_refusals_answer_journal_once_and_release_the_receiver_module(tmp_path):
    site, creds, unit, root = _unit(tmp_path)
    up = unit.updater
    files = [("firmware/x.mpy", b"x" * 10)]
    forged, _ = otaimage.build(files, "9.0.0", "esp32", "rev-a", b"a-stolen-broker-account-key")
    up.on_message(forged)
    up.on_message(forged)  # the retained offer again, at the next connection
    assert "signature" in up.answer["error"]
    assert "firmware.ota" not in sys.modules and up.ota is None
    other_chip, _ = otaimage.build(files, "9.0.0", "esp32-s3", "rev-a", creds[bc.OTA_KEY].encode())
    up.on_message(other_chip)
    assert "chip esp32-s3" in up.answer["error"]
    older, _ = otaimage.build(files, "0.0.9", "esp32", "rev-a", creds[bc.OTA_KEY].encode())
    up.on_message(older)
    assert "not newer" in up.answer["error"]
    refused = [e for e in _journaled(unit) if e["step"] == "refused"]
    assert len(refused) == 3, refused
    assert not (root / otastate.STATE).exists() and not (root / "ota").exists()  # nothing written


def test_the_reset_into_staged_code_waits_until_the_host_has_heard_of_it(tmp_path):
    site, creds, unit, root = _unit(tmp_path)
    offer, stream = otaimage.build(fleet.image_files(), "9.0.0", "esp32", "rev-a", creds[bc.OTA_KEY].encode())
    fields = otaimage.fields(offer)
    up = unit.updater
    up.on_message(offer)
    up.answer = None  # the link sent it
    for chunk in otaimage.chunks(fields, stream):
        up.on_message(chunk)
    now = up.staged_at
    assert up.answer["staged"] and not up.switch_due(now)  # the staged answer is not out yet
    up.answer = None
    assert unit.core.holding() and not up.switch_due(now)  # the staged event is not journaled yet
    for ev in _journaled(unit):
        unit.journal.append(ev)
    assert not unit.core.holding() and not up.switch_due(now)  # ... nor acknowledged
    unit.journal.ack(unit.journal.next_seq - 1, unit.journal.inc)
    assert up.switch_due(now)
    unit.core.state = "ringing"
    assert not up.switch_due(now + 60_000)  # never in the middle of a call
    unit.core.state = "idle"
    unit.journal.ack_mark = 0  # a host that never answers: the reset comes anyway, after RESET_WAIT_MS
    assert not up.switch_due(now + 1000) and up.switch_due(now + updater.RESET_WAIT_MS + 1)


def test_an_offer_of_an_image_rolled_back_from_is_refused_as_such(tmp_path):
    site, creds, unit, root = _unit(tmp_path)
    offer, _ = otaimage.build(fleet.image_files(), "9.0.0", "esp32", "rev-a", creds[bc.OTA_KEY].encode())
    up = unit.updater
    up.state["trial_sha256"] = otaimage.fields(offer)["sha256"][:8]  # what the boot selector leaves after a rollback
    up.on_message(offer)
    assert up.answer["rolled_back"] is True and "rolled back" in up.answer["error"]
    assert protocol.decode(protocol.UPDATE_ACK, protocol.encode(protocol.UPDATE_ACK, up.answer))["rolled_back"]
