"""A virtual MicroPython board on a pseudo-terminal, for tests and rehearsals.

`VirtualBoard(flash_dir).start()` opens a pty and serves MicroPython's serial
console on it: the friendly REPL, the raw REPL (Ctrl-A; Ctrl-D executes and
answers `OK`, output, `\\x04`, error, `\\x04`, `>`), raw-paste mode (Ctrl-E
`A\\x01`, answered `R\\x01` plus a 128-byte flow-control window, as an ESP32
does), Ctrl-B, Ctrl-C (clears the line, or interrupts a running program), and
soft reset (Ctrl-D). `board.port` is the device path to give to mpremote or
pyserial, exactly like /dev/ttyUSB0.

What it receives runs in a real MicroPython VM (the official WebAssembly
port, run by Node in virtual/wasmboard_runtime.mjs). The board's flash is a
directory on the host (`flash_dir`): it persists across soft and hard resets
and the tests can look into it. `machine.reset()` is a hard reset: a fresh
runtime, a ROM-style reset line, then boot.py and main.py, with their output
on the console, like a board. A module `machine` with reset, soft_reset,
reset_cause, unique_id, freq and WDT stands in for the board's; there are no
pins. The watchdog behaves as an ESP32's: once started it cannot be stopped,
it survives Ctrl-C and soft resets, and a board that does not feed it within
its timeout is hard-reset (reset cause WDT_RESET); only a hard reset clears it.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_SCRIPT = Path(__file__).resolve().parent / "wasmboard_runtime.mjs"
NODE_HINT = "the virtual board needs Node.js 20 and `npm ci` in the project root (setup.sh does both)"

BANNER = (b"MicroPython v1.27.0 on 2025-12-10; ESP32 (virtual board, WebAssembly VM) with ESP32\r\n"
          b'Type "help()" for more information.\r\n')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
ROM_RESET_LINE = b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
ROM_WDT_LINE = b"rst:0x7 (TG0WDT_SYS_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
KBD_INTERRUPT = b"Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\nKeyboardInterrupt: \r\n"
RAW_PASTE_WINDOW = 128  # an ESP32's MICROPY_REPL_STDIN_BUFFER_MAX (256) / 2

# machine.reset_cause() values of the ESP32 port
PWRON_RESET, HARD_RESET, WDT_RESET, SOFT_RESET = 1, 2, 3, 5

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5


class VirtualBoardError(RuntimeError):
    pass


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "@micropython").is_dir()


class _Interrupted(Exception):
    pass


class _WatchdogReset(Exception):
    pass


class VirtualBoard:
    def __init__(self, flash_dir: Path, *, main_py: str | None = None):
        self.flash_dir = Path(flash_dir)
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        if main_py is not None:
            (self.flash_dir / "main.py").write_text(main_py)
        self.console = bytearray()  # everything the board wrote to its serial port
        self.resets = 0  # hard resets seen
        self.watchdog_resets = 0  # resets by a starved watchdog
        self._wdt: tuple[float, float] | None = None  # (timeout s, last feed) while the watchdog runs
        self._inq: queue.Queue[int | None] = queue.Queue()
        self._interrupt = threading.Event()
        self._busy = False
        self._stopping = False
        self._node: subprocess.Popen | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------

    def start(self) -> "VirtualBoard":
        if not node_available():
            raise VirtualBoardError(NODE_HINT)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # a board's port passes bytes untouched
        self.port = os.ttyname(self._slave)
        self._start_runtime(PWRON_RESET)
        self._reader = threading.Thread(target=self._read_pty, name="vboard-pty", daemon=True)
        self._reader.start()
        self._thread = threading.Thread(target=self._serve, name="vboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._interrupt.set()
        self._inq.put(None)
        self._thread.join(10)
        self._kill_runtime()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- the runtime (Node child) ---------------------------------------------

    def _start_runtime(self, cause: int) -> None:
        self._kill_runtime()
        self._node = subprocess.Popen(
            ["node", str(RUNTIME_SCRIPT), str(self.flash_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT),
        )
        self._nodebuf = b""
        self._send({"op": "boot", "cause": cause})
        reply = self._reply_line(timeout=30)
        if reply is None or not reply.get("done"):
            raise VirtualBoardError(f"the MicroPython runtime did not start: {reply!r}")

    def _kill_runtime(self) -> None:
        if self._node is not None and self._node.poll() is None:
            self._node.kill()
            self._node.wait(10)
        self._node = None

    def _send(self, obj: dict) -> None:
        self._node.stdin.write((json.dumps(obj) + "\n").encode())
        self._node.stdin.flush()

    def _reply_line(self, timeout: float | None = None) -> dict | None:
        # Own line buffer over the raw pipe: select() cannot see what a
        # buffered reader already holds.
        fd = self._node.stdout.fileno()
        while b"\n" not in self._nodebuf:
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise VirtualBoardError("the MicroPython runtime exited")
            self._nodebuf += chunk
        line, _, rest = self._nodebuf.partition(b"\n")
        self._nodebuf = rest
        return json.loads(line)

    def _run(self, op: str, code: str, cooked: bool) -> tuple[bytes | None, str | None]:
        """Run code; stream its output to the console. Returns (error, reset kind).
        A Ctrl-C while it runs kills the runtime (the only way to stop a
        WebAssembly VM mid-instruction) and restarts it on the same flash."""
        self._interrupt.clear()
        self._busy = True
        try:
            self._send({"op": op, "code": code})
            while True:
                if self._interrupt.is_set():
                    self._start_runtime(SOFT_RESET)
                    raise _Interrupted()
                self._check_watchdog()
                msg = self._reply_line(timeout=0.05)
                if msg is None:
                    continue
                if "wdt" in msg:
                    self._wdt = (msg["wdt"] / 1000, time.monotonic())
                elif "feed" in msg:
                    if self._wdt is not None:
                        self._wdt = (self._wdt[0], time.monotonic())
                elif "out" in msg:
                    data = msg["out"].encode("latin-1")
                    self._write(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if cooked else data)
                elif msg.get("done"):
                    err = msg.get("error")
                    return (err.encode("utf-8", "replace") if err else None), msg.get("reset")
        finally:
            self._busy = False

    # ---- serial side ---------------------------------------------------------

    def _read_pty(self) -> None:
        while not self._stopping:
            try:
                data = os.read(self._master, 4096)
            except OSError:
                break
            if not data:
                break
            for byte in data:
                if byte == CTRL_C and self._busy:
                    self._interrupt.set()  # a keyboard interrupt, not input
                else:
                    self._inq.put(byte)
        self._inq.put(None)

    def _write(self, data: bytes) -> None:
        self.console += data
        view = memoryview(data)
        while view:
            # A closed host port drops output after a while, like a USB-UART bridge.
            if not select.select([], [self._master], [], 2.0)[1]:
                return
            try:
                n = os.write(self._master, view)
            except OSError:
                return
            view = view[n:]

    def _getc(self) -> int:
        while True:
            try:
                c = self._inq.get(timeout=0.05)
                break
            except queue.Empty:
                self._check_watchdog()
        if c is None or self._stopping:
            raise _Stop()
        return c

    def _check_watchdog(self) -> None:
        if self._wdt is not None and time.monotonic() - self._wdt[1] > self._wdt[0]:
            raise _WatchdogReset()

    # ---- the board -----------------------------------------------------------

    def _serve(self) -> None:
        mode = "power_on"
        try:
            while True:
                try:
                    if mode == "power_on":
                        mode = self._boot(PWRON_RESET, run_main=True, rom_line=False)
                    elif mode == "watchdog":
                        mode = self._reset("watchdog", "friendly")
                    else:
                        mode = self._friendly() if mode == "friendly" else self._raw()
                except _WatchdogReset:
                    mode = "watchdog"
        except (_Stop, VirtualBoardError):
            pass

    def _boot(self, cause: int, run_main: bool, rom_line: bool) -> str:
        """Run boot.py and (in friendly mode) main.py; return the REPL mode to enter."""
        if rom_line:
            self._write(ROM_WDT_LINE if cause == WDT_RESET else ROM_RESET_LINE)
        for name in ("boot.py", "main.py") if run_main else ("boot.py",):
            path = self.flash_dir / name
            if not path.is_file():
                continue
            try:
                err, reset = self._run("exec", path.read_text(errors="replace"), cooked=True)
            except _Interrupted:
                self._write(KBD_INTERRUPT)
                break
            if err:
                self._write(err)
            if reset:
                return self._reset(reset, "friendly")
        if run_main:
            self._write(BANNER + b">>> ")
            return "friendly"
        return "raw"

    def _reset(self, kind: str, mode: str) -> str:
        if kind in ("hard", "watchdog"):
            self.resets += 1
            self._wdt = None  # only a hard reset stops the watchdog
            cause = HARD_RESET
            if kind == "watchdog":
                self.watchdog_resets += 1
                cause = WDT_RESET
            self._start_runtime(cause)
            return self._boot(cause, run_main=True, rom_line=True)
        self._start_runtime(SOFT_RESET)
        if mode == "raw":
            self._write(b"soft reboot\r\n")
            self._boot(SOFT_RESET, run_main=False, rom_line=False)
            self._write(RAW_BANNER + b">")
            return "raw"
        self._write(b"MPY: soft reboot\r\n")
        return self._boot(SOFT_RESET, run_main=True, rom_line=False)

    def _friendly(self) -> str:
        line = bytearray()
        while True:
            c = self._getc()
            if c == CTRL_A:
                self._write(b"\r\n" + RAW_BANNER + b">")
                return "raw"
            if c == CTRL_B:
                self._write(b"\r\n" + BANNER + b">>> ")
                line.clear()
            elif c == CTRL_C:
                self._write(b"\r\n>>> ")
                line.clear()
            elif c == CTRL_D:
                if not line:
                    self._write(b"\r\n")
                    return self._reset("soft", "friendly")
            elif c == 0x0D:
                self._write(b"\r\n")
                if line.strip():
                    try:
                        err, reset = self._run("single", line.decode(errors="replace"), cooked=True)
                    except _Interrupted:
                        err, reset = KBD_INTERRUPT, None
                    if err:
                        self._write(err)
                    if reset:
                        return self._reset(reset, "friendly")
                line.clear()
                self._write(b">>> ")
            elif c in (0x08, 0x7F):
                if line:
                    line.pop()
                    self._write(b"\x08 \x08")
            elif c >= 0x20 or c == 0x09:
                line.append(c)
                self._write(bytes([c]))

    def _raw(self) -> str:
        line = bytearray()
        while True:
            c = self._getc()
            if c == CTRL_A:
                self._write(b"\r\n" + RAW_BANNER + b">")  # re-enter: a fresh raw prompt
                line.clear()
            elif c == CTRL_B:
                self._write(b"\r\n" + BANNER + b">>> ")
                return "friendly"
            elif c == CTRL_C:
                line.clear()
            elif c == CTRL_E and not line:
                code = self._raw_paste()
                if code is None:
                    continue
                mode = self._execute_raw(code)
                if mode:
                    return mode
            elif c == CTRL_D:
                if not line:
                    return self._reset("soft", "raw")
                self._write(b"OK")
                mode = self._execute_raw(bytes(line))
                line.clear()
                if mode:
                    return mode
            else:
                line.append(c)

    def _raw_paste(self) -> bytes | None:
        """Raw-paste mode with MicroPython's flow control: the window size up
        front, then 0x01 each time the host may send another window."""
        if bytes([self._getc(), self._getc()]) != b"A\x01":
            self._write(b"R\x00")  # understood, not supported for this request
            return None
        self._write(b"R\x01" + RAW_PASTE_WINDOW.to_bytes(2, "little") + b"\x01")
        code = bytearray()
        remain = RAW_PASTE_WINDOW
        while True:
            c = self._getc()
            if c in (CTRL_C, CTRL_D):
                self._write(b"\x04")
                if c == CTRL_C:
                    self._write(b"\x04" + KBD_INTERRUPT + b"\x04>")
                    return None
                return bytes(code)
            code.append(c)
            remain -= 1
            if remain == 0:
                self._write(b"\x01")
                remain = RAW_PASTE_WINDOW

    def _execute_raw(self, code: bytes) -> str | None:
        """Run one raw-REPL command; return a new mode if the board reset."""
        try:
            err, reset = self._run("exec", code.decode(errors="replace"), cooked=False)
        except _Interrupted:
            err, reset = KBD_INTERRUPT, None
        if reset:
            return self._reset(reset, "raw")
        self._write(b"\x04" + (err or b"") + b"\x04>")
        return None


class _Stop(Exception):
    pass
