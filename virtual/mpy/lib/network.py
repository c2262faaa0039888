# `network` of the virtual board: one station interface whose link comes and
# goes when the host says (the loopback sockets underneath never really drop,
# so the firmware must act on isconnected(), as on an ESP32).
import _vb

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._wanted = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def connect(self, ssid=None, key=None, **kw):
        if not self._active:
            raise OSError("Wifi Not Started")
        self._wanted = True

    def disconnect(self):
        self._wanted = False

    def isconnected(self):
        _vb.poll()
        return self._active and self._wanted and _vb.state["wifi"]

    def status(self, what=None):
        if what == "rssi":
            if not self.isconnected():
                raise OSError("not connected")
            return -55
        if self.isconnected():
            return STAT_GOT_IP
        return STAT_CONNECTING if self._wanted else STAT_IDLE

    def ifconfig(self, conf=None):
        if self.isconnected():
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kw):
        if args == ("mac",):
            return b"\x24\xa1\x60\xc0\xff\xee"
        return None
