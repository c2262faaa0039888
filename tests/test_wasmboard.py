"""The virtual board speaks MicroPython's serial protocols well enough for the
real mpremote (1.29) to work unmodified: ls, cp, sha256sum, rm, exec (raw
paste with flow control for long code), soft reset, hard reset with boot.py
and main.py, and Ctrl-C interrupting a running program.

Not reproducible here (the runtime is MicroPython's WebAssembly port under
Node, not an ESP32): USB re-enumeration on hard reset, ROM bootloader output
beyond one reset line, flash timing and size limits, a UART losing bytes,
DTR/RTS reset wiring, `machine` beyond reset/reset_cause/unique_id/freq/WDT (no
pins, no network), and stdin-reading programs (`mpremote mount`). An
interrupt restarts the VM (a WebAssembly VM cannot be stopped mid-
instruction), so a program's globals are lost after Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import serial

from virtual.wasmboard import VirtualBoard, node_available

pytestmark = pytest.mark.skipif(not node_available() and not os.environ.get("CI"),
                                reason="needs node and `npm ci` (setup.sh)")


def mpremote(board, *args, check=True):
    res = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, *args],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard(tmp_path / "flash").start()
    yield b
    b.stop()


def test_mpremote_file_operations(board, tmp_path):
    src = tmp_path / "big.py"
    src.write_text("".join(f"x{i} = {i} * 2  # some padding to pass several windows\n" for i in range(300)))
    mpremote(board, "fs", "mkdir", ":lib")
    mpremote(board, "fs", "cp", str(src), ":lib/big.py")
    assert (board.flash_dir / "lib" / "big.py").read_bytes() == src.read_bytes()
    import hashlib
    out = mpremote(board, "fs", "sha256sum", ":lib/big.py").stdout
    assert hashlib.sha256(src.read_bytes()).hexdigest() in out
    assert f"{src.stat().st_size} big.py" in mpremote(board, "fs", "ls", ":lib").stdout
    assert "dev" not in mpremote(board, "fs", "ls", ":/").stdout  # only the board's own files
    # exec of long code goes through raw-paste mode and its flow-control window
    out = mpremote(board, "exec", "import sys\nsys.path.insert(0, '/lib')\nimport big\nprint(big.x299)").stdout
    assert out.strip() == "598"
    mpremote(board, "fs", "rm", ":lib/big.py")
    assert not (board.flash_dir / "lib" / "big.py").exists()
    res = mpremote(board, "fs", "cat", ":nope.txt", check=False)
    assert res.returncode != 0 and "No such file" in res.stderr + res.stdout  # ENOENT as on a board


def test_raw_repl_puts_errors_in_the_error_section(board):
    with serial.Serial(board.port, 115200, timeout=0.1) as ser:
        ser.write(b"\r\x03\x01")
        time.sleep(0.3)
        ser.reset_input_buffer()
        ser.write(b"print('before')\n1/0\x04")
        deadline, seen = time.monotonic() + 10, b""
        while not seen.endswith(b"\x04>") and time.monotonic() < deadline:
            seen += ser.read(64)
    assert seen.startswith(b"OKbefore\n\x04Traceback (most recent call last):\r\n")
    assert seen.endswith(b"ZeroDivisionError: divide by zero\r\n\x04>")
    res = mpremote(board, "exec", "1/0", check=False)
    assert res.returncode != 0 and "ZeroDivisionError" in res.stdout + res.stderr


def test_hard_reset_runs_boot_and_main_and_keeps_flash(board):
    (board.flash_dir / "boot.py").write_text("print('boot.py ran')\n")
    (board.flash_dir / "main.py").write_text(
        "import machine\nprint('main.py ran, cause', machine.reset_cause())\n")
    with serial.Serial(board.port, 115200, timeout=0.1) as ser:
        mpremote(board, "reset")
        deadline, seen = time.monotonic() + 15, b""
        while b">>> " not in seen and time.monotonic() < deadline:
            seen += ser.read(256)
    assert b"rst:0xc (SW_CPU_RESET)" in seen
    assert seen.index(b"boot.py ran") < seen.index(b"main.py ran, cause 2") < seen.index(b">>> ")
    assert board.resets == 1


def test_ctrl_c_interrupts_a_running_program(board):
    with serial.Serial(board.port, 115200, timeout=0.1) as ser:
        ser.write(b"\r\x03\x01")
        time.sleep(0.3)
        ser.reset_input_buffer()
        ser.write(b"print('spinning')\nwhile True:\n    pass\n\x04")
        deadline, seen = time.monotonic() + 10, b""
        while b"spinning" not in seen and time.monotonic() < deadline:
            seen += ser.read(64)
        ser.write(b"\x03")
        while seen.count(b"\x04") < 2 and time.monotonic() < deadline:
            seen += ser.read(64)
    assert b"KeyboardInterrupt" in seen
    # the board is usable afterwards, with its flash intact
    assert mpremote(board, "exec", "print(6 * 7)").stdout.strip() == "42"


def test_friendly_repl_line(board):
    with serial.Serial(board.port, 115200, timeout=0.1) as ser:
        ser.write(b"\x02")
        time.sleep(0.3)
        ser.reset_input_buffer()
        ser.write(b"1 + 2\r")
        deadline, seen = time.monotonic() + 10, b""
        while b"3\r\n>>> " not in seen and time.monotonic() < deadline:
            seen += ser.read(64)
    assert b"1 + 2\r\n3\r\n>>> " in seen


def wait_for(board, text: bytes, timeout: float = 20) -> bool:
    end = time.monotonic() + timeout
    while text not in board.console and time.monotonic() < end:
        time.sleep(0.05)
    return text in board.console


def test_watchdog_survives_ctrl_c_and_soft_reset_and_resets_a_starved_board(tmp_path):
    # As on an ESP32: machine.WDT cannot be stopped; mpremote's Ctrl-C and soft
    # reset leave it running, and a board that stops feeding it is reset.
    main = ("import machine, time\nprint('cause', machine.reset_cause())\n"
            "wdt = machine.WDT(timeout=1500)\nwhile True:\n    wdt.feed()\n    time.sleep(0.1)\n")
    board = VirtualBoard(tmp_path / "flash", main_py=main).start()
    try:
        assert wait_for(board, b"cause 1\r\n")
        assert mpremote(board, "exec", "print(6 * 7)").stdout.strip() == "42"  # Ctrl-C, raw REPL, soft reset
        assert wait_for(board, b"rst:0x7 (TG0WDT_SYS_RESET)"), board.console[-300:]
        assert wait_for(board, b"cause 3\r\n")  # machine.WDT_RESET
        assert board.watchdog_resets == 1
        # A hard reset stops it: a main.py that starts none runs undisturbed.
        (board.flash_dir / "main.py").write_text("print('quiet')\n")
        mpremote(board, "reset")
        assert wait_for(board, b"quiet")
        time.sleep(2)
        assert board.watchdog_resets == 1
    finally:
        board.stop()
