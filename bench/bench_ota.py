"""Benchmark: an over-the-air update of a desk unit's code, per hardware
revision of deploy/site.example.toml (rev-a: esp32, rev-b: esp32-s3).

Each unit is provisioned with the real mpremote onto a virtual board (the
MicroPython unix port, 64-bit; the stock-image path: the code as .mpy files
in /lib), reaches a loopback Mosquitto over TLS with the generated accounts
and ACL, and is then updated by `seatmon fleet update` to a copy of this
code whose FW_VERSION is 0.2.0. Figures per board: the time from the start
of `fleet update` to the unit's `confirmed` step (building the image, the
transfer, the reset, the boot of the new code, its TLS session), the
transfer alone (the first chunk request to `staged`), and the unit's peak
live GC heap (the board's heap probe: gc.mem_alloc() after a collection
every 30 pin reads, minus the heap before main.py) while it received the
image, beside the same-run baseline: its peak over the same length of time
just before, running with its TLS session up and no update. The figures
are the 64-bit unix port's; an ESP32 (32-bit) needs roughly half the heap.
No collector runs here, so after staging a unit waits the full 10 s
(updater.RESET_WAIT_MS) for an ack of its journal before it resets: that
is part of update_s.

    python bench/bench_ota.py

Prints one JSON object.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seatmon import cli  # noqa: E402
from tools import flash  # noqa: E402
from rig.servers import Mosquitto, free_port  # noqa: E402
from virtual.board import UnixBoard, for_revision  # noqa: E402
from virtual.desks import Desk  # noqa: E402
from virtual.labsite import loopback_site  # noqa: E402

UNITS = (("u-0001", "rev-a"), ("u-0003", "rev-b"))
PROBE_EVERY = 30
KB = 1024
WAIT = "90"  # seconds: an update takes about 15 here


def new_code(folder: Path, version: str) -> Path:
    root = folder / f"code-{version}"
    for package in flash.PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shell = root / "firmware" / "shell.py"
    shell.write_text(re.sub(r'^FW_VERSION = "[0-9.]+"', f'FW_VERSION = "{version}"', shell.read_text(), flags=re.M))
    return root


class PeakWatch:
    """The board's peak live heap of the current boot, sampled until stopped."""

    def __init__(self, board: UnixBoard):
        self.board = board
        self.peak = 0
        self.base = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            base, peak = self.board.heap_base, self.board.heap_peak
            if base is not None and peak is not None:
                self.base = base
                self.peak = max(self.peak, peak[0] - base)
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def update_one(site, unit_id: str, revision: str, code: Path, tmp: Path) -> dict:
    hw = site.data["hardware"][revision]
    board = for_revision(tmp / f"{unit_id}.img", hw, heap_probe=PROBE_EVERY).start()
    try:
        board.wait_console(">>> ", 30)
        Desk(board, dict(hw["pins"], **site.unit(unit_id).get("pins", {})))  # the handset on its hook: idle
        res = flash.provision(site, site.unit(unit_id), board.port, timeout=60, show_progress=False,
                              out=io.StringIO())
        if not res.ok:
            raise RuntimeError(f"{unit_id}: provisioning failed: {res.error or res.selftest.output}")
        time.sleep(5)  # the TLS session up, the first heartbeat out
        out = io.StringIO()
        done = threading.Event()
        timing: dict[str, float] = {}

        def run():
            with contextlib.redirect_stdout(out):
                timing["code"] = cli.main(["fleet", "update", "--site", str(site.path), "--units", unit_id,
                                           "--code", str(code), "--wait", WAIT])
            done.set()

        # Baseline: the running unit's peak over the same time, no update.
        watch = PeakWatch(board)
        time.sleep(8)
        idle_peak = watch.stop()
        watch = PeakWatch(board)
        t0 = time.monotonic()
        threading.Thread(target=run, daemon=True).start()
        transfer_peak = None
        while not done.wait(0.05):
            text = out.getvalue()
            if "receiving" not in timing and "offered" in text and "chunk" in text:
                timing["receiving"] = time.monotonic()
            if transfer_peak is None and ": staged" in text:
                timing["staged"] = time.monotonic()
                transfer_peak = watch.stop()  # the reset into the new code follows
        text = out.getvalue()
        if timing.get("code") != 0 or transfer_peak is None:
            console = bytes(board.console[-3000:]).decode("utf-8", "replace")
            raise RuntimeError(f"{unit_id}: update failed:\n{text}\nthe board's console ends:\n{console}")
        chunks = int(re.search(r"(\d+) chunks", text).group(1))
        return {"unit": unit_id, "revision": revision, "chip": hw["board"], "chunks": chunks,
                "update_s": round(time.monotonic() - t0, 2),
                "transfer_s": round(timing["staged"] - timing.get("receiving", t0), 2),
                "peak_heap_during_transfer_kb": round(transfer_peak / KB, 1),
                "baseline_peak_heap_running_kb": round(idle_peak / KB, 1),
                "transfer_extra_kb": round((transfer_peak - idle_peak) / KB, 1)}
    finally:
        board.stop()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        site = loopback_site(tmp, port)
        broker = Mosquitto(tmp / "mosquitto", port, config_file=tmp / "broker" / "mosquitto.conf").start()
        try:
            code = new_code(tmp, "0.2.0")
            boards = [update_one(site, uid, rev, code, tmp) for uid, rev in UNITS]
        finally:
            broker.stop()
    print(json.dumps({"benchmark": "ota", "port": "micropython unix (64-bit), virtual ESP32 boards",
                      "image": "stock-image path: .mpy files in /lib", "boards": boards}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
