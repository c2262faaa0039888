"""`seatmon flash`: find desk units on USB and provision them.

    seatmon flash ports [--json]
    seatmon flash provision --site site.toml --unit U --port P [--dry-run]
    seatmon flash provision --site site.toml --all [--dry-run]

Provisioning first stops the unit (a /provisioning flag and a hard reset: the
unit's watchdog would otherwise reset the board mid-copy), looks at what the
board runs (chip, image, PSRAM, ROMFS support: `os.uname().machine`,
`esp32.idf_heap_info`, `vfs.rom_ioctl`) and chooses how the code goes there
(`choose_deployment`): on a stock MicroPython image, the code (firmware and
shared packages compiled with mpy-cross for the bytecode version the board
reports) as .mpy files in /lib; on the custom image a hardware revision
declares (`firmware = "custom-romfs"`, deploy/firmware/), one ROMFS image for
the board's romfs partition, which MicroPython mounts at /rom and runs in
place from flash. A board whose image cannot hold the unit (an ESP32 without
PSRAM on a stock image: tools/images.py) or lacks what its revision needs is
refused in one line naming the image to flash, and nothing is written. Then
on its LittleFS /main.py, /boot.py, /config.json, /board.json, /secrets.json,
/ca.pem (shared/boardfiles.py). It hashes what is on the board in one pass
(the image in the partition too), deploys the image with `mpremote romfs
deploy` and copies the files with `mpremote fs cp`, each only when it
differs, deletes modules under /lib/firmware and /lib/shared that the
deployment does not have, resets the board and waits for its boot self-test
line (shared/console.py). Re-running is safe and writes nothing when the
board is up to date.

`--no-romfs` copies the code to /lib whatever the revision declares (a lab
board, and the WebAssembly test board, whose VM has no VfsRom).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import serial
import serial.tools.list_ports
from mpremote.romfs import VfsRomWriter

from shared import boardfiles, console
from tools import images
from tools import inventory as inv
from tools import broker_config
from tools.broker_config import OTA_KEY
from tools.micropython import ROOT, compile_file, mpy_cross_binary

PACKAGES = ("shared", "firmware")  # -> lib/shared, lib/firmware in the ROMFS image (or /lib on LittleFS)
ROM = "/rom"  # the plan's name for the ROMFS image: MicroPython mounts the romfs partition there
NO_ROMFS_PARTITION = ("the board has no romfs partition: flash the custom image with its partition table "
                      "(deploy/firmware/, docs/technicians.md)")
MAIN_SOURCE = ROOT / "firmware" / "main.py"  # the unit's /main.py, when the firmware has one
BOOT_SOURCE = ROOT / "firmware" / "boot.py"  # the unit's /boot.py
# Not modules the unit imports: the entry points go to / (above), scenario.py
# is the host's scenario runner.
NOT_IN_LIB = ("firmware/main.py", "firmware/boot.py", "firmware/scenario.py")
SELFTEST_TIMEOUT = 30.0

# USB VID:PID of the serial bridges found on ESP32 boards (pid None: any).
ESP32_USB_IDS = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x55D4): "CH9102",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6010): "FTDI FT2232",
    (0x0403, 0x6014): "FTDI FT232H",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x303A, None): "Espressif native USB",
}


class FlashError(RuntimeError):
    pass


# ---- ports -------------------------------------------------------------------

def usb_chip(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return ESP32_USB_IDS.get((vid, pid)) or ESP32_USB_IDS.get((vid, None))


def list_ports() -> list[dict]:
    """Serial ports, likely ESP32 boards first."""
    rows = []
    for p in serial.tools.list_ports.comports():
        chip = usb_chip(p.vid, p.pid)
        rows.append({
            "device": p.device,
            "usb_id": f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else "",
            "chip": chip or "",
            "likely_esp32": chip is not None,
            "description": p.description if p.description != "n/a" else "",
            "serial_number": p.serial_number or "",
        })
    rows.sort(key=lambda r: (not r["likely_esp32"], r["device"]))
    return rows


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- the files of a unit ------------------------------------------------------

@dataclass
class DeviceFile:
    path: str  # on the board, e.g. /lib/firmware/core.mpy
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def mpy_cross_version() -> tuple[int, int]:
    out = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise FlashError(f"cannot read mpy-cross's bytecode version from {out!r}")
    return int(m.group(1)), int(m.group(2))


def board_mpy_version(mpy: int) -> tuple[int, int]:
    """sys.implementation._mpy -> (version, sub-version)."""
    return mpy & 0xFF, (mpy >> 8) & 3


def firmware_files(compiled: bool, root: Path = ROOT) -> list[DeviceFile]:
    """The packages as the board gets them: .mpy when the board runs
    mpy-cross's bytecode version, else the sources."""
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            for src in sorted((root / package).rglob("*.py")):
                rel = src.relative_to(root).as_posix()
                if rel in NOT_IN_LIB:
                    continue
                if not compiled:
                    files.append(DeviceFile("/lib/" + rel, src.read_bytes()))
                    continue
                out = Path(tmp) / (rel.replace("/", "_") + ".mpy")
                # -s: a stable source name, so the same source gives the same bytes
                res = compile_file(src, out, extra_args=("-s", rel))
                if res.returncode != 0:
                    raise FlashError(f"mpy-cross rejected {rel}:\n{(res.stderr or res.stdout).strip()}")
                files.append(DeviceFile("/lib/" + rel[:-3] + ".mpy", out.read_bytes()))
    return files


