"""The on-board files as one contract (shared/boardfiles.py): the firmware is
built from the very files `seatmon flash provision` writes, for every
hardware revision of deploy/site.example.toml, on fake board modules that
refuse the GPIOs each chip lacks, and the units reach a real Mosquitto run
with the TLS config, passwords and ACL that `seatmon broker config` generates.
Also: the relay's level from power-on, uptime past 2**29 ms, the atomic
config.json and the retained config compared by value."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import threading
import time
import types
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from firmware import shell
from shared import boardfiles, jsonfile, protocol
from tests.portable import boardfiles_cases
from tools import broker_config as bc
from tools import flash
from tools import inventory as inv
from virtual.units.fakes import Machine, Network, NtpNet, SimClock
from virtual.units.harness import UnitThread, wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
MONDAY_9_UTC = 1795424400000  # 2026-11-23 09:00 UTC: the early shift in Berlin
CASES = sorted(n for n in dir(boardfiles_cases) if n.startswith("test_"))

# GPIOs each chip has (datasheets); Pin(n) raises ValueError for any other,
# as MicroPython's esp32 port does.
CHIP_GPIOS = {
    "esp32": set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40)),
    "esp32-s2": set(range(0, 22)) | set(range(26, 47)),
    "esp32-s3": set(range(0, 22)) | set(range(26, 49)),
    "esp32-c3": set(range(0, 22)),
}


@pytest.mark.parametrize("name", CASES)
def test_contract_case(name):
    getattr(boardfiles_cases, name)()


# ---- a board of a given chip -------------------------------------------------------

class Wires:
    """Electrical levels of an idle seat: optos off (their pins pulled high),
    button up, equipment on; the ADC current sensor reads `adc`."""

    def __init__(self, adc=20000):
        self.adc_value = adc

    def level(self, name, tick):
        return 1

    def adc(self, tick):
        return self.adc_value


class ChipMachine(Machine):
    def __init__(self, chip, clock, wires):
        super().__init__(clock, wires, {})
        exists = CHIP_GPIOS[chip]
        base = self.Pin

        class Pin(base):
            def __init__(self, pin_id, *args, **kwargs):
                if pin_id not in exists:
                    raise ValueError("invalid pin")
                super().__init__(pin_id, *args, **kwargs)

        self.Pin = Pin


class NeoPixel:
    def __init__(self, pin, n):
        self.pin = pin
        self.pixels = [(0, 0, 0)] * n
        self.writes = 0

    def __setitem__(self, i, colour):
        self.pixels[i] = colour

    def write(self):
        self.writes += 1


class Clock(SimClock):
    """The unit's time, with the wall clock at a fixed date."""

    def __init__(self, wall0_ms, tick0=0, speed=1.0):
        super().__init__(speed, 0, tick0)
        self._wall0 = wall0_ms


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, tick0, wall0_ms):
        self.tick = tick0
        self.wall = wall0_ms

    def ticks_ms(self):
        return self.tick & 0x3FFFFFFF

    def time(self):
        return self.wall / 1000

    def advance(self, ms):
        self.tick += ms
        self.wall += ms

    def true_ms(self):
        return self.wall


def boot(root, chip, clock, wires=None):
    """The firmware as main.py builds it, from the files under root."""
    machine = ChipMachine(chip, clock, wires or Wires())
    network = Network()
    modules = {"machine": machine, "network": network, "socket": NtpNet(clock, network),
               "neopixel": types.SimpleNamespace(NeoPixel=NeoPixel), "clock": clock}
    board, unit = shell.from_files(str(root), **modules)
    return board, unit, machine


def write_files(files, root: Path):
    root.mkdir(parents=True, exist_ok=True)
    for f in files:
        (root / f.path.lstrip("/")).write_bytes(f.data)


# ---- a site and its broker, as the technician makes them -----------------------------------

def make_site(tmp_path, host="mqtt.hq.example", port=8883):
    from tools.certs import make_ca_and_server

    tls = tmp_path / "tls"
    certs = make_ca_and_server(tls / "made")
    for made, name in ((certs["ca"], "ca.pem"), (certs["cert"], "broker.pem"), (certs["key"], "broker.key")):
        shutil.copy(made, tls / name)
    text = EXAMPLE.read_text().replace('host = "mqtt.hq.example"', f'host = "{host}"').replace(
        "port = 8883", f"port = {port}")
    (tmp_path / "site.toml").write_text(text)
    site = inv.load(tmp_path / "site.toml")
    bc.write(site, tmp_path / "broker", persistence_dir=str(tmp_path / "mosq-data") + "/")
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    return site, creds


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path)


