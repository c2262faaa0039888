"""Over-the-air updates end to end: units provisioned with `seatmon flash
provision` onto virtual ESP32 boards (the real MicroPython unix port),
Mosquitto with TLS and the ACL `seatmon broker config` generates, the
collector and InfluxDB, and `seatmon fleet update` serving the image while
calls are made on the boards' pins. The boards run their revision's stock
image (rev-a ESP32_GENERIC-SPIRAM, rev-b ESP32_GENERIC_S3): the code as
.mpy files in /lib, what an update replaces."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from seatmon import cli
from shared import protocol as p
from tools import broker_config, flash
from tools.micropython import ROOT
from virtual.board import UnixBoard, for_revision
from virtual.desks import Desk

from tests.test_unit_on_board import rig, stored_calls, wait_for  # noqa: F401  (rig is a fixture)


def make_code(folder: Path, version: str, broken: bool = False) -> Path:
    """A checkout of this code whose FW_VERSION is `version`; `broken`: its
    shell raises as the unit starts (main.py's first import of it)."""
    root = folder / f"code-{version}{'-broken' if broken else ''}"
    for package in flash.PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shell = root / "firmware" / "shell.py"
    text = re.sub(r'^FW_VERSION = "[0-9.]+"', f'FW_VERSION = "{version}"', shell.read_text(), flags=re.M)
    if broken:
        text = text.replace('def from_files(root="/", **modules):\n',
                            'def from_files(root="/", **modules):\n    raise RuntimeError("a broken build")\n', 1)
    shell.write_text(text)
    return root


class Observer:
    """Every status and update event of the site, as the collector account sees them."""

    def __init__(self, site, port: int, ca: Path, password: str):
        self.messages: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ota-observer", protocol=mqtt.MQTTv5)
        c.username_pw_set("collector", password)
        c.tls_set(ca_certs=str(ca))
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.subscribe([(p.subscription(p.STATUS, site=site.id), 1), (p.subscription(p.EVENT, site=site.id), 1)])
        c.loop_start()
        self.client = c

    def _on(self, client, userdata, msg):
        _, unit, channel = p.parse_topic(msg.topic)
        with self.lock:
            self.messages.append((unit, channel, json.loads(msg.payload)))

    def updates(self, unit: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(m["step"], m["version"]) for u, ch, m in self.messages
                    if u == unit and ch == p.EVENT and m.get("kind") == "update"]

    def births(self, unit: str) -> list[str]:
        with self.lock:
            return [m["fw"] for u, ch, m in self.messages if u == unit and ch == p.STATUS and m["state"] == "online"]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def floor(rig, tmp_path):  # noqa: F811
    site = rig["site"]
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    obs = Observer(site, rig["broker"].port, tmp_path / "tls" / "ca.pem", creds["collector"])
    boards: list[UnixBoard] = []

    def board_for(unit_id: str) -> tuple[UnixBoard, Desk]:
        unit = site.unit(unit_id)
        hw = site.data["hardware"][unit["hardware"]]
        board = for_revision(tmp_path / f"{unit_id}.img", hw).start()
        boards.append(board)
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.ok, result.error or (result.selftest and result.selftest.output)
        wait_for(lambda: "0.1.0" in obs.births(unit_id), 60, f"{unit_id}'s birth")
        return board, Desk(board, dict(hw["pins"], **unit.get("pins", {})))

    yield {"rig": rig, "site": site, "obs": obs, "board_for": board_for, "tmp": tmp_path}
    obs.close()
    for b in boards:
        b.stop()


def fleet_update(site, *args: str) -> tuple[int, str]:
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["fleet", "update", "--site", str(site.path), *args])
    return code, out.getvalue()


def in_background(fn, *args):
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("value", fn(*args)), daemon=True)
    t.start()
    return t, result


@pytest.mark.slow
def test_a_unit_takes_an_update_while_its_phone_rings(floor):
    """rev-a, stock-image path: the update goes through while calls are made;
    the unit switches when idle, confirms, and every call is stored once."""
    site, obs = floor["site"], floor["obs"]
    board, desk = floor["board_for"]("u-0001")
    code = make_code(floor["tmp"], "0.2.0")
    started = time.monotonic()
    t, result = in_background(fleet_update, site, "--units", "u-0001", "--code", str(code), "--wait", "240")
    for _ in range(3):
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
    t.join(300)
    code_, out = result["value"]
    assert code_ == 0, out
    assert "u-0001: confirmed" in out
    took = time.monotonic() - started
    assert obs.births("u-0001")[-1] == "0.2.0"
    steps = obs.updates("u-0001")
    assert [s for s, v in steps if v == "0.2.0"][-1] == "confirmed", steps
    assert ("receiving", "0.2.0") in steps and ("staged", "0.2.0") in steps
    desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)  # on the new code
    calls = wait_for(lambda: len(stored_calls(floor["rig"]["influx"], floor["rig"]["db"], "u-0001")) >= 4 and
                     stored_calls(floor["rig"]["influx"], floor["rig"]["db"], "u-0001"), 90, "the four calls")
    time.sleep(2)
    calls = stored_calls(floor["rig"]["influx"], floor["rig"]["db"], "u-0001")
    ids = [(c["boot"], c["seq"]) for c in calls]
    assert len(calls) == 4 and len(set(ids)) == 4, ids
    print(json.dumps({"update_s": round(took, 1)}))
    # The steps are stored: `seatmon report units` shows the unit's last one.
    # From the first call's UTC date to today's (the board's clock came from NTP: the host's; a run may cross midnight).
    first_day = time.strftime("%Y-%m-%d", time.gmtime(min(c["time"] for c in calls) / 1000))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    report = {}

    def units_report():
        import contextlib
        import io
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["report", "units", "--influx", floor["rig"]["influx"], "--db", floor["rig"]["db"],
                             "--tz", "UTC", "--from", first_day, "--to", today, "--format", "json"]) == 0
        report.update({u["unit"]: u for u in json.loads(out.getvalue())["units"]})
        return report.get("u-0001", {}).get("update") == "confirmed 0.2.0"

    wait_for(units_report, 30, "the confirmed update in `seatmon report units`")
    assert report["u-0001"]["firmware"] == "0.2.0"