def romfs_image(files: list[DeviceFile]) -> bytes:
    """One ROMFS image (mpremote's format) holding `files` under their paths:
    /lib/firmware/core.mpy is lib/firmware/core.mpy in the image, so
    /rom/lib/firmware/core.mpy on the board. Sorted: the same files give the
    same bytes."""
    tree: dict = {}
    for f in files:
        *dirs, name = f.path.strip("/").split("/")
        node = tree
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = f.data
    writer = VfsRomWriter()

    def add(node: dict) -> None:
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                add(node[name])
                writer.closedir()
            else:
                writer.mkfile(name, node[name])

    add(tree)
    return writer.finalise()


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def unit_files(site: inv.Site, unit: dict, mpy: int | None, credentials: dict[str, str],
               main_source: Path | None = None, romfs: bool = False) -> tuple[list[DeviceFile], str]:
    """Everything the unit's flash should hold, and a note on the code format:
    the code as one ROMFS image (path ROM), or with romfs=False as files in /lib."""
    main_source = main_source or MAIN_SOURCE
    compiled = mpy is not None and board_mpy_version(mpy) == mpy_cross_version()
    if mpy is None:
        note = "board bytecode version unknown: sources"
    elif compiled:
        note = "mpy v%d.%d" % board_mpy_version(mpy)
    else:
        note = "board runs mpy v%d.%d, mpy-cross makes v%d.%d: sources" % (board_mpy_version(mpy) + mpy_cross_version())
    files = firmware_files(compiled)
    if romfs:
        files = [DeviceFile(ROM, romfs_image(files))]
        note += ", one ROMFS image run in place from the romfs partition"
    else:
        note += ", in /lib (loaded into RAM)"
    if main_source.is_file():
        files.append(DeviceFile("/main.py", main_source.read_bytes()))
    files.append(DeviceFile("/boot.py", BOOT_SOURCE.read_bytes()))
    return files + board_files(site, unit, credentials), note


def board_files(site: inv.Site, unit: dict, credentials: dict[str, str]) -> list[DeviceFile]:
    """The unit's own files (shared/boardfiles.py): config.json, board.json,
    secrets.json, and the broker's CA when the link uses TLS."""
    conf = inv.unit_config(site, unit)
    inv.validate_with_firmware(conf)
    files = [DeviceFile("/" + boardfiles.CONFIG, _json_bytes(conf)),
             DeviceFile("/" + boardfiles.BOARD, _json_bytes(inv.board_config(site, unit)))]
    if unit["id"] not in credentials:
        raise FlashError(f"no MQTT password for {unit['id']} in the credentials file: run `seatmon broker config` first")
    secrets = inv.unit_secrets(site, unit, credentials[unit["id"]])
    if OTA_KEY in credentials:  # the site's update key: the unit takes updates signed with it only
        secrets[OTA_KEY] = credentials[OTA_KEY]
    files.append(DeviceFile("/" + boardfiles.SECRETS, _json_bytes(secrets)))
    if inv.broker_tls(site):
        ca = site.relative(site.data["broker"]["ca"])
        line = site.index.line(("broker", "ca"))
        if not ca.is_file():
            raise FlashError(f"{site.path}:{line}: broker.ca: no such file {ca}: the unit could not "
                             "verify the broker (copy the site CA there, or set tls = false for a lab broker)")
        files.append(DeviceFile("/" + boardfiles.CA, ca.read_bytes()))
    return files