@pytest.mark.parametrize("unit_id", ["u-0001", "u-0002", "u-0003"])
def test_firmware_builds_from_the_provisioned_files_of_every_revision(site, tmp_path, unit_id):
    site, creds = site
    unit_conf = site.unit(unit_id)
    chip = site.data["hardware"][unit_conf["hardware"]]["board"]
    root = tmp_path / "flash"
    write_files(flash.board_files(site, unit_conf, creds), root)
    clock = Clock(MONDAY_9_UTC, tick0=(1 << 30) - 5000)
    board, unit, machine = boot(root, chip, clock)

    # Defect 1: the broker, port, TLS and CA reach the link.
    s = unit.link.s
    assert (s["host"], s["port"], s["tls"]) == ("mqtt.hq.example", 8883, True)
    assert s["ca"] == str(root) + "/ca.pem" and Path(s["ca"]).read_bytes() == (tmp_path / "tls" / "ca.pem").read_bytes()
    assert unit.secrets == {"wifi_ssid": "seatmon-hq", "wifi_password": "change-me", "mqtt_user": unit_id,
                            "mqtt_password": creds[unit_id], "ota_key": creds["ota_key"]}
    ok, detail = shell.selftest_details(unit)
    assert ok, detail

    # Defect 2: exactly the pins of the revision; nothing assumed (rev-b has no buzzer).
    pins = site.pins(unit_conf)
    assert set(machine.pins) == set(pins.values())
    if unit_conf["hardware"] == "rev-b":
        assert board._pixel is not None and board._led is None  # led_kind neopixel honoured
        assert board._adc is not None  # u-0003: power_sense adc -> read with the ADC
        assert unit.core.conf["power_on_level"] == 12000
        events = unit.core.step(clock.ticks_ms(), dict.fromkeys(("ring", "hook", "button", "disc"), False)
                                | {"power": 20000})
        assert unit.core.power.state is True
        board.drive(True, False, True, "fault")
        assert board._pixel.pixels[0] == (64, 0, 0) and board._pixel.writes == 1
    else:
        assert board._pixel is None and board._adc is None and board._buzzer is not None

    # Defect 3: the relay starts at the level that does not cut (coil off), and
    # the coil is energised only to cut.
    relay = machine.pins[pins["relay"]]
    assert relay.level == 0
    board.drive(False, False, True, "idle")
    assert relay.level == 0
    board.drive(False, False, False, "idle")
    assert relay.level == 1
    unit.journal.fs.close()


def test_old_files_and_bad_pins_fail_before_any_pin_is_touched(site, tmp_path):
    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0003"), creds), root)
    clock = Clock(MONDAY_9_UTC)
    board_json = json.loads((root / "board.json").read_text())
    board_json["pins"]["buzzer"] = 25  # an S3 has no GPIO 25
    (root / "board.json").write_text(json.dumps(board_json))
    with pytest.raises(boardfiles.FileError, match="board.json: pins.buzzer: GPIO 25 is not a usable pin on esp32-s3"):
        boot(root, "esp32-s3", clock)
    (root / "board.json").unlink()
    with pytest.raises(boardfiles.FileError, match="board.json: missing"):
        boot(root, "esp32-s3", clock)


def test_power_sense_read_one_way_and_judged_another_is_a_fault(site, tmp_path):
    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0001"), creds), root)
    conf = json.loads((root / "config.json").read_text())
    conf["power_sense"] = "adc"  # but board.json reads the pin digitally
    (root / "config.json").write_text(json.dumps(conf))
    _, unit, _ = boot(root, "esp32", Clock(MONDAY_9_UTC))
    ok, detail = shell.selftest_details(unit)
    assert not ok and "power_sense" in detail
    unit.journal.fs.close()


# ---- defect 4: uptime past 2**29 ms -------------------------------------------------------

@pytest.mark.parametrize("tick0", [(1 << 29) - 1000, (1 << 30) - 1000])
def test_heartbeat_uptime_past_six_days(site, tmp_path, tick0):
    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0001"), creds), root)
    clock = ManualClock(tick0, MONDAY_9_UTC)
    _, unit, _ = boot(root, "esp32", clock)
    hour = 3600000
    for h in range(1, 14 * 24 + 1):  # 14 days: past 2**29 ms (6.2 days) and 2**30 ms (12.4 days)
        clock.advance(hour)
        unit.housekeeping(clock.ticks_ms())  # the watchdog task does this every 0.25 s
        if h % 24 == 0 or h in (149, 150, 298, 299):
            hb = protocol.decode(protocol.HEARTBEAT, unit.heartbeat_payload())
            assert hb["uptime_s"] == h * 3600, h
    unit.journal.fs.close()


