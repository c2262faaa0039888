# The board's `time`: the unix port's own, except that the wall clock is the
# board's RTC, which reads 2000-01-01 after a power-on until ntptime or
# machine.RTC sets it.
import sys

_path = sys.path[:]
sys.path.clear()
import time as _t  # noqa: E402  (the built-in: nothing on the path can shadow it now)

sys.path.extend(_path)
del _path

import _vb  # noqa: E402

_start = _t.ticks_ms()
_rtc = [_vb.RTC_MS, _start]  # RTC epoch ms at tick _rtc[1]


# An ESP32's tick counter wraps at 2**30 and starts at 0 with the chip (the
# unix port's counts the host's uptime, modulo 2**62): count from the start of
# this process, on from where the host says the board's counter stands.
# asyncio keeps the port's own counter (vboot imports it first): its C task
# queue stamps tasks with that one.
_MASK = (1 << 30) - 1
_HALF = 1 << 29
_start_us = _t.ticks_us()


def ticks_ms():
    return (_vb.TICKS0 + _t.ticks_diff(_t.ticks_ms(), _start)) & _MASK


def ticks_us():
    return (_vb.TICKS0 * 1000 + _t.ticks_diff(_t.ticks_us(), _start_us)) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF
sleep = _t.sleep
sleep_ms = _t.sleep_ms
sleep_us = _t.sleep_us
gmtime = _t.gmtime
localtime = _t.gmtime  # the ESP32 port has no time zone: localtime is UTC
mktime = _t.mktime


def time_ns():
    return (_rtc[0] + _t.ticks_diff(_t.ticks_ms(), _rtc[1])) * 1000000


def time():
    return (_rtc[0] + _t.ticks_diff(_t.ticks_ms(), _rtc[1])) // 1000


def _set_rtc(epoch_ms):
    _rtc[0] = epoch_ms
    _rtc[1] = _t.ticks_ms()
    _vb.send("rtc " + str(epoch_ms))