# ---- talking to the board (the real mpremote) ------------------------------------

_SCAN = r"""
import os, sys, json
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
def walk(d, out):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            walk(p, out)
        else:
            out.append(p)

def romfs():
    # None: no ROMFS support; else the partitions, the first one's size and
    # the SHA-256 of the image it holds (None: no valid image).
    try:
        import vfs
        ioctl = vfs.rom_ioctl
    except (ImportError, AttributeError):
        return None
    n = ioctl(1)
    if n <= 0:
        return {'partitions': 0}
    dev = ioctl(2, 0)
    if hasattr(dev, 'ioctl'):
        size = dev.ioctl(4, 0) * dev.ioctl(5, 0)
    else:
        size = len(dev)
    def read(off, length):
        b = bytearray(length)
        if hasattr(dev, 'readblocks'):
            dev.readblocks(0, b, off)
        else:
            b[:] = memoryview(dev)[off:off + length]
        return b
    head = read(0, 16)
    found = {'partitions': n, 'size': size, 'sha256': None}
    if head[:3] != b'\xd2\xcd\x31' or hashlib is None:
        return found
    length, i = 0, 3
    while i < 16:
        length = (length << 7) | (head[i] & 0x7f)
        i += 1
        if not head[i - 1] & 0x80:
            break
    length += i
    h = hashlib.sha256()
    off = 0
    while off < length:
        h.update(read(off, min(512, length - off)))
        off += 512
    found['sha256'] = binascii.hexlify(h.digest()).decode()
    return found
def board():
    # what the board runs: os.uname().machine names the image and the chip;
    # a PSRAM region of ESP-IDF's heap (over 512 KiB) is the module's PSRAM.
    found = {'machine': None, 'psram_kib': None}
    try:
        found['machine'] = os.uname().machine
    except AttributeError:
        pass
    try:
        import esp32
        heaps = esp32.idf_heap_info(esp32.HEAP_DATA)
        found['psram_kib'] = sum(h[0] for h in heaps if h[0] >= 524288) // 1024
    except (ImportError, AttributeError):
        pass
    try:
        import machine, binascii
        found['uid'] = binascii.hexlify(machine.unique_id()).decode()
    except (ImportError, AttributeError):
        found['uid'] = None
    import gc
    gc.collect()
    found['gc_free'] = gc.mem_free()
    return found
files = %(paths)r
for d in ('/lib/shared', '/lib/firmware'):
    walk(d, files)
res = {}
for p in files:
    if p in res:
        continue
    try:
        f = open(p, 'rb')
    except OSError:
        continue
    if hashlib is None:
        res[p] = None
        f.close()
        continue
    h = hashlib.sha256()
    while True:
        b = f.read(512)
        if not b:
            break
        h.update(b)
    f.close()
    res[p] = binascii.hexlify(h.digest()).decode()
print('@@scan@@' + json.dumps({'mpy': getattr(sys.implementation, '_mpy', None), 'files': res,
                               'romfs': romfs(), 'board': board()}))
"""


def _action(args) -> str:
    """What mpremote was asked, for a message: its words, never a script it was given."""
    return " ".join(a for a in args[:2] if "\n" not in a and len(a) <= 40)


def mpremote(port: str, *args: str, timeout: float = 120) -> str:
    cmd = [sys.executable, "-m", "mpremote", "connect", port, *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"mpremote {_action(args)} on {port}: no answer within {timeout:.0f} s") from None
    if res.returncode != 0:
        raise FlashError(f"mpremote {_action(args)} on {port} failed: {(res.stderr or res.stdout).strip()}")
    return res.stdout