@pytest.mark.slow
def test_a_broken_image_rolls_back_and_a_wrongly_signed_one_is_refused(floor):
    """rev-b: an image whose code raises at boot rolls back by itself and says
    so; an offer signed with another key (a stolen update account) is refused
    and the unit keeps running its code."""
    site, obs = floor["site"], floor["obs"]
    board, desk = floor["board_for"]("u-0003")
    broken = make_code(floor["tmp"], "0.2.0", broken=True)
    code, out = fleet_update(site, "--units", "u-0003", "--code", str(broken), "--wait", "180")
    assert code == 1, out
    assert "u-0003: rolled_back" in out, out
    wait_for(lambda: obs.births("u-0003")[-1:] == ["0.1.0"], 60, "the old code back online")
    wait_for(lambda: ("rolled_back", "0.2.0") in obs.updates("u-0003"), 30, "the rolled_back event")
    desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
    wait_for(lambda: len(stored_calls(floor["rig"]["influx"], floor["rig"]["db"], "u-0003")) == 1, 90,
             "a call on the rolled-back unit")

    # Someone with the updater's broker password but not the site's key.
    creds_path = site.relative(site.data["broker"]["credentials"])
    creds = json.loads(creds_path.read_text())
    creds[broker_config.OTA_KEY] = "not-the-site-key-0123456789"
    creds_path.write_text(json.dumps(creds))
    good = make_code(floor["tmp"], "0.3.0")
    code, out = fleet_update(site, "--units", "u-0003", "--code", str(good), "--wait", "60")
    assert code == 1, out
    assert "u-0003: refused: offer signature does not match" in out, out
    assert obs.births("u-0003")[-1] == "0.1.0"
    wait_for(lambda: ("refused", "0.3.0") in obs.updates("u-0003"), 30, "the refusal event")


@pytest.mark.slow
def test_power_cut_mid_update_and_an_offline_unit_are_updated_later(floor):
    """rev-a: the power fails at a flash write of the staging slot: the unit
    boots its old code, takes the retained offer again and finishes. A unit
    offline during a rollout finds the offer retained when it returns and is
    served by the next `fleet update`."""
    site, obs = floor["site"], floor["obs"]
    board, desk = floor["board_for"]("u-0001")
    code = make_code(floor["tmp"], "0.2.0")
    mark = len(board.console)
    t, result = in_background(fleet_update, site, "--units", "u-0001", "--code", str(code), "--wait", "240")
    wait_for(lambda: ("receiving", "0.2.0") in obs.updates("u-0001"), 60, "the transfer to start")
    board.power_cut(after_writes=20)
    board.wait_console("rst:0x1 (POWERON_RESET)", 60, start=mark)
    t.join(300)
    code_, out = result["value"]
    assert code_ == 0, out
    assert obs.births("u-0001")[-1] == "0.2.0"
    assert "0.1.0" in obs.births("u-0001")[1:]  # the old code came back after the cut
    desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
    wait_for(lambda: len(stored_calls(floor["rig"]["influx"], floor["rig"]["db"], "u-0001")) == 1, 90, "a call")

    # Offline when a rollout gives up on it: the offer stays retained, and
    # the next rollout serves it.
    board.wifi(False)
    newer = make_code(floor["tmp"], "0.3.0")
    code, out = fleet_update(site, "--units", "u-0001", "--code", str(newer), "--wait", "5")
    assert code == 1 and "timeout" in out, out
    board.wifi(True)
    code, out = fleet_update(site, "--units", "u-0001", "--code", str(newer), "--wait", "240")
    assert code == 0, out
    assert obs.births("u-0001")[-1] == "0.3.0"

    # Offline while a rollout runs: updated when it comes back, by the same rollout.
    board.wifi(False)
    newest = make_code(floor["tmp"], "0.4.0")
    t, result = in_background(fleet_update, site, "--units", "u-0001", "--code", str(newest), "--wait", "240")
    time.sleep(8)
    assert obs.births("u-0001")[-1] == "0.3.0"
    board.wifi(True)
    t.join(300)
    code, out = result["value"]
    assert code == 0 and "u-0001: confirmed" in out, out
    assert obs.births("u-0001")[-1] == "0.4.0"
