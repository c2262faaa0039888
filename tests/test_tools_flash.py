"""`seatmon flash provision` end to end against the virtual board
(virtual/wasmboard.py) with the real mpremote and the real MicroPython VM.

The virtual board cannot reproduce, and these tests therefore do not cover:
USB re-enumeration of native-USB boards on a hard reset (the pty stays put;
provision's reopen loop is untested here), the ROM bootloader and flash write
timing, DTR/RTS auto-reset wiring, a UART dropping bytes at 115200 baud,
filesystem size limits, and MicroPython port differences (the VM is the
WebAssembly port: same bytecode version, different builtins: no pins,
no network, no VfsRom: these tests provision with `--no-romfs`, the code in
/lib; tests/test_unit_on_board.py provisions boards running models of the
stock images and of the custom ROMFS image).

Until the firmware has its own main.py, the positive self-test path uses a
small main.py written by the test that prints the PASS line through
shared.console, i.e. from the modules provision has just copied.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from seatmon import cli
from shared import console
from tools import broker_config as bc
from tools import flash
from tools import inventory as inv
from virtual.wasmboard import VirtualBoard, node_available

# In CI the virtual board must be there (setup.sh installs it): never skip there.
pytestmark = pytest.mark.skipif(not node_available() and not os.environ.get("CI"),
                                reason="needs node and `npm ci` (setup.sh)")

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
PASS_MAIN = (
    "from shared import console\n"
    "import json\n"
    "conf = json.load(open('/config.json'))\n"
    "print(console.selftest_line(True, 'unit ' + conf['unit'] + ' seat ' + conf['seat']))\n"
)


@pytest.fixture
def site(tmp_path):
    from tools.certs import make_ca_and_server

    shutil.copy(EXAMPLE, tmp_path / "site.toml")
    site = inv.load(tmp_path / "site.toml")
    bc.write(site, tmp_path / "broker")  # creates the credentials provision needs
    (tmp_path / "tls").mkdir()  # the site CA, copied to every unit
    shutil.copy(make_ca_and_server(tmp_path / "made")["ca"], tmp_path / "tls" / "ca.pem")
    return site


@pytest.fixture
def main_py(tmp_path, monkeypatch):
    path = tmp_path / "main.py"
    path.write_text(PASS_MAIN)
    monkeypatch.setattr(flash, "MAIN_SOURCE", path)
    return path


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard(tmp_path / "flash").start()
    yield b
    b.stop()


@pytest.mark.slow
def test_provision_end_to_end(site, main_py, board, capsys):
    unit = site.unit("u-0002")
    first = flash.provision(site, unit, board.port, timeout=20, show_progress=False, romfs=False)
    assert first.error == ""
    assert first.ok, first.selftest
    assert first.selftest.line == "SEATMON SELFTEST PASS unit u-0002 seat A-02"
    flash_dir = board.flash_dir
    assert (flash_dir / "lib" / "shared" / "protocol.mpy").is_file()
    assert (flash_dir / "lib" / "firmware" / "__init__.mpy").is_file()
    conf = __import__("json").loads((flash_dir / "config.json").read_text())
    assert conf == inv.unit_config(site, unit)
    secrets = __import__("json").loads((flash_dir / "secrets.json").read_text())
    assert secrets["mqtt_user"] == "u-0002" and secrets["mqtt_password"]
    assert first.copied >= 6 and board.resets == 2  # one to hold the unit for the copy, one to start it

    second = flash.provision(site, unit, board.port, timeout=20, show_progress=False, romfs=False)
    assert second.ok and second.copied == 0 and second.deleted == 0
    assert second.unchanged == first.copied

    # A corrupted module and a stale one: the first is re-copied, the second removed.
    (flash_dir / "lib" / "shared" / "protocol.mpy").write_bytes(b"garbage")
    (flash_dir / "lib" / "firmware" / "old.mpy").write_bytes(b"stale")
    board.stop()  # the runtime loads the flash directory when it starts
    again = VirtualBoard(flash_dir).start()
    try:
        third = flash.provision(site, unit, again.port, timeout=20, show_progress=False, romfs=False)
        assert third.ok and third.copied == 1 and third.deleted == 1
        assert not (flash_dir / "lib" / "firmware" / "old.mpy").exists()
        assert (flash_dir / "lib" / "shared" / "protocol.mpy").read_bytes() != b"garbage"
    finally:
        again.stop()


@pytest.mark.slow
def test_board_without_selftest_is_reported_failed(site, tmp_path, monkeypatch, board):
    quiet = tmp_path / "quiet_main.py"
    quiet.write_text("print('booting, but no self-test here')\n")
    monkeypatch.setattr(flash, "MAIN_SOURCE", quiet)
    result = flash.provision(site, site.unit("u-0001"), board.port, timeout=4, show_progress=False, romfs=False)
    assert not result.ok and result.error == ""
    assert "no self-test line" in result.selftest.line
    assert "booting, but no self-test here" in result.selftest.output


@pytest.mark.slow
def test_cli_dry_run_and_all_with_summary(site, main_py, board, capsys):
    text = site.path.read_text().replace('id = "u-0001"\n', f'id = "u-0001"\nport = "{board.port}"\n', 1)
    site.path.write_text(text)
    before = sorted(p.relative_to(board.flash_dir) for p in board.flash_dir.rglob("*"))
    assert cli.main(["flash", "provision", "--site", str(site.path), "--unit", "u-0001", "--dry-run", "--no-romfs"]) == 0
    out = capsys.readouterr().out
    assert "copy   /config.json (new" in out and "planned" in out
    assert sorted(p.relative_to(board.flash_dir) for p in board.flash_dir.rglob("*")) == before

    code = cli.main(["flash", "provision", "--site", str(site.path), "--all", "--timeout", "20", "--no-romfs"])
    out = capsys.readouterr().out
    assert code == 1  # u-0002 and u-0003 have no port
    assert "u-0001" in out and "PASS SEATMON SELFTEST PASS unit u-0001" in out
    assert out.count("no port") == 2


def test_selftest_line_contract():
    assert console.selftest_line(True, "ring ok\nhook ok") == "SEATMON SELFTEST PASS ring ok hook ok"
    assert console.parse_selftest("SEATMON SELFTEST FAIL hook stuck\r") == (False, "hook stuck")
    assert console.parse_selftest("SEATMON SELFTEST PASSED") is None


def test_esp32_bridges_sort_first():
    assert flash.usb_chip(0x10C4, 0xEA60) == "CP210x"
    assert flash.usb_chip(0x303A, 0x1001) == "Espressif native USB"
    assert flash.usb_chip(0x1234, 0x5678) is None


def test_a_missing_ca_stops_provisioning_naming_the_key(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "site.toml")
    site = inv.load(tmp_path / "site.toml")
    bc.write(site, tmp_path / "broker")
    creds = __import__("json").loads(site.relative(site.data["broker"]["credentials"]).read_text())
    line = next(i for i, row in enumerate(site.path.read_text().splitlines(), 1) if row.startswith("ca ="))
    with pytest.raises(flash.FlashError, match=f"site.toml:{line}: broker.ca: no such file"):
        flash.board_files(site, site.unit("u-0001"), creds)
    # A lab broker without TLS needs no CA, and the unit is told so.
    text = site.path.read_text().replace("port = 8883", "port = 1883\ntls = false")
    site.path.write_text(text)
    site = inv.load(site.path)
    files = {f.path: f.data for f in flash.board_files(site, site.unit("u-0001"), creds)}
    assert "/ca.pem" not in files
    board = __import__("json").loads(files["/board.json"])
    assert board["mqtt"] == {"host": "mqtt.hq.example", "port": 1883, "tls": False, "ca": None}


# A unit as this firmware's main.py behaves: held while /provisioning exists,
# else the self-test line and a watchdog fed for as long as it runs.
WATCHDOG_MAIN = (
    "import machine, time\n"
    "try:\n"
    "    open('/provisioning').close()\n"
    "    print('SEATMON SELFTEST FAIL provisioning not finished')\n"
    "except OSError:\n"
    "    print('SEATMON SELFTEST PASS watchdog unit')\n"
    "    wdt = machine.WDT(timeout=5000)\n"
    "    while True:\n"
    "        wdt.feed()\n"
    "        time.sleep(0.1)\n"
)


@pytest.mark.slow
def test_reprovisioning_a_unit_whose_watchdog_runs(site, tmp_path, monkeypatch):
    # Before: mpremote's Ctrl-C stopped the unit but not its watchdog (an
    # ESP32's survives Ctrl-C and soft reset), which reset the board mid-copy.
    path = tmp_path / "wdt_main.py"
    path.write_text(WATCHDOG_MAIN)
    monkeypatch.setattr(flash, "MAIN_SOURCE", path)
    board = VirtualBoard(tmp_path / "flash", main_py=WATCHDOG_MAIN).start()
    try:
        deadline = __import__("time").monotonic() + 20
        while b"PASS watchdog unit" not in board.console and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
        result = flash.provision(site, site.unit("u-0001"), board.port, timeout=20, show_progress=False, romfs=False)
        assert result.error == "", result.error
        assert result.ok and result.selftest.line == "SEATMON SELFTEST PASS watchdog unit"
        assert result.copied > 20  # the whole firmware: far longer than the watchdog's 5 s
        assert board.watchdog_resets == 0
        assert not (board.flash_dir / "provisioning").exists()
    finally:
        board.stop()


def test_firmware_main_does_not_start_the_unit_while_provisioning(monkeypatch, capsys):
    import builtins

    from firmware import shell

    real_open = builtins.open

    def board_open(path, *args, **kwargs):
        if path == "/provisioning":
            return real_open(os.devnull, *args, **kwargs)
        return real_open(path, *args, **kwargs)

    def never(*args, **kwargs):
        raise AssertionError("the unit started during provisioning")

    def ctrl_c(seconds):  # the provisioning tool stops main.py's wait for the copy
        raise KeyboardInterrupt

    monkeypatch.setattr(builtins, "open", board_open)
    monkeypatch.setattr(shell, "from_files", never)
    monkeypatch.setattr(time, "sleep", ctrl_c)
    source = (flash.MAIN_SOURCE).read_text()
    exec(compile(source, "main.py", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.startswith("SEATMON SELFTEST FAIL provisioning not finished")


def test_only_modules_the_unit_imports_go_to_lib(site):
    creds = __import__("json").loads(site.relative(site.data["broker"]["credentials"]).read_text())
    files, _ = flash.unit_files(site, site.unit("u-0001"), None, creds, romfs=False)
    paths = {f.path for f in files}
    assert {"/main.py", "/boot.py", "/config.json", "/board.json", "/secrets.json", "/ca.pem"} <= paths
    assert "/lib/shared/boardfiles.py" in paths and "/lib/firmware/shell.py" in paths
    for name in ("main", "boot", "scenario"):
        assert f"/lib/firmware/{name}.py" not in paths


def test_a_board_that_never_answers_is_named_without_the_script_sent_to_it():
    master, slave = os.openpty()  # a serial port with nothing behind it
    port = os.ttyname(slave)
    try:
        with pytest.raises(flash.FlashError) as err:
            flash.mpremote(port, "exec", flash._SCAN % {"paths": ["/main.py"]}, timeout=3)
    finally:
        os.close(master)
        os.close(slave)
    assert str(err.value) == f"mpremote exec on {port}: no answer within 3 s"
