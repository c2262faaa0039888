"""The device-side code type-checks against the ESP32 MicroPython stubs
(micropython-esp32-stubs, installed into typings/ by setup.sh), so every
machine / network / socket / esp32 / neopixel call matches the real API.

The check must bite: each case below plants one wrong call in a copy of the
device files and asserts mypy (same config) rejects it, naming the line."""

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import micropython as mp

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "mypy-device.ini"
# On the host only: the scenario runner for tests and the simulator.
NOT_ON_BOARD = {"firmware/scenario.py"}


def _stubs():
    if not (ROOT / "typings" / "machine.pyi").exists():
        pytest.fail("ESP32 stubs missing: run setup.sh (pip install --target typings micropython-esp32-stubs)")


def run_mypy(root, cache):
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", CONFIG, "--cache-dir", str(cache)],
                          cwd=root, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MYPY_CACHE_DIR=str(cache)))


def test_device_code_matches_the_esp32_stubs(tmp_path):
    _stubs()
    r = run_mypy(ROOT, tmp_path / "cache")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Success" in r.stdout


def test_every_file_that_runs_on_the_board_is_checked_with_its_body():
    conf = configparser.ConfigParser()
    conf.read(ROOT / CONFIG)
    checked = {f.strip() for f in conf["mypy"]["files"].split(",")}
    on_board = {str(p.relative_to(ROOT)) for p in mp.device_files()} - NOT_ON_BOARD
    assert checked == on_board
    assert conf["mypy"]["check_untyped_defs"] == "True"
    # No device module may switch body checking (or an error code) off.
    for section in conf.sections():
        if section.startswith(("mypy-firmware", "mypy-shared")):
            assert "check_untyped_defs" not in conf[section] and "disable_error_code" not in conf[section] \
                and "ignore_errors" not in conf[section], section


# (file, exact text in it, the wrong version, a fragment of mypy's complaint)
WRONG_CALLS = {
    "pin_pull_as_str": ("firmware/board_esp32.py", "Pin(pins[role], Pin.IN, Pin.PULL_UP)",
                        'Pin(pins[role], Pin.IN, "up")', 'incompatible type "str"; expected "int"'),
    "adc_atten_as_str": ("firmware/board_esp32.py", "self._adc.atten(ADC.ATTN_11DB)",
                         'self._adc.atten("11dB")', '"atten" of "ADC"'),
    "wdt_timeout_as_str": ("firmware/board_esp32.py", "self._WDT(timeout=self.wdt_ms)",
                           "self._WDT(timeout=str(self.wdt_ms))", 'incompatible type "str"; expected "int"'),
    "pin_value_too_many_args": ("firmware/board_esp32.py", "self._led.value(1 if led else 0)",
                                "self._led.value(1 if led else 0, 1)", "value"),
    "machine_attr_misspelt": ("firmware/board_esp32.py", "cause = mach.reset_cause()",
                              "cause = mach.reset_causes()", '"reset_causes"'),
    "network_attr_misspelt": ("firmware/board_esp32.py", "self._STA_IF = net.STA_IF",
                              "self._STA_IF = net.STA_IFF", '"STA_IFF"'),
    "socket_attr_misspelt": ("firmware/board_esp32.py", "s = sock.socket(sock.AF_INET, sock.SOCK_DGRAM)",
                             "s = sock.socket(sock.AF_INETT, sock.SOCK_DGRAM)", '"AF_INETT"'),
    "esp32_attr_misspelt": ("firmware/board_esp32.py", "e32.Partition.mark_app_valid_cancel_rollback()",
                            "e32.Partitions.mark_app_valid_cancel_rollback()", '"Partitions"'),
    "neopixel_bpp_as_str": ("firmware/board_esp32.py", 'NeoPixel(Pin(pins["led"], Pin.OUT), 1)',
                              'NeoPixel(Pin(pins["led"], Pin.OUT), 1, "grb")', 'incompatible type "str"; expected "int"'),
    "wlan_method_misspelt": ("firmware/board_esp32.py", "return self._wlan is not None and self._wlan.isconnected()",
                             "return self._wlan is not None and self._wlan.is_connected()", '"is_connected"'),
    "publish_missing_payload": ("firmware/link.py",
                                "await client.publish(self.topic(protocol.HEARTBEAT), payload, qos=0)",
                                "await client.publish(self.topic(protocol.HEARTBEAT), qos=0)", '"publish"'),
    "qos_as_str": ("firmware/link.py", "await client.publish(topic, payload, qos=1)",
                   'await client.publish(topic, payload, qos="1")', '"publish"'),
    "keepalive_as_str": ("firmware/mqtt.py", "encode_connect(self.client_id, self.keepalive, clean,",
                         "encode_connect(self.client_id, str(self.keepalive), clean,", '"encode_connect"'),
    "puback_pid_as_str": ("firmware/mqtt.py", "await self._send(encode_puback(pid))",
                            "await self._send(encode_puback(str(pid)))", '"encode_puback"'),
    "core_wrong_arity": ("firmware/shell.py", 'core.set_clock(tick, epoch_ms, "ntp")',
                         'core.set_clock(tick, epoch_ms, "ntp", offset)', '"set_clock"'),
    "journal_wrong_arity": ("firmware/shell.py", "self.journal.ack(seq, inc)", "self.journal.ack()", '"ack"'),
    "ticks_diff_with_str": ("firmware/shell.py", "ticks_diff(now, self.sampled) < SAMPLER_STALE_MS",
                            'ticks_diff(now, str(self.sampled)) < SAMPLER_STALE_MS', '"ticks_diff"'),
    "protocol_topic_arity": ("firmware/link.py", "return protocol.topic(c[\"site\"], c[\"unit\"], channel, self.s[\"prefix\"])",
                              "return protocol.topic(c[\"site\"], c[\"unit\"])", '"topic"'),
    "console_misspelt": ("firmware/main.py", "print(selftest_line(ok, details))",
                         "print(selftest_lines(ok, details))", '"selftest_lines"'),
}


@pytest.fixture(scope="module")
def device_copy(tmp_path_factory):
    """A copy of the device tree and the config (typings linked, not copied)."""
    _stubs()
    root = tmp_path_factory.mktemp("device")
    for folder in ("firmware", "shared"):
        shutil.copytree(ROOT / folder, root / folder)
    shutil.copy(ROOT / CONFIG, root / CONFIG)
    (root / "typings").symlink_to((ROOT / "typings").resolve())
    return root


@pytest.mark.parametrize("case", sorted(WRONG_CALLS))
def test_a_planted_wrong_call_fails_the_check(case, device_copy, tmp_path):
    rel, right, wrong, complaint = WRONG_CALLS[case]
    path = device_copy / rel
    original = path.read_text()
    assert original.count(right) == 1, f"{rel} no longer has {right!r} exactly once: update this case"
    line = original[:original.index(right)].count("\n") + 1
    path.write_text(original.replace(right, wrong))
    try:
        r = run_mypy(device_copy, tmp_path / "cache")
    finally:
        path.write_text(original)
    assert r.returncode == 1, f"mypy accepted {wrong!r} in {rel}:\n{r.stdout[-2000:]}{r.stderr[-1000:]}"
    errors = [e for e in r.stdout.splitlines() if re.match(rf"{re.escape(rel)}:{line}: error:", e)]
    assert errors, f"no error at {rel}:{line}:\n{r.stdout[-3000:]}"
    assert any(complaint in e for e in errors), errors
