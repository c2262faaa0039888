"""Over-the-air updates, the pure part: the portable cases under CPython (the
same cases run inside MicroPython in tests/test_micropython.py)."""

import pytest

from tests.portable import ota_cases

CASES = sorted(n for n in dir(ota_cases) if n.startswith("test_"))


@pytest.mark.parametrize("name", CASES)
def test_ota_case(name):
    getattr(ota_cases, name)()
