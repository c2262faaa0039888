# `ntptime` of the virtual board: the host's clock stands in for the NTP
# server; the host can make it unanswerable.
import time as _time

import _vb

host = "pool.ntp.org"
timeout = 1


def time():
    _vb.poll()
    if not _vb.state["ntp"] or not _vb.state["wifi"]:
        _time.sleep(timeout)  # as the real one: a UDP wait that gets no answer
        raise OSError(110)  # ETIMEDOUT
    return _vb.host_time_ms() / 1000


def settime():
    _time._set_rtc(int(time() * 1000))
