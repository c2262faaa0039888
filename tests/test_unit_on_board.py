"""The unit as shipped, end to end, for every hardware revision of
deploy/site.example.toml: `seatmon broker config` -> Mosquitto with TLS, the
generated per-unit accounts and ACL -> `seatmon flash provision` (the real
mpremote) onto a virtual board running the real MicroPython unix port -> boot
-> birth -> rings and an answer driven on its pins -> collector -> InfluxDB ->
`seatmon report answers`. Then a Wi-Fi loss, a broker loss, a reset and a
power cut in the middle of journal writes: nothing lost, nothing twice.

Each board runs the MicroPython image its hardware revision names
(tools/images.py): rev-a the stock ESP32_GENERIC-SPIRAM (a WROVER module),
rev-b the stock ESP32_GENERIC_S3 (an N8R2 module), rev-c the custom ROMFS
image of deploy/firmware/ (a WROOM module without PSRAM)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector import config as collector_config
from collector.influx import InfluxV1
from collector.service import Collector
from seatmon import cli
from shared import protocol as p
from tools import flash
from rig.servers import free_port
from virtual.board import UnixBoard, for_revision
from virtual.desks import Desk
from virtual.labsite import loopback_site

def tls_collector(site, port: int, password: str, influx_url: str, db: str, tmp_path: Path,
                  toml: Path) -> Collector:
    """A collector for the loopback site on its TLS broker, with the account
    `seatmon broker config` generated; its config written to `toml`."""
    toml.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nclient_id = "collector-{db}"\nusername = "collector"\n'
        f'password = "{password}"\ntls = true\nca_file = "{tmp_path / "tls" / "ca.pem"}"\n'
        f'site = "{site.id}"\n[influx]\nurl = "{influx_url}"\ndatabase = "{db}"\n'
        f'[spool]\npath = "{tmp_path / "spool.db"}"\n[health]\nport = 0\n[ack]\ninterval_s = 0.2\n')
    collector = Collector(collector_config.load(toml, env={})).start()
    assert collector.subscribed.wait(20), "collector did not subscribe"
    return collector


@pytest.fixture
def rig(tmp_path, mosquitto_factory, influxdb, unique_name):
    port = free_port()
    site = loopback_site(tmp_path, port)
    broker = mosquitto_factory(port=port, config_file=tmp_path / "broker" / "mosquitto.conf")
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    db = unique_name
    InfluxV1(influxdb.url, db).create_database()
    collector_toml = tmp_path / "collector.toml"
    collector = tls_collector(site, port, creds["collector"], influxdb.url, db, tmp_path, collector_toml)
    yield {"site": site, "broker": broker, "db": db, "influx": influxdb.url, "collector": collector,
           "collector_toml": collector_toml, "tmp": tmp_path}
    collector.stop(flush_timeout=5)


def watch_status(port: int, ca: Path, password: str, site: str) -> tuple[mqtt.Client, list]:
    """A read-only observer with the collector's account: every status message."""
    seen: list = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="observer", protocol=mqtt.MQTTv5)
    c.username_pw_set("collector", password)
    c.tls_set(ca_certs=str(ca))
    c.on_message = lambda cl, u, m: seen.append(json.loads(m.payload))
    c.connect("127.0.0.1", port)
    c.subscribe(p.subscription(p.STATUS, site=site), qos=1)
    c.loop_start()
    return c, seen


def stored_calls(url: str, db: str, unit: str) -> list[dict]:
    rows = InfluxV1(url, db).query(f'SELECT * FROM "call" WHERE "unit" = \'{unit}\'')
    series = rows[0].get("series", [])
    return [dict(zip(s["columns"], v)) for s in series for v in s["values"]]


def stored_faults(url: str, db: str, unit: str) -> list[dict]:
    rows = InfluxV1(url, db).query(f'SELECT * FROM "fault" WHERE "unit" = \'{unit}\'')
    series = rows[0].get("series", [])
    return [dict(zip(s["columns"], v)) for s in series for v in s["values"]]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# (unit, hardware revision, the image its board runs: the revision's `firmware`)
