"""Clock cases of the desk unit under CPython (the same cases run under
MicroPython in test_micropython.py)."""

import importlib

import pytest

SUITE = "tests.portable.firmware_clock_cases"
CASES = sorted(n for n in dir(importlib.import_module(SUITE)) if n.startswith("test_"))


@pytest.mark.parametrize("name", CASES)
def test_clock_case(name):
    getattr(importlib.import_module(SUITE), name)()
