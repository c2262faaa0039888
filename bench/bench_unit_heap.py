"""Benchmark: how much GC heap the unit as provisioned needs, with a TLS MQTT
session, on the real MicroPython unix port (virtual/board.py).

The unit of deploy/site.example.toml's rev-a is provisioned once (the real
mpremote, `.mpy` files on the board's LittleFS, as provisioning deploys them
today); then the same flash image boots under smaller and smaller heap caps
(`-X heapsize`). A trial passes when the unit, after a power-on, reaches the
broker over TLS and delivers one call driven on its pins. The figure is the
smallest passing cap, found by bisection to `--step` KB, next to the same-run
baseline: the heap a bare MicroPython process needs to open the same TLS
session and publish one message (no firmware).

Scale: this unix build is 64-bit (objects about twice the ESP32's) and its
mbedTLS allocates from the GC heap (an ESP32's uses the IDF heap), so the
bar of issue 13 (48 KiB on a 32-bit VM, firmware only) is compared with
`(unit - bare_tls) / 2`, the firmware's own share scaled to 32 bits: an
estimate, printed as such. Prints one JSON object.

    python bench/bench_unit_heap.py [--low 120] [--high 512] [--step 8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from shared import protocol as p  # noqa: E402
from tools import flash  # noqa: E402
from tools.servers import Mosquitto, free_port  # noqa: E402
from virtual.board import UnixBoard, micropython_binary  # noqa: E402
from virtual.labsite import loopback_site  # noqa: E402

BAR_32BIT_KB = 48
UNIT = "u-0001"

BARE_TLS = r"""
import gc, socket, ssl, sys
sys.path.insert(0, "{lib}")
from firmware.link import pem_to_der
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cadata=pem_to_der(open("{ca}", "rb").read()))
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", {port})[0][-1])
s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
s.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
print("CONNACK" if s.read(4)[0] == 0x20 else "no CONNACK")  # refused or not: the session is up
"""


class Calls:
    """The collector's account, listening for the unit's events."""

    def __init__(self, port: int, ca: Path, password: str):
        self.seen = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-listener", protocol=mqtt.MQTTv5)
        c.username_pw_set("collector", password)
        c.tls_set(ca_certs=str(ca))
        c.on_message = lambda cl, u, m: json.loads(m.payload).get("kind") == "call" and self.seen.set()
        c.connect("127.0.0.1", port)
        c.subscribe(p.subscription(p.EVENT), qos=1)
        c.loop_start()
        self.client = c


def ring_and_answer(board: UnixBoard, ring: int, hook: int) -> None:
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        board.set_input(ring, 0)
        time.sleep(0.02)
        board.set_input(ring, 1)
        time.sleep(0.02)
    board.set_input(hook, 0)
    time.sleep(1.0)
    board.set_input(hook, 1)


def trial(image: Path, heap_kb: int, calls: Calls, pins: dict, timeout: float = 40.0) -> bool:
    work = image.with_name(f"trial-{heap_kb}.img")
    shutil.copy(image, work)
    calls.seen.clear()
    board = UnixBoard(work, chip="esp32", heap=f"{heap_kb}k")
    board.inputs.update({pins["ring"]: 1, pins["hook"]: 1})
    board.start()
    try:
        board.wait_console("SEATMON SELFTEST", 30)
        if b"SELFTEST PASS" not in board.console:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not calls.seen.is_set():
            ring_and_answer(board, pins["ring"], pins["hook"])
            calls.seen.wait(8)
        return calls.seen.is_set()
    except Exception:
        return False
    finally:
        board.stop()
        work.unlink(missing_ok=True)


def bisect(passes, low: int, high: int, step: int) -> int | None:
    if not passes(high):
        return None
    while high - low > step:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def bare_tls_ok(heap_kb: int, tmp: Path, port: int) -> bool:
    script = tmp / "bare_tls.py"
    script.write_text(BARE_TLS.format(lib=ROOT, ca=tmp / "tls" / "ca.pem", port=port))
    res = subprocess.run([micropython_binary(), "-X", f"heapsize={heap_kb}k", str(script)], capture_output=True,
                         text=True, timeout=30)
    return res.stdout.strip() == "CONNACK"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--low", type=int, default=120, help="smallest heap to try, KB")
    ap.add_argument("--high", type=int, default=512, help="largest heap to try, KB")
    ap.add_argument("--step", type=int, default=8, help="resolution, KB")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-heap-"))
    port = free_port()
    site = loopback_site(tmp, port)
    broker = Mosquitto(tmp / "mosquitto", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    try:
        creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
        calls = Calls(port, tmp / "tls" / "ca.pem", creds["collector"])
        unit = site.unit(UNIT)
        pins = dict(site.data["hardware"]["rev-a"]["pins"])
        image = tmp / "provisioned.img"
        with UnixBoard(image, chip="esp32", heap=f"{args.high}k") as board:
            board.wait_console(">>> ", 30)
            with contextlib.redirect_stdout(sys.stderr):  # the plan; stdout is for the JSON figures
                result = flash.provision(site, unit, board.port, timeout=60, show_progress=False)
            if not result.ok:
                print(json.dumps({"error": "provisioning failed", "detail": result.error}))
                return 1
        t0 = time.monotonic()
        unit_kb = bisect(lambda kb: trial(image, kb, calls, pins), args.low, args.high, args.step)
        bare_kb = bisect(lambda kb: bare_tls_ok(kb, tmp, port), 16, args.high, args.step)
        estimate = None if unit_kb is None or bare_kb is None else (unit_kb - bare_kb) / 2
        print(json.dumps({
            "benchmark": "unit_heap",
            "runtime": "MicroPython unix port (64-bit), -X heapsize",
            "deployment": ".mpy files on the board's LittleFS (loaded into RAM)",
            "unit_with_tls_min_heap_kb": unit_kb,
            "baseline_bare_tls_session_min_heap_kb": bare_kb,
            "firmware_share_kb_64bit": None if estimate is None else unit_kb - bare_kb,
            "firmware_share_kb_32bit_estimate": estimate,
            "bar_32bit_kb": BAR_32BIT_KB,
            "ratio_to_bar": None if estimate is None else round(estimate / BAR_32BIT_KB, 2),
            "resolution_kb": args.step,
            "seconds": round(time.monotonic() - t0, 1),
        }, indent=2))
        calls.client.loop_stop()
        return 0
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