REVISIONS = [("u-0001", "rev-a", "ESP32_GENERIC-SPIRAM"), ("u-0003", "rev-b", "ESP32_GENERIC_S3"),
             ("u-0001", "rev-c", "custom-romfs")]


def unit_on(site, unit_id: str, revision: str) -> dict:
    """The example's unit, on `revision` (the example has no rev-c unit)."""
    return dict(site.unit(unit_id), hardware=revision)


@pytest.mark.slow
@pytest.mark.parametrize("unit_id, revision, image", REVISIONS, ids=[f"{r}-{i}" for _, r, i in REVISIONS])
def test_provisioned_unit_delivers_calls_end_to_end(rig, unit_id, revision, image, tmp_path, capsys):
    site = rig["site"]
    unit = unit_on(site, unit_id, revision)
    hardware = site.data["hardware"][revision]
    assert hardware["firmware"] == image
    pins = dict(hardware["pins"], **unit.get("pins", {}))
    board = for_revision(tmp_path / f"{unit_id}.img", hardware).start()
    assert board.firmware.name == image
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    observer, statuses = watch_status(rig["broker"].port, tmp_path / "tls" / "ca.pem", creds["collector"], site.id)
    try:
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.error == "" and result.ok, (result.selftest and result.selftest.output)
        # Birth: the unit reached the site's broker over TLS with its own account.
        birth = wait_for(lambda: next((s for s in statuses if s.get("unit") == unit_id and s["state"] == "online"),
                                      None), 60, "the unit's birth message")
        assert birth["seat"] == unit["seat"]
        desk = Desk(board, pins)
        desk.call(rings=2, answer_after_ms=6000)  # in time (limit 10 s, 3 rings)
        desk.call(rings=4, answer_after_ms=None)  # nobody answers
        calls = wait_for(lambda: len(stored_calls(rig["influx"], rig["db"], unit_id)) >= 2 and
                         stored_calls(rig["influx"], rig["db"], unit_id), 60, "both calls in InfluxDB")
        by_outcome = {c["outcome"]: c for c in calls}
        assert set(by_outcome) == {"answered", "missed"}
        answered = by_outcome["answered"]
        assert answered["timely"] == 1 and 5000 <= answered["answer_ms"] <= 7000
        assert by_outcome["missed"]["rings"] == 4
        # The UTC dates of the stored calls (a run may cross midnight).
        days = sorted(time.strftime("%Y-%m-%d", time.gmtime(c["time"] / 1000)) for c in calls)
        capsys.readouterr()  # provisioning's plan
        code = cli.main(["report", "answers", "--influx", rig["influx"], "--db", rig["db"], "--tz", "UTC",
                         "--from", days[0], "--to", days[-1], "--seat", unit["seat"], "--format", "json"])
        out = capsys.readouterr().out
        assert code == 0, out
        total = json.loads(out)["total"]
        assert (total["calls"], total["answered_in_time"], total["missed"]) == (2, 1, 1)
    finally:
        observer.loop_stop()
        observer.disconnect()
        board.stop()


@pytest.mark.slow
def test_wifi_loss_broker_loss_reset_and_power_cut_lose_nothing(rig, tmp_path):
    """rev-a (stock ESP32_GENERIC-SPIRAM): calls made while Wi-Fi is down, while the broker is down,
    around a hard reset and with the power cut in the middle of flash writes
    all end up in InfluxDB exactly once, or (the call whose journal write the
    power cut interrupted) not at all."""
    site = rig["site"]
    unit = site.unit("u-0001")
    pins = dict(site.data["hardware"]["rev-a"]["pins"])
    board = for_revision(tmp_path / "u-0001.img", site.data["hardware"]["rev-a"]).start()
    stored = lambda: stored_calls(rig["influx"], rig["db"], "u-0001")  # noqa: E731
    try:
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.ok, result.selftest and result.selftest.output
        desk = Desk(board, pins)
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        wait_for(lambda: len(stored()) == 1, 60, "the first call")

        board.wifi(False)
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        time.sleep(2)
        assert len(stored()) == 1  # journaled on the unit, not sent
        board.wifi(True)
        wait_for(lambda: len(stored()) == 2, 90, "the call made without Wi-Fi")

        rig["broker"].stop()
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        rig["broker"].start()
        wait_for(lambda: len(stored()) == 3, 120, "the call made without a broker")

        mark = len(board.console)
        board.press_reset()
        board.wait_console("SEATMON SELFTEST PASS", 60, start=mark)
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        wait_for(lambda: len(stored()) == 4, 90, "the call after a reset")

        # The power fails at the first flash write of the next call's journal entry.
        mark = len(board.console)
        board.power_cut(after_writes=0)
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        board.wait_console("SEATMON SELFTEST PASS", 60, start=board.wait_console("rst:0x1 (POWERON_RESET)", 30,
                                                                                  start=mark))
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)
        calls = wait_for(lambda: len(stored()) >= 5 and stored(), 90, "the call after the power cut")
        time.sleep(3)
        calls = stored()
        ids = [(c["boot"], c["seq"]) for c in calls]
        assert len(ids) == len(set(ids)), ids  # nothing twice
        assert len(calls) in (5, 6)  # the interrupted call was never journaled, or was and got through
        assert all(c["outcome"] == "answered" for c in calls)
        boots = sorted({c["boot"] for c in calls})
        assert len(boots) >= 3  # provisioning's boot, the reset, the power-on
    finally:
        board.stop()


