"""MQTT packet codec cases under CPython (also run inside MicroPython by test_micropython.py)."""

import pytest

from tests.portable import mqtt_cases


@pytest.mark.parametrize("name", sorted(n for n in dir(mqtt_cases) if n.startswith("test_")))
def test_mqtt_case(name):
    getattr(mqtt_cases, name)()
