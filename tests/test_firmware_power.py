"""Power-sense cases of the desk-unit core under CPython (the same cases run
under MicroPython in test_micropython.py)."""

import pytest

from tests.portable import firmware_power_cases

CASES = sorted(n for n in dir(firmware_power_cases) if n.startswith("test_"))


@pytest.mark.parametrize("name", CASES)
def test_power_case(name):
    getattr(firmware_power_cases, name)()
