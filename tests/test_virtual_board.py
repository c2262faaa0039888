"""The virtual ESP32 board (virtual/board.py) on the real MicroPython unix
port: the real mpremote talks to its console, its flash survives resets and
power cuts, and its board modules behave as the esp32 port does where the
firmware touches them, running a model of a MicroPython image
(tools/images.py): by default the chip's stock download (here ESP32_GENERIC,
no PSRAM, no ROMFS), the custom ROMFS image where a test says so. The
firmware itself is booted on it by tests/test_unit_on_board.py."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from virtual.board import HARD_RESET, PWRON_RESET, SOFT_RESET, WDT_RESET, BoardError, UnixBoard

LED = 2


def mpremote(board: UnixBoard, *args: str, timeout: float = 60) -> str:
    res = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, *args], capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr or res.stdout
    return res.stdout


def run_on(board: UnixBoard, code: str) -> str:
    return mpremote(board, "exec", code).strip()


@pytest.fixture
def board(tmp_path):
    b = UnixBoard(tmp_path / "flash.img").start()
    b.wait_console(">>> ", 30)
    yield b
    b.stop()


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def put(board: UnixBoard, tmp_path, name: str, text: str) -> None:
    local = tmp_path / name.replace("/", "_")
    local.write_text(text)
    mpremote(board, "fs", "cp", str(local), ":" + name)


def test_mpremote_runs_code_and_copies_files_to_a_persistent_flash(board, tmp_path):
    assert run_on(board, "print(6 * 7)") == "42"
    put(board, tmp_path, "hello.txt", "kept across resets\n")
    assert "hello.txt" in mpremote(board, "fs", "ls", ":")
    assert board.boots[-1] == SOFT_RESET  # mpremote soft-resets the raw REPL, like a board's
    mark = len(board.console)
    board.power_cut()
    board.wait_console(">>> ", 30, start=mark)
    assert run_on(board, "print(open('hello.txt').read().strip())") == "kept across resets"
    assert run_on(board, "import machine; print(machine.reset_cause())") == str(SOFT_RESET)
    assert PWRON_RESET in board.boots[1:]


def test_main_py_runs_after_a_hard_reset_and_ctrl_c_stops_it(board, tmp_path):
    put(board, tmp_path, "main.py",
        "import machine, time\nprint('main up, cause', machine.reset_cause())\n"
        "led = machine.Pin(2, machine.Pin.OUT, value=1)\nwhile True:\n    time.sleep_ms(50)\n")
    mark = len(board.console)
    mpremote(board, "reset")
    board.wait_console("main up, cause %d" % HARD_RESET, 30, start=mark)
    assert board.outputs[LED] == 1
    # mpremote interrupts the running main.py with Ctrl-C, as on a board.
    assert run_on(board, "print('interrupted')") == "interrupted"


def test_a_pin_the_chip_lacks_raises_and_input_only_pins_cannot_drive(tmp_path):
    cases = {"esp32": (25, 20, 34), "esp32-s3": (48, 25, None), "esp32-c3": (21, 22, None)}
    for chip, (valid, missing, input_only) in cases.items():
        with UnixBoard(tmp_path / f"{chip}.img", chip=chip) as b:
            b.wait_console(">>> ", 30)
            code = ("import machine\nmachine.Pin(%d, machine.Pin.OUT)\n"
                    "try:\n machine.Pin(%d)\nexcept ValueError as e:\n print('refused', e)\n") % (valid, missing)
            if input_only is not None:
                code += ("try:\n machine.Pin(%d, machine.Pin.OUT)\nexcept ValueError as e:\n print('in only', e)\n"
                         % input_only)
            out = run_on(b, code)
            assert "refused invalid pin" in out, (chip, out)
            assert input_only is None or "in only pin can only be input" in out


def test_inputs_driven_and_outputs_recorded_from_power_on(board):
    board.set_input(34, 0)
    board.set_adc(32, 40000)
    out = run_on(board, "import machine\np = machine.Pin(34, machine.Pin.IN)\n"
                        "a = machine.ADC(machine.Pin(32))\nprint(p.value(), a.read_u16())\n"
                        "o = machine.Pin(26, machine.Pin.OUT, value=0)\no.value(1)\no.value(0)")
    assert out == "0 40000"
    wait_for(lambda: len(board.levels_of(26)) >= 3)  # the wire is asynchronous to the console
    assert board.levels_of(26) == [0, 1, 0]


def test_the_watchdog_survives_ctrl_c_and_soft_reset_and_resets_a_starved_board(board, tmp_path):
    run_on(board, "import machine\nw = machine.WDT(timeout=3000)\nw.feed()")
    wait_for(lambda: board.wdt_ms == 3000)
    # mpremote's next command soft-resets: the watchdog keeps running.
    assert run_on(board, "print('still here')") == "still here"
    assert board.wdt_ms == 3000
    mark = len(board.console)
    board.wait_console("rst:0x10 (RTCWDT_RTC_RESET)", 10, start=mark)
    assert board.boots[-1] == WDT_RESET and board.wdt_ms is None
    board.wait_console(">>> ", 30, start=mark)
    assert run_on(board, "import machine; print(machine.reset_cause())") == str(SOFT_RESET)


def test_wifi_and_ntp_come_and_go_and_the_rtc_starts_in_2000(board):
    code = ("import network, ntptime, time\nw = network.WLAN(network.STA_IF)\nw.active(True)\n"
            "w.connect('x', 'y')\nprint(w.isconnected(), time.gmtime(time.time())[0])\n")
    assert run_on(board, code) == "True 2000"
    board.wifi(False)
    assert run_on(board, code) == "False 2000"
    board.wifi(True)
    year = time.gmtime().tm_year
    assert run_on(board, "import ntptime, time\nntptime.settime()\nprint(time.gmtime(time.time())[0])") == str(year)
    board.ntp(False)
    out = run_on(board, "import ntptime\ntry:\n ntptime.time()\nexcept OSError as e:\n print('no answer', e)")
    assert out == "no answer [Errno 110] ETIMEDOUT"


def test_the_tick_counter_starts_where_the_test_says(tmp_path):
    with UnixBoard(tmp_path / "f.img", ticks0=(1 << 29) - 5000) as b:
        b.wait_console(">>> ", 30)
        ticks = int(run_on(b, "import time; print(time.ticks_ms())"))
        assert (1 << 29) - 5000 <= ticks < (1 << 29) + 60_000


def test_a_power_cut_mid_write_leaves_a_mountable_flash(board, tmp_path):
    put(board, tmp_path, "data.txt", "old\n")
    # Cut the power after a few block writes of a rewrite: LittleFS keeps the
    # old or the new file, never a broken filesystem.
    board.power_cut(after_writes=2)
    mark = len(board.console)
    with pytest.raises((AssertionError, subprocess.TimeoutExpired)):  # the board dies mid-command
        mpremote(board, "exec", "f = open('data.txt', 'w')\nf.write('new\\n' * 3000)\nf.close()\nprint('written')",
                 timeout=15)
    board.wait_console(">>> ", 30, start=board.wait_console("rst:0x1 (POWERON_RESET)", 30, start=mark))
    assert board.boots[-1] == PWRON_RESET
    assert run_on(board, "print(open('data.txt').read()[:4].strip())") in ("old", "new")


def test_a_bad_block_fails_its_next_read_once(board, tmp_path):
    put(board, tmp_path, "data.txt", "x" * 1000 + "the record" + "y" * 1000)
    board.flash_read_error(b"the record")
    code = ("def read():\n    try:\n        return len(open('data.txt').read())\n"
            "    except OSError as e:\n        return e.errno\n"
            "print(read(), read())")
    assert run_on(board, code) == "5 2010"  # EIO, then the block reads again


def test_an_unknown_chip_is_refused(tmp_path):
    with pytest.raises(BoardError, match="unknown chip"):
        UnixBoard(tmp_path / "f.img", chip="esp8266")


@pytest.fixture
def custom(tmp_path):
    """A board running the custom ROMFS image (deploy/firmware/)."""
    b = UnixBoard(tmp_path / "custom.img", firmware="custom-romfs").start()
    b.wait_console(">>> ", 30)
    yield b
    b.stop()


def test_mpremote_deploys_a_romfs_image_that_the_next_boot_mounts_at_rom(custom, tmp_path):
    from mpremote.romfs import VfsRomWriter

    board = custom
    assert "ROMFS0 partition has size 131072 bytes" in mpremote(board, "romfs", "query")
    writer = VfsRomWriter()
    writer.opendir("lib")
    writer.mkfile("hello.py", b"WHERE = 'rom'\n")
    writer.closedir()
    image = tmp_path / "app.romfs"
    image.write_bytes(writer.finalise())
    assert "ROMFS image deployed" in mpremote(board, "romfs", "deploy", str(image))
    assert "ROMFS image size" in mpremote(board, "romfs", "query")
    # mpremote's next command soft-resets: that boot mounts the image, /rom/lib before /lib.
    out = run_on(board, "import sys, hello\nprint(hello.WHERE, hello.__file__, sys.path.index('/rom/lib') < "
                        "sys.path.index('/lib'))")
    assert out == "rom /rom/lib/hello.py True"
    assert board.rom_image_bytes() == len(image.read_bytes())  # what the partition holds
    # ESP32_GENERIC's budget in this port's terms, plus the image: VfsRom keeps it in this heap
    assert board.heap_bytes() == 300 * 1024 + board.rom_image_bytes()


def test_a_custom_board_without_a_romfs_partition_says_so(tmp_path):
    with UnixBoard(tmp_path / "f.img", firmware="custom-romfs", romfs=0) as b:
        b.wait_console(">>> ", 30)
        assert "No ROMFS partitions available" in mpremote(b, "romfs", "query")


def test_the_stock_image_has_no_romfs_and_names_itself_as_the_esp32_port_does(board):
    """Stock ESP32_GENERIC: MICROPY_VFS_ROM is 0 (no rom_ioctl, no VfsRom),
    os.uname().machine is "<MICROPY_HW_BOARD_NAME> with <MCU>", and
    ESP-IDF's heap shows no PSRAM region."""
    assert board.firmware.name == "ESP32_GENERIC" and not board.rom.exists()
    assert mpremote(board, "romfs", "query").strip() == "ROMFS is not enabled on this device"
    out = run_on(board, "import os, vfs, esp32\nprint(hasattr(vfs, 'rom_ioctl'), hasattr(vfs, 'VfsRom'))\n"
                        "print(os.uname().machine)\n"
                        "print(max(h[0] for h in esp32.idf_heap_info(esp32.HEAP_DATA)) < 524288)")
    assert out.splitlines() == ["False False", "Generic ESP32 module with ESP32", "True"]