@pytest.mark.slow
def test_relay_never_cuts_at_boot_and_a_running_unit_reprovisions(rig, tmp_path):
    """u-0002 (rev-a, stock ESP32_GENERIC-SPIRAM) runs power_mode "cut": its relay pin must hold the coil off from
    power-on through every reset (normally-closed contacts keep the seat
    powered). Provisioning it again while it runs, its watchdog armed, must
    not be cut short by that watchdog."""
    site = rig["site"]
    unit = site.unit("u-0002")
    relay = site.data["hardware"]["rev-a"]["pins"]["relay"]
    board = for_revision(tmp_path / "u-0002.img", site.data["hardware"]["rev-a"]).start()
    try:
        board.wait_console(">>> ", 30)
        first = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert first.ok, first.selftest and first.selftest.output
        wait_for(lambda: board.wdt_ms is not None, 30, "the unit's watchdog")
        # main.py arms a boot watchdog before the unit drives its pins: wait for the relay's first level too.
        wait_for(lambda: board.levels_of(relay), 30, "the relay pin driven")
        assert set(board.levels_of(relay)) == {0}, board.levels_of(relay)
        mark = len(board.console)
        again = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert again.ok and again.error == "", again.selftest and again.selftest.output
        assert b"RTCWDT_RTC_RESET" not in board.console[mark:]  # the watchdog never bit mid-copy
        mark = len(board.console)
        board.power_cut()
        board.wait_console("SEATMON SELFTEST PASS", 60, start=board.wait_console("POWERON_RESET", 30, start=mark))
        assert set(board.levels_of(relay)) == {0}
    finally:
        board.stop()


def provisioned(site, unit_id: str, image: Path, uid: str = "24a160c0ffee") -> UnixBoard:
    """A board on a flash image (a new image: an erased board) provisioned as
    `unit_id`, self-test passed."""
    board = for_revision(image, site.data["hardware"][site.unit(unit_id)["hardware"]], uid=uid).start()
    board.wait_console(">>> ", 30)
    result = flash.provision(site, site.unit(unit_id), board.port, timeout=60, show_progress=False)
    assert result.ok, result.selftest and result.selftest.output
    return board


def acked(collector: Collector, unit: str, inc: str | None = None) -> int:
    """The collector's mark for the unit's incarnation `inc` (None: any)."""
    return max([s.mark for s in list(collector.ingestor.units.values())
                if s.unit == unit and inc in (None, getattr(s, "inc", None))] or [0])


def ring(board: UnixBoard, site, n: int) -> None:
    desk = Desk(board, dict(site.data["hardware"]["rev-a"]["pins"]))
    for _ in range(n):
        desk.call(rings=1, answer_after_ms=1500, talk_ms=1000)