def test_live_since_stays_right_over_sixteen_idle_days(site, tmp_path):
    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0001"), creds), root)
    clock = ManualClock((1 << 30) - 1000, MONDAY_9_UTC)
    _, unit, _ = boot(root, "esp32", clock)
    quiet = {"ring": False, "hook": False, "power": True, "button": False, "disc": False}
    start = clock.ticks_ms()
    unit.core.set_clock(start, MONDAY_9_UTC, "ntp")
    unit.core.step(start, quiet)
    unit._check_live(start)  # the sampler publishes the state it starts in
    for h in range(1, 16 * 24 + 1):
        clock.advance(3600000)
        unit.core.step(clock.ticks_ms(), quiet)  # the sampler, once an hour here
        unit.housekeeping(clock.ticks_ms())
        if h % 24 == 0:
            live = protocol.decode(protocol.LIVE, unit.live_payload())
            assert live["state"] == "idle" and live["since"] == MONDAY_9_UTC, h
            assert live["ts"] == MONDAY_9_UTC + h * 3600000
    unit.journal.fs.close()


def test_tls_link_waits_for_a_plausible_clock(site, tmp_path):
    # An ESP32's RTC reads 2000 after power-on and its TLS checks certificate
    # dates: the link waits for NTP instead of failing handshakes.
    import asyncio

    from rig.servers import free_port

    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0001"), creds), root)
    clock = ManualClock(0, 946684800000)  # 2000-01-01
    _, unit, _ = boot(root, "esp32", clock)
    unit.link.s["host"], unit.link.s["port"] = "127.0.0.1", free_port()  # nothing listens there
    unit._wifi = True

    async def scenario():
        task = asyncio.create_task(unit.link.run())
        await asyncio.sleep(1.2)
        before = unit.link.last_error
        clock.wall = MONDAY_9_UTC  # NTP set the RTC
        await asyncio.sleep(1.2)
        task.cancel()
        return before, unit.link.last_error

    before, after = asyncio.run(scenario())
    unit.journal.fs.close()
    assert before == "waiting for the clock (TLS checks certificate dates)"
    assert "refused" in after.lower() or "111" in after, after


def test_an_ntp_answer_sets_the_rtc(site, tmp_path):
    """The shell asks over UDP (one request, polled) and sets the RTC from the
    answer with the weekday 1-based, as the ESP32's RTC wants."""
    import asyncio

    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0001"), creds), root)
    clock = Clock(MONDAY_9_UTC)
    machine = ChipMachine("esp32", clock, Wires())
    set_to = []
    machine.RTC = lambda: types.SimpleNamespace(datetime=set_to.append)
    network = Network()
    net = NtpNet(clock, network)
    board, unit = shell.from_files(str(root), machine=machine, network=network, socket=net,
                                   neopixel=None, clock=clock)
    epoch_ms, _ = asyncio.run(unit._ntp_ask("pool.ntp.org"))
    board.set_rtc_ms(epoch_ms)
    unit.journal.fs.close()
    assert net.asked == [("pool.ntp.org", 123)]
    assert abs(epoch_ms - MONDAY_9_UTC) < 5000
    assert set_to and set_to[0][:3] == (2026, 11, 23) and set_to[0][3] == 1  # Monday, 1-based as the RTC wants
    assert set_to[0][4] == 9


# ---- defect 10: config.json ------------------------------------------------------------

def test_config_json_write_never_removes_and_read_falls_back_to_tmp(tmp_path, monkeypatch):
    path = str(tmp_path / "config.json")
    boardfiles.write_atomic(path, '{"a": 1}')
    removed = []
    monkeypatch.setattr(jsonfile.os, "remove", lambda p: removed.append(p))
    boardfiles.write_atomic(path, '{"a": 2}')
    assert removed == [] and boardfiles.read_json(path) == ({"a": 2}, None)
    assert not os.path.exists(path + ".tmp")
    monkeypatch.undo()
    # A power cut on a port whose rename does not replace, between remove and rename:
    os.rename(path, path + ".tmp")
    assert boardfiles.read_json(path) == ({"a": 2}, None)
    # A torn target next to a complete copy:
    Path(path).write_text('{"a": ')
    assert boardfiles.read_json(path) == ({"a": 2}, None)
    os.remove(path + ".tmp")
    obj, err = boardfiles.read_json(path)
    assert obj is None and "config.json" in err