def scan_board(port: str, paths: list[str]) -> tuple[int | None, dict[str, str | None], dict | None, dict]:
    """(sys.implementation._mpy, {path: sha256 hex}, the romfs partition:
    None without ROMFS support, else {partitions, size, sha256 of its image},
    what it runs: {machine, psram_kib, gc_free}) of the board, in one exec."""
    out = mpremote(port, "exec", _SCAN % {"paths": paths})
    for line in out.splitlines():
        if line.startswith("@@scan@@"):
            found = json.loads(line[len("@@scan@@"):])
            return found["mpy"], found["files"], found["romfs"], found["board"]
    raise FlashError(f"the board on {port} did not answer the file scan; it printed:\n{out[-1000:]}")


@dataclass
class Plan:
    unit: str
    port: str
    note: str
    copy: list[tuple[DeviceFile, str]] = field(default_factory=list)  # (file, "new"|"changed")
    delete: list[str] = field(default_factory=list)
    unchanged: int = 0

    def text(self) -> str:
        lines = [f"unit {self.unit} on {self.port}: code as {self.note}"]
        lines += [f"  {'deploy' if f.path == ROM else 'copy  '} {f.path} ({why}, {len(f.data)} bytes"
                  f"{', the ROMFS image' if f.path == ROM else ''})" for f, why in self.copy]
        lines += [f"  delete {p} (not in this firmware)" for p in self.delete]
        lines.append(f"  keep   {self.unchanged} file(s) already up to date")
        lines.append("  then   reset and wait for the boot self-test line")
        return "\n".join(lines)


def choose_deployment(site: inv.Site, unit: dict, rom: dict | None, board: dict,
                      override: bool | None = None) -> tuple[bool, str]:
    """How the code goes to this board: (True: one ROMFS image, False: .mpy
    files in /lib, what the board runs). `override` (--no-romfs: False) wins
    over the revision. A board that cannot run the unit raises FlashError in
    one line naming the image to flash."""
    rev = unit["hardware"]
    hw = site.data["hardware"][rev]
    declared = images.IMAGES[hw.get("firmware") or images.default_for(hw["board"])]
    chip = images.chip_of_machine(board.get("machine"))
    if chip is not None and chip != hw["board"]:
        raise FlashError(f"the board is an {chip}, hardware revision {rev} is an {hw['board']}: "
                         f"wrong board, or the unit's hardware revision is wrong in {site.path.name}")
    running = images.by_machine(board.get("machine"))
    psram = board.get("psram_kib")
    seen = "%s%s" % (running.name if running else board.get("machine") or "a MicroPython",
                     "" if psram is None else f", {psram} KiB of PSRAM" if psram else ", no PSRAM")
    if override is False:
        return False, seen
    if override or declared.romfs:
        if rom is None:
            raise FlashError(f"the board runs {seen}, without ROMFS: hardware revision {rev} runs the custom "
                             f"image {declared.name}: flash it ({declared.download})")
        if rom["partitions"] == 0:
            raise FlashError(NO_ROMFS_PARTITION)
        return True, seen
    image = running or declared
    why = images.too_small(image.name, psram or 0)
    if why and psram is not None:
        raise FlashError(f"the board runs {seen}: {why}")
    return False, seen


def check_board_identity(site: inv.Site, unit: dict, uid: str | None) -> str:
    """Refuse a board (by its machine.unique_id()) that the site file gives
    to another unit or that is not the unit's own; returns a note for the
    plan. Its chip is checked against the revision by choose_deployment."""
    if uid is None:
        return "board uid unknown"
    for other in site.units:
        if other.get("uid") == uid and other["id"] != unit["id"]:
            raise FlashError(f"this board (uid {uid}) is unit {other['id']} in the site file: two units "
                             f"cannot share one board")
    if unit.get("uid") not in (None, uid):
        raise FlashError(f"this board's uid is {uid}, but the site file gives unit {unit['id']} the board "
                         f"{unit['uid']}: a board swap? set uid = \"{uid}\" for {unit['id']} first")
    if unit.get("uid") is None:
        return f"board uid {uid} (add uid = \"{uid}\" to unit {unit['id']} in the site file)"
    return f"board uid {uid}"