@pytest.mark.slow
def test_an_erased_board_and_a_replacement_board_lose_nothing_and_merge_with_nothing(rig, tmp_path):
    """docs/technicians.md, "Replacing or re-flashing a board": u-0001 has an
    acknowledged history; its board is erased (a new flash image) and
    provisioned again; three calls: all three stored beside the old ones,
    though the new journal's seqs start at 1 again. Then a new board (another
    chip) takes over the seat: three calls, three stored."""
    site, collector = rig["site"], rig["collector"]
    stored = lambda: stored_calls(rig["influx"], rig["db"], "u-0001")  # noqa: E731
    image = tmp_path / "u-0001.img"
    board = provisioned(site, "u-0001", image)
    try:
        ring(board, site, 2)
        old = wait_for(lambda: len(stored()) == 2 and stored(), 90, "the first board's calls")
        top = max(c["seq"] for c in old)
        wait_for(lambda: acked(collector, "u-0001") >= top, 30, "the first board acknowledged")
    finally:
        board.stop()
    image.unlink()
    image.with_name(image.name + ".rom").unlink(missing_ok=True)  # a romfs partition only on the custom image
    board = provisioned(site, "u-0001", image)  # the same chip, erased and provisioned again
    try:
        ring(board, site, 3)
        calls = wait_for(lambda: len(stored()) >= 5 and stored(), 90, "the re-flashed board's three calls")
    finally:
        board.stop()
    assert len(calls) == 5, calls
    new = [c for c in calls if c["inc"] != old[0]["inc"]]
    assert len(new) == 3, calls
    assert len({c["inc"] for c in new}) == 1 and new[0]["inc"].startswith("24a160c0ffee-")
    assert min(c["seq"] for c in new) <= top  # the new journal's seqs overlap the old ones: told apart by inc
    assert len({(c["inc"], c["seq"]) for c in calls}) == 5
    assert all(c["outcome"] == "answered" for c in calls)
    # A replacement board (another chip) for the same seat.
    board = provisioned(site, "u-0001", tmp_path / "spare.img", uid="24a160c0beef")
    try:
        ring(board, site, 3)
        calls = wait_for(lambda: len(stored()) >= 8 and stored(), 90, "the replacement board's three calls")
        spare = [c for c in calls if c["inc"].startswith("24a160c0beef-")]
        assert len(calls) == 8 and len(spare) == 3, calls
        wait_for(lambda: acked(collector, "u-0001", spare[0]["inc"]) >= max(c["seq"] for c in spare),
                 30, "the replacement board acknowledged")
    finally:
        board.stop()


@pytest.mark.slow
def test_a_board_provisioned_as_another_unit_starts_a_new_journal(rig, tmp_path):
    """The board of u-0001, with events it has not delivered, is provisioned
    as u-0002 without erasing: u-0001's events are not sent under u-0002's
    name (a fault event counts them), u-0002's calls are stored and
    acknowledged."""
    site, collector = rig["site"], rig["collector"]
    board = provisioned(site, "u-0001", tmp_path / "b.img")
    try:
        ring(board, site, 1)
        wait_for(lambda: len(stored_calls(rig["influx"], rig["db"], "u-0001")) == 1, 90, "u-0001's call")
        board.wifi(False)
        ring(board, site, 1)  # journaled, never sent
        result = flash.provision(site, site.unit("u-0002"), board.port, timeout=60, show_progress=False)
        assert result.ok, result.selftest and result.selftest.output
        board.wifi(True)
        ring(board, site, 2)
        calls = wait_for(lambda: len(stored_calls(rig["influx"], rig["db"], "u-0002")) >= 2 and
                         stored_calls(rig["influx"], rig["db"], "u-0002"), 90, "u-0002's calls")
        assert len(calls) == 2 and {c["seq"] for c in calls} <= {1, 2, 3, 4, 5, 6}  # a new journal
        wait_for(lambda: acked(collector, "u-0002", calls[0].get("inc")) >= max(c["seq"] for c in calls), 30,
                 "u-0002 acknowledged")
        faults = InfluxV1(rig["influx"], rig["db"]).query(
            "SELECT \"detail\" FROM \"fault\" WHERE \"unit\" = 'u-0002' AND \"code\" = 'journal_reset'")
        [series] = faults[0]["series"]
        detail = series["values"][0][1]  # the call and whatever else the unit journaled while offline
        assert detail.startswith("provisioned as u-0002: ") and int(detail.split()[3]) >= 1, detail
        assert detail.endswith(" unacknowledged events of the board's previous unit removed"), detail
        assert len(stored_calls(rig["influx"], rig["db"], "u-0001")) == 1
    finally:
        board.stop()


