"""Config, ticks, pattern and power-sense cases under CPython (the same
cases run under MicroPython in test_micropython.py), plus checks only
CPython can make: JSON errors with line numbers, the documented defaults."""

import json
import re
from pathlib import Path

import pytest

from firmware import config
from tests.portable import firmware_config_cases

CASES = sorted(n for n in dir(firmware_config_cases) if n.startswith("test_"))


@pytest.mark.parametrize("name", CASES)
def test_config_case(name):
    getattr(firmware_config_cases, name)()


def test_cpython_json_errors_name_the_line():
    with pytest.raises(config.ConfigError, match="line 2"):
        config.parse('{"site": "hq",\n "unit": }')


def test_every_config_key_is_documented_with_its_default():
    doc = (Path(__file__).parent.parent / "docs" / "firmware.md").read_text()
    # The type column may hold escaped pipes ("log \| remind \| cut").
    rows = dict(re.findall(r"^\| `(\w+)` \| (?:[^|\\]|\\\|)+ \| `([^`]*)` \|", doc, re.M))
    assert sorted(rows) == sorted(config.DEFAULTS)
    for key, spec in config.DEFAULTS.items():
        default = "required" if spec[1] is None else json.dumps(spec[1])
        assert rows[key] == default, key
