# `os` of the virtual ESP32 board: the unix port's own, with the esp32
# port's `uname()`, whose `machine` names the image and the chip
# ("Generic ESP32 module with SPIRAM with ESP32": MICROPY_HW_BOARD_NAME with
# MICROPY_HW_MCU_NAME), which provisioning reads. vboot registers this
# module as sys.modules["os"], as _vbvfs stands in for `vfs`.
import os as _os

for _name in dir(_os):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_os, _name)


class _Uname:
    sysname = "esp32"
    nodename = "esp32"
    release = "1.29.0"
    version = "v1.29.0 on the virtual board"
    machine = _os.getenv("SEATMON_VB_MACHINE") or "Generic ESP32 module with ESP32"

    def __getitem__(self, i):
        return (self.sysname, self.nodename, self.release, self.version, self.machine)[i]


_UNAME = _Uname()


def uname():
    return _UNAME