def run_on(board: UnixBoard, code: str) -> str:
    res = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "exec", code],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr or res.stdout
    return res.stdout.strip()


@pytest.mark.slow
def test_provisioning_deploys_a_romfs_image_and_the_unit_runs_from_it(tmp_path):
    """On the custom image (rev-c, firmware = "custom-romfs") the code goes to
    the romfs partition as one image (run in place on an ESP32), LittleFS
    keeps only the unit's own files, and what the unit imports comes from
    /rom. A board provisioned the old way (modules in /lib) loses them."""
    site = loopback_site(tmp_path, free_port())  # no broker needed: the self-test line comes first
    unit = unit_on(site, "u-0001", "rev-c")
    board = for_revision(tmp_path / "u-0001.img", site.data["hardware"]["rev-c"]).start()
    try:
        board.wait_console(">>> ", 30)
        old = tmp_path / "old.mpy"
        old.write_bytes(b"stale")
        run_on(board, "import os\nos.mkdir('/lib')\nos.mkdir('/lib/firmware')")
        flash.mpremote(board.port, "fs", "cp", str(old), ":/lib/firmware/core.mpy")
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.ok, result.selftest and result.selftest.output
        image = board.rom.read_bytes()[:board.rom_image_bytes()]
        files, _ = flash.unit_files(site, unit, board_mpy(board), flash.load_credentials(site), romfs=True)
        assert image == next(f.data for f in files if f.path == flash.ROM)
        # main.py has run: where did the unit's modules come from?
        out = run_on(board, "import os, json\nprint(json.dumps([os.listdir('/'), os.listdir('/lib/firmware')]))\n"
                            "import firmware.shell, shared.protocol\n"
                            "print(firmware.shell.__file__, shared.protocol.__file__)")
        listing, where = out.splitlines()
        root, old_lib = json.loads(listing)
        assert set(root) >= {"main.py", "boot.py", "config.json", "board.json", "secrets.json", "ca.pem"}
        assert old_lib == []  # the old deployment's module is gone
        assert where == "/rom/lib/firmware/shell.mpy /rom/lib/shared/protocol.mpy"
        # Nothing changed: nothing deployed or copied again.
        again = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert again.ok and again.copied == 0 and again.deleted == 0
    finally:
        board.stop()


@pytest.mark.slow
def test_a_stock_image_gets_the_code_as_mpy_files_in_lib(tmp_path):
    """rev-a on the stock ESP32_GENERIC-SPIRAM image (no ROMFS): the code
    goes to /lib as .mpy files, and the unit imports it from there."""
    site = loopback_site(tmp_path, free_port())
    unit = site.unit("u-0001")
    board = for_revision(tmp_path / "u-0001.img", site.data["hardware"]["rev-a"]).start()
    try:
        board.wait_console(">>> ", 30)
        out = io.StringIO()
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False, out=out)
        assert result.ok, result.selftest and result.selftest.output
        assert "ESP32_GENERIC-SPIRAM, 4096 KiB of PSRAM" in out.getvalue() and "in /lib" in out.getvalue()
        where = run_on(board, "import firmware.shell, shared.protocol\n"
                              "print(firmware.shell.__file__, shared.protocol.__file__)")
        assert where == "/lib/firmware/shell.mpy /lib/shared/protocol.mpy"
    finally:
        board.stop()


def board_mpy(board: UnixBoard) -> int:
    return int(run_on(board, "import sys; print(sys.implementation._mpy)"))


def refused(tmp_path, board: UnixBoard, revision: str) -> str:
    """Provision u-0001 on `revision` onto `board`: the error, after checking nothing was written."""
    site = loopback_site(tmp_path, free_port())
    try:
        board.start()
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit_on(site, "u-0001", revision), board.port, timeout=30,
                                 show_progress=False)
        assert not result.ok and result.copied == 0
        assert run_on(board, "import os; print(os.listdir('/'))") == "[]"  # not left held, nothing copied
        return result.error
    finally:
        board.stop()


