# `os` of the virtual ESP32 board: the unix port's own, plus `uname()`, which
# this build lacks and the esp32 port has. Its `machine` field is the esp32
# port's "<board name> with <MCU name>" for the board's chip (ports/esp32/
# boards/ESP32_GENERIC*/mpconfigboard.h), so provisioning can check which
# chip it talks to. vboot registers this module as sys.modules["os"].
import os as _os

import _vb

for _name in dir(_os):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_os, _name)

_MACHINE = {"esp32": "Generic ESP32 module with ESP32", "esp32-s2": "Generic ESP32S2 module with ESP32S2",
            "esp32-s3": "Generic ESP32S3 module with ESP32S3", "esp32-c3": "ESP32C3 module with ESP32C3"}


class _Uname:
    sysname = "esp32"
    nodename = "esp32"
    release = "1.29.0"
    version = "v1.29.0 (virtual board)"

    def __init__(self):
        self.machine = _MACHINE.get(_vb.CHIP, _vb.CHIP)


def uname():
    return _Uname()
