"""Shift cases of the desk-unit core under CPython (the same cases run under
MicroPython in test_micropython.py)."""

import importlib

import pytest

SUITES = ["firmware_shift_cases", "firmware_schedule_cases"]
CASES = []
for _suite in SUITES:
    _mod = importlib.import_module("tests.portable." + _suite)
    CASES += [(_suite, n) for n in sorted(dir(_mod)) if n.startswith("test_")]


@pytest.mark.parametrize("suite,name", CASES, ids=[s + "." + n for s, n in CASES])
def test_shift_case(suite, name):
    getattr(importlib.import_module("tests.portable." + suite), name)()