def make_plan(site: inv.Site, unit: dict, port: str, credentials: dict[str, str],
              romfs: bool | None = None) -> Plan:
    mpy, _, rom, board = scan_board(port, [])
    romfs, seen = choose_deployment(site, unit, rom, board, romfs)
    identity = check_board_identity(site, unit, board.get("uid"))
    files, note = unit_files(site, unit, mpy, credentials, romfs=romfs)
    free = "" if board.get("gc_free") is None else f", {board['gc_free'] // 1024} KiB of GC heap free"
    note = f"{seen}{free}; {note}"
    if romfs and len(files[0].data) > rom["size"]:
        raise FlashError(f"the firmware's ROMFS image ({len(files[0].data)} bytes) does not fit the board's romfs "
                         f"partition ({rom['size']} bytes): make the partition larger (docs/technicians.md)")
    _, on_board, rom, _ = scan_board(port, [f.path for f in files if f.path != ROM])
    if romfs and rom["sha256"] is not None:
        on_board[ROM] = rom["sha256"]
    plan = Plan(unit["id"], port, note + "; " + identity)
    wanted = {f.path for f in files}
    for f in files:
        have = on_board.get(f.path, "absent")
        if have == f.sha256:
            plan.unchanged += 1
        else:
            plan.copy.append((f, "new" if have == "absent" else "changed"))
    plan.delete = sorted(p for p in on_board if p.startswith("/lib/") and p not in wanted)
    return plan


def progress(done: int, total: int, label: str, stream=None) -> None:
    stream = stream or sys.stderr
    width = 30
    filled = width * done // total if total else width
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:<40}")
    if done == total:
        stream.write("\n")
    stream.flush()


def apply_plan(plan: Plan, show_progress: bool = True) -> None:
    steps = len(plan.copy) + len(plan.delete)
    dirs = sorted({os.path.dirname(f.path) for f, _ in plan.copy if f.path != ROM} - {"/"})
    if dirs:
        make = "import os\nfor d in %r:\n    p = ''\n    for part in d.strip('/').split('/'):\n" \
               "        p += '/' + part\n        try:\n            os.mkdir(p)\n        except OSError:\n            pass\n"
        mpremote(plan.port, "exec", make % (dirs,))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (f, _) in enumerate(plan.copy):
            if show_progress:
                progress(i, steps, f.path)
            local = Path(tmp) / f"f{i}"
            # Credentials never sit readable on the host, even in a temp file.
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(f.data)
            if f.path == ROM:  # mpremote takes a file ending .romfs or .img as a ready image
                image = local.with_suffix(".romfs")
                local.rename(image)
                mpremote(plan.port, "romfs", "deploy", str(image))
                image.unlink()
            else:
                mpremote(plan.port, "fs", "cp", str(local), ":" + f.path)
                local.unlink()
    for j, path in enumerate(plan.delete):
        if show_progress:
            progress(len(plan.copy) + j, steps, "rm " + path)
        mpremote(plan.port, "fs", "rm", ":" + path)
    if show_progress:
        progress(steps, steps, "done")


# ---- reset and self-test --------------------------------------------------------

@dataclass
class SelfTest:
    ok: bool
    line: str  # the self-test line, or why there is none
    output: str  # everything the board printed after the reset


# Raw-REPL code: set or clear the hold flag, then hard-reset (which also
# stops the watchdog; nothing else can on an ESP32).
HOLD_AND_RESET = "f = open('/%s', 'w')\nf.close()\nimport machine\nmachine.reset()" % boardfiles.HOLD
RELEASE_AND_RESET = ("import os\ntry:\n    os.remove('/%s')\nexcept OSError:\n    pass\n"
                     "import machine\nmachine.reset()" % boardfiles.HOLD)


def _raw_reset(ser, code: str, deadline: float) -> None:
    ser.write(b"\r\x03\x03")
    time.sleep(0.2)
    ser.reset_input_buffer()
    ser.write(b"\r\x01")
    _read_until(ser, b"raw REPL; CTRL-B to exit\r\n>", deadline)
    ser.write(code.encode() + b"\x04")
    _read_until(ser, b"OK", deadline)


