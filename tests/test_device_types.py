"""The device-side code type-checks against the ESP32 MicroPython stubs
(micropython-esp32-stubs, installed into typings/ by setup.sh), so every
machine / network / esp32 / neopixel call matches the real API."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_device_code_matches_the_esp32_stubs():
    if not (ROOT / "typings" / "machine.pyi").exists():
        pytest.fail("ESP32 stubs missing: run setup.sh (pip install --target typings micropython-esp32-stubs)")
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy-device.ini", "--no-incremental"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, MYPY_CACHE_DIR=str(ROOT / ".mypy_cache")))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Success" in r.stdout
