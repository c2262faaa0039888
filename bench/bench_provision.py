"""Provisioning speed on the virtual board, against a same-run baseline.

Figures (seconds, JSON on stdout):
- first: provision of a blank board (everything copied, reset, self-test)
- rerun: provision of the up-to-date board (hash scan, nothing copied, reset, self-test)
- baseline_copy_all: the naive way, copying every file again with mpremote, no reset
Ratios: rerun / baseline_copy_all (how much the hash comparison saves).

The virtual board's serial link is a pty (no 115200-baud limit), so a real
board's copy times are larger; the ratio is the figure to watch. Its
WebAssembly VM has no VfsRom, so the code goes to /lib (`--no-romfs`), file
by file, not as the ROMFS image a real unit gets.
Run: python bench/bench_provision.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import broker_config, flash, inventory  # noqa: E402
from virtual.wasmboard import VirtualBoard  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PASS_MAIN = "from shared import console\nprint(console.selftest_line(True, 'bench'))\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(ROOT / "deploy" / "site.example.toml", tmp / "site.toml")
        site = inventory.load(tmp / "site.toml")
        broker_config.write(site, tmp / "broker")
        (tmp / "main.py").write_text(PASS_MAIN)
        flash.MAIN_SOURCE = tmp / "main.py"
        unit = site.unit("u-0001")
        with VirtualBoard(tmp / "flash") as board:
            t0 = time.perf_counter()
            first = flash.provision(site, unit, board.port, show_progress=False, out=open("/dev/null", "w"),
                                    romfs=False)
            t1 = time.perf_counter()
            rerun = flash.provision(site, unit, board.port, show_progress=False, out=open("/dev/null", "w"),
                                    romfs=False)
            t2 = time.perf_counter()
            assert first.ok and rerun.ok and rerun.copied == 0, (first, rerun)
            files, _ = flash.unit_files(site, unit, None, flash.load_credentials(site), romfs=False)
            staged = tmp / "staged"
            staged.mkdir()
            t3 = time.perf_counter()
            for i, f in enumerate(files):
                (staged / str(i)).write_bytes(f.data)
                flash.mpremote(board.port, "fs", "cp", str(staged / str(i)), ":" + f.path)
            t4 = time.perf_counter()
    figures = {
        "files": first.copied,
        "first_s": round(t1 - t0, 2),
        "rerun_s": round(t2 - t1, 2),
        "baseline_copy_all_s": round(t4 - t3, 2),
        "rerun_over_baseline": round((t2 - t1) / (t4 - t3), 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