@pytest.mark.parametrize("chip, firmware, machine, psram_kib, heap_kib", [
    ("esp32", "ESP32_GENERIC-SPIRAM", "Generic ESP32 module with SPIRAM with ESP32", 4096, 3584 * 3 // 2 + 132),
    ("esp32-s3", "ESP32_GENERIC_S3", "Generic ESP32S3 module with ESP32S3", 2048, 1792 * 3 // 2 + 132),
    ("esp32-c3", "ESP32_GENERIC_C3", "ESP32C3 module with ESP32C3", 0, 128 * 3 // 2 + 132),
])
def test_each_stock_image_shows_its_psram_and_gets_its_heap(tmp_path, chip, firmware, machine, psram_kib, heap_kib):
    """The heap cap is the image's GC budget (twice MICROPY_GC_INITIAL_HEAP_SIZE
    without PSRAM, 7/8 of the PSRAM with it) x1.5 for this 64-bit port, plus
    what its mbedTLS handshake takes from the GC heap (132 KiB)."""
    with UnixBoard(tmp_path / "f.img", chip=chip, firmware=firmware) as b:
        assert b.firmware.name == firmware and b.heap_bytes() == heap_kib * 1024
        b.wait_console(">>> ", 30)
        out = run_on(b, "import os, vfs, esp32\nprint(hasattr(vfs, 'rom_ioctl'))\nprint(os.uname().machine)\n"
                        "print(sum(h[0] for h in esp32.idf_heap_info(esp32.HEAP_DATA) if h[0] >= 524288) // 1024)")
        assert out.splitlines() == ["False", machine, str(psram_kib)]


def test_an_image_of_another_chip_is_refused(tmp_path):
    with pytest.raises(BoardError, match="no MicroPython image 'ESP32_GENERIC_S3' for an esp32"):
        UnixBoard(tmp_path / "f.img", firmware="ESP32_GENERIC_S3")


def test_a_board_left_alone_after_power_on_still_talks_to_its_pins(tmp_path, monkeypatch):
    # The guide's relative image path, and a technician who starts provisioning
    # long after power-on: the board's processes run in /, and its wire to
    # the host stayed open only while it spoke every 2 s.
    monkeypatch.chdir(tmp_path)
    with UnixBoard("var/u-0001.img") as b:
        b.wait_console(">>> ", 30)
        time.sleep(3)
        assert run_on(b, "import machine; machine.Pin(2, machine.Pin.OUT, value=1); print('driven')") == "driven"
        wait_for(lambda: b.outputs.get(LED) == 1)
    assert (tmp_path / "var/u-0001.img").stat().st_size > 0