def test_retained_config_equal_by_value_is_not_rewritten(site, tmp_path):
    from tools import unit_config

    site, creds = site
    root = tmp_path / "flash"
    write_files(flash.board_files(site, site.unit("u-0002"), creds), root)
    _, unit, _ = boot(root, "esp32", Clock(MONDAY_9_UTC))
    before = (root / "config.json").stat()
    # The retained message `seatmon unit config push` publishes: same values, other key order.
    _, payload = unit_config.config_message(site, site.unit("u-0002"))
    msg = protocol.decode(protocol.CONFIG, payload)
    assert list(msg["config"]) != list(json.loads((root / "config.json").read_text()))
    unit.apply_remote_config(msg["config"])
    after = (root / "config.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    changed = dict(msg["config"], limit_ms=9000)
    unit.apply_remote_config(changed)
    assert json.loads((root / "config.json").read_text())["limit_ms"] == 9000
    assert unit.core.conf["limit_ms"] == 9000
    unit.journal.fs.close()


# ---- end to end: the generated broker config, TLS, every revision ----------------------------

class TlsWatcher:
    def __init__(self, port, user, password, ca, filters):
        self.got = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="w-" + uuid.uuid4().hex[:8])
        self.client.username_pw_set(user, password)
        self.client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe([(t, 1) for t in filters])
        self.client.connect("localhost", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append((msg.topic, json.loads(msg.payload)))

    def of(self, unit, channel):
        with self.lock:
            return [m for t, m in self.got if t.endswith("/" + unit + "/" + channel)]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_provisioned_units_of_every_revision_reach_the_generated_tls_broker(tmp_path, mosquitto_factory):
    from seatmon.wallboard.live import CHANNEL_QOS
    from rig.servers import free_port

    port = free_port()
    site, creds = make_site(tmp_path, host="localhost", port=port)
    conf = tmp_path / "broker" / "mosquitto.conf"
    if os.geteuid() == 0:  # as servers.Mosquitto does: root would drop to a user who cannot enter tmp dirs
        conf.write_text(conf.read_text() + "user root\n")
    mosquitto_factory(port=port, config_file=conf)
    ca = tmp_path / "tls" / "ca.pem"
    base = f"seatmon/v1/{site.id}"
    collector = TlsWatcher(port, bc.COLLECTOR, creds[bc.COLLECTOR], ca, [base + "/#"])
    wallboard = TlsWatcher(port, bc.WALLBOARD, creds[bc.WALLBOARD], ca,
                           [protocol.subscription(ch) for ch in CHANNEL_QOS])
    runs, units = [], {}
    try:
        assert collector.ready.wait(10) and wallboard.ready.wait(10)
        for i, u in enumerate(site.units):
            root = tmp_path / u["id"]
            write_files(flash.board_files(site, u, creds), root)
            chip = site.data["hardware"][u["hardware"]]["board"]
            _, unit, _ = boot(root, chip, Clock(MONDAY_9_UTC, tick0=(1 << 29) - 3000 + i))
            units[u["id"]] = unit
            runs.append(UnitThread(types.SimpleNamespace(run=unit.run, unit=unit)))

        def delivered():
            return all(collector.of(uid, "event") and collector.of(uid, "live") and wallboard.of(uid, "live")
                       and collector.of(uid, "status") for uid in units)

        assert wait_until(delivered, 30), {uid: (u.link.connects, u.link.last_error) for uid, u in units.items()}
        time.sleep(1.5)  # a denied publish would have cost the connection by now
    finally:
        for r in runs:
            r.stop()
        collector.close()
        wallboard.close()
    for uid, unit in units.items():
        assert unit.link.connects == 1, (uid, unit.link.last_error)  # never disconnected
        assert collector.of(uid, "status")[0]["state"] == "online"
        kinds = {e["kind"] for e in collector.of(uid, "event")}
        assert "selftest" in kinds and "fault" not in kinds, (uid, collector.of(uid, "event"))
        assert wallboard.of(uid, "event") and wallboard.of(uid, "status")
    for r in runs:
        assert r.error is None