def hold_board(port: str, timeout: float = SELFTEST_TIMEOUT) -> None:
    """Stop the unit for the copy: set /provisioning and hard-reset, so the
    board comes back to its REPL without the unit and without a running
    watchdog (an ESP32's survives Ctrl-C and the soft resets mpremote does,
    and would reset the board mid-copy). reset_and_watch clears the flag."""
    deadline = time.monotonic() + timeout
    ser = serial.Serial(port, 115200, timeout=0.1)
    try:
        _raw_reset(ser, HOLD_AND_RESET, deadline)
        while True:
            try:
                # main.py waits for the copy (bounded, without a watchdog): Ctrl-C
                # ends the wait. (An older main.py went straight to the REPL.)
                if not _read_until(ser, (b">>> ", b"provisioning not finished"), deadline).endswith(b">>> "):
                    ser.write(b"\x03")
                    _read_until(ser, b">>> ", deadline)
                return
            except serial.SerialException:  # native USB re-enumerating after the reset
                ser.close()
                ser = _reopen(port, deadline)
                if ser is None:
                    raise FlashError(f"the board on {port} did not come back after the reset") from None
    finally:
        if ser is not None:
            ser.close()


def release_board(port: str, timeout: float = SELFTEST_TIMEOUT) -> None:
    """Clear the hold flag and hard-reset, without waiting for the unit."""
    ser = serial.Serial(port, 115200, timeout=0.1)
    try:
        _raw_reset(ser, RELEASE_AND_RESET, time.monotonic() + timeout)
    finally:
        ser.close()


def reset_and_watch(port: str, timeout: float = SELFTEST_TIMEOUT) -> SelfTest:
    """Clear the hold flag, hard-reset the board from its raw REPL and read its
    console until the self-test line or the timeout. A port that vanishes
    (native USB re-enumerating) is reopened until the deadline."""
    deadline = time.monotonic() + timeout
    captured = bytearray()
    ser = serial.Serial(port, 115200, timeout=0.1)
    try:
        _raw_reset(ser, RELEASE_AND_RESET, deadline)
        line = b""
        while time.monotonic() < deadline:
            try:
                chunk = ser.read(256)
            except serial.SerialException:
                ser.close()
                ser = _reopen(port, deadline)
                if ser is None:
                    break
                continue
            captured += chunk
            line += chunk
            while b"\n" in line:
                one, _, line = line.partition(b"\n")
                found = console.parse_selftest(one.decode("utf-8", "replace"))
                if found is not None:
                    text = one.decode("utf-8", "replace").strip()
                    return SelfTest(found[0], text, captured.decode("utf-8", "replace"))
        return SelfTest(False, f"no self-test line within {timeout:.0f} s",
                        captured.decode("utf-8", "replace"))
    finally:
        if ser is not None:
            ser.close()


def _read_until(ser, ending: bytes | tuple[bytes, ...], deadline: float) -> bytes:
    data = b""
    while not data.endswith(ending):
        if time.monotonic() > deadline:
            raise FlashError(f"the board on {ser.port} did not answer (waiting for {ending!r}, got {data[-200:]!r})")
        data += ser.read(1)
    return data


def _reopen(port: str, deadline: float):
    while time.monotonic() < deadline:
        try:
            return serial.Serial(port, 115200, timeout=0.1)
        except serial.SerialException:
            time.sleep(0.2)
    return None


# ---- provision -----------------------------------------------------------------

@dataclass
class Result:
    unit: str
    port: str
    copied: int = 0
    deleted: int = 0
    unchanged: int = 0
    selftest: SelfTest | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.selftest is not None and self.selftest.ok


def load_credentials(site: inv.Site) -> dict[str, str]:
    return broker_config.read_credentials(site, FlashError)