def test_a_wroom_on_the_stock_image_is_refused_naming_the_image_to_flash(tmp_path):
    """An ESP32 without PSRAM on stock ESP32_GENERIC cannot hold the unit
    with its code in RAM: refused in one line that names what to flash."""
    error = refused(tmp_path, UnixBoard(tmp_path / "f.img", chip="esp32", firmware="ESP32_GENERIC"), "rev-a")
    assert error.startswith("the board runs ESP32_GENERIC, no PSRAM: ESP32_GENERIC without PSRAM leaves the unit "
                            "112 KiB of GC heap"), error
    assert "flash ESP32_GENERIC-SPIRAM on a WROVER module" in error and "custom-romfs" in error
    assert "\n" not in error


def test_a_board_on_a_stock_image_is_refused_where_the_revision_runs_the_custom_one(tmp_path):
    error = refused(tmp_path, UnixBoard(tmp_path / "f.img", chip="esp32", firmware="ESP32_GENERIC-SPIRAM"),
                    "rev-c")
    assert error.startswith("the board runs ESP32_GENERIC-SPIRAM, 4096 KiB of PSRAM, without ROMFS: hardware "
                            "revision rev-c runs the custom image custom-romfs: flash it"), error


def test_a_board_of_another_chip_is_refused(tmp_path):
    error = refused(tmp_path, UnixBoard(tmp_path / "f.img", chip="esp32-s3"), "rev-a")
    assert error.startswith("the board is an esp32-s3, hardware revision rev-a is an esp32"), error


def test_a_custom_board_without_a_romfs_partition_is_refused_and_left_running(tmp_path):
    board = UnixBoard(tmp_path / "plain.img", chip="esp32", firmware="custom-romfs", romfs=0)
    assert refused(tmp_path, board, "rev-c") == flash.NO_ROMFS_PARTITION



def test_a_sender_ending_on_a_flash_read_error_restarts_with_the_session(rig, tmp_path):
    # Before: the sender ended on the OSError and the session stayed up
    # (heartbeats and pings went on), so the call stayed on flash until the
    # connection happened to drop: hours at a quiet seat.
    site = rig["site"]
    unit = unit_on(site, "u-0001", "rev-a")
    hardware = site.data["hardware"]["rev-a"]
    board = for_revision(tmp_path / "u-0001.img", hardware).start()
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    observer, statuses = watch_status(rig["broker"].port, tmp_path / "tls" / "ca.pem", creds["collector"], site.id)
    try:
        board.wait_console(">>> ", 30)
        result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
        assert result.error == "" and result.ok, (result.selftest and result.selftest.output)
        wait_for(lambda: any(s.get("unit") == "u-0001" and s["state"] == "online" for s in statuses), 60,
                 "the unit's birth message")
        boots = len(board.boots)
        # A call journaled while Wi-Fi is down; then the flash block holding it
        # goes bad for one read: the sender's, once the unit is back online.
        board.wifi(False)
        Desk(board, dict(hardware["pins"], **unit.get("pins", {}))).call(rings=2, answer_after_ms=None)
        record = b'"kind":"call"'
        wait_for(lambda: record in Path(board.image).read_bytes(), 30, "the call on flash")
        time.sleep(1.5)  # and synced (sync_ms: 1 s): no write reads its block again
        board.flash_read_error(record)
        board.wifi(True)
        calls = wait_for(lambda: stored_calls(rig["influx"], rig["db"], "u-0001"), 45, "the call in InfluxDB")
        assert [(c["outcome"], c["rings"]) for c in calls] == [("abandoned", 2)], calls
        fault = wait_for(lambda: [f for f in stored_faults(rig["influx"], rig["db"], "u-0001")
                                  if f.get("code") == "link_task"], 20, "the link_task fault in InfluxDB")
        assert len(fault) == 1 and fault[0]["detail"].startswith("OSError(5"), fault  # EIO
        assert len(board.boots) == boots, board.boots  # the session restarted, not the unit
        time.sleep(2)
        assert len(stored_calls(rig["influx"], rig["db"], "u-0001")) == 1  # once
    finally:
        observer.loop_stop()
        observer.disconnect()
        board.stop()