def provision(site: inv.Site, unit: dict, port: str, *, dry_run: bool = False,
              timeout: float = SELFTEST_TIMEOUT, show_progress: bool = True, out=None,
              romfs: bool | None = None) -> Result:
    out = out or sys.stdout
    result = Result(unit["id"], port)
    try:
        credentials = load_credentials(site)
        if not dry_run:
            hold_board(port, timeout)
        try:
            plan = make_plan(site, unit, port, credentials, romfs)
        except (FlashError, boardfiles.FileError, inv.InventoryError):
            if not dry_run:
                release_board(port, timeout)  # nothing was written: the unit runs on as it was
            raise
        print(plan.text(), file=out)
        result.copied, result.deleted, result.unchanged = len(plan.copy), len(plan.delete), plan.unchanged
        if dry_run:
            return result
        apply_plan(plan, show_progress)
        result.selftest = reset_and_watch(port, timeout)
    except (FlashError, inv.InventoryError, boardfiles.FileError, OSError, serial.SerialException) as exc:
        result.error = str(exc)
    return result


def summary(results: list[Result], dry_run: bool) -> str:
    rows = []
    for r in results:
        if r.error:
            verdict = "ERROR: " + r.error.splitlines()[0][:60]
        elif dry_run:
            verdict = "planned"
        else:
            verdict = ("PASS " if r.selftest.ok else "FAIL ") + r.selftest.line
        rows.append([r.unit, r.port, r.copied, r.deleted, r.unchanged, verdict])
    return table(["unit", "port", "copied", "deleted", "unchanged", "result"], rows)


# ---- CLI ---------------------------------------------------------------------

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="flash_command", metavar="ACTION", required=True)
    p = sub.add_parser("ports", help="list serial ports, likely ESP32 boards first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("provision", help="install firmware, config and credentials on desk units")
    p.add_argument("--site", required=True, type=Path, help="the site inventory (site.toml)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--unit", help="the unit id in the inventory")
    who.add_argument("--all", action="store_true", help="every unit with a `port` in the inventory, one after another")
    p.add_argument("--port", help="serial port of the board (default: the unit's `port` in the inventory)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--timeout", type=float, default=SELFTEST_TIMEOUT, help="seconds to wait for the self-test line")
    p.add_argument("--no-romfs", action="store_true",
                   help="copy the code to /lib even where the hardware revision declares the custom ROMFS image "
                        "(by default the board and its revision decide)")


def _no_such_port(port: str) -> bool:
    """A device path that does not exist (checked before mpremote, whose own
    error would come after the whole script it was asked to run). Other port
    forms mpremote knows (COM3, a0, rfc2217://...) are left to it."""
    return port.startswith("/") and not os.path.exists(port)


def main(args) -> int:
    if args.flash_command == "ports":
        rows = list_ports()
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            print(table(["port", "usb id", "chip", "esp32?", "description"],
                        [[r["device"], r["usb_id"], r["chip"], "likely" if r["likely_esp32"] else "",
                          r["description"]] for r in rows]))
        return 0
    try:
        site = inv.load(args.site)
        if args.all:
            targets = [(u, u.get("port")) for u in site.units]
        else:
            unit = site.unit(args.unit)
            targets = [(unit, args.port or unit.get("port"))]
    except (inv.InventoryError, OSError) as exc:
        print(f"seatmon flash: {exc}", file=sys.stderr)
        return 2
    if args.port and _no_such_port(args.port):
        print(f"seatmon flash: no serial port {args.port} on this machine (`seatmon flash ports` lists them)",
              file=sys.stderr)
        return 2
    results = []
    for unit, port in targets:
        if not port:
            results.append(Result(unit["id"], "-", error="no port (give --port or set `port` in the inventory)"))
            continue
        if _no_such_port(port):
            print(f"{unit['id']}: no serial port {port} on this machine", file=sys.stderr)
            results.append(Result(unit["id"], port, error="no such serial port"))
            continue
        r = provision(site, unit, port, dry_run=args.dry_run, timeout=args.timeout,
                      romfs=False if args.no_romfs else None)
        if r.error:
            print(f"{unit['id']}: {r.error}", file=sys.stderr)
        if r.selftest is not None and not r.selftest.ok:
            print(f"{unit['id']}: {r.selftest.line}; the board printed:\n{r.selftest.output}", file=sys.stderr)
        results.append(r)
    print(summary(results, args.dry_run))
    if args.dry_run:
        return 0 if all(not r.error for r in results) else 1
    return 0 if all(r.ok for r in results) else 1
