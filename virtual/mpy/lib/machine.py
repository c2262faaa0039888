# `machine` of the virtual ESP32 board, as the esp32 port behaves where the
# firmware touches it: a GPIO the chip lacks raises ValueError, an input-only
# pin refuses to drive, the watchdog cannot be stopped and outlives Ctrl-C
# and soft resets (the host enforces it), reset causes are the port's numbers.
import time

import _vb

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

# GPIOs per chip (MicroPython's esp32 port pin tables) and the input-only ones.
_GPIOS = {
    "esp32": tuple(range(0, 6)) + tuple(range(12, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40)),
    "esp32-s2": tuple(range(0, 22)) + tuple(range(26, 47)),
    "esp32-s3": tuple(range(0, 22)) + tuple(range(26, 49)),
    "esp32-c3": tuple(range(0, 22)),
}
_INPUT_ONLY = {"esp32": (34, 35, 36, 37, 38, 39), "esp32-s2": (46,), "esp32-s3": (), "esp32-c3": ()}
_ADC = {
    "esp32": (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39),
    "esp32-s2": tuple(range(1, 21)),
    "esp32-s3": tuple(range(1, 21)),
    "esp32-c3": (0, 1, 2, 3, 4, 5),
}


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if id not in _GPIOS[_vb.CHIP]:
            raise ValueError("invalid pin")
        self.id = id
        self._mode = None
        self._pull = None
        self._out = None
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if pull != -1:
            self._pull = pull
        if mode != -1:
            if mode in (Pin.OUT, Pin.OPEN_DRAIN) and self.id in _INPUT_ONLY[_vb.CHIP]:
                raise ValueError("pin can only be input")
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            if self._mode in (Pin.OUT, Pin.OPEN_DRAIN) and self._out is not None:
                return self._out
            _vb.poll()
            return _vb.levels.get(self.id, 1 if self._pull == Pin.PULL_UP else 0)
        v = 1 if v else 0
        if v != self._out:
            self._out = v
            _vb.send("out %d %d" % (self.id, v))

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, atten=None):
        if pin.id not in _ADC[_vb.CHIP]:
            raise ValueError("invalid Pin for ADC")
        self.pin = pin

    def atten(self, a):
        pass

    def width(self, w):
        pass

    def read_u16(self):
        _vb.poll()
        return _vb.levels.get(self.pin.id, 0)

    def read(self):
        return self.read_u16() >> 4


class WDT:
    """Once started it cannot be stopped, only fed; the host resets the board
    when it starves, through Ctrl-C and soft resets alike."""

    def __init__(self, id=0, timeout=5000):
        self._last = time.ticks_ms()
        _vb.send("wdt %d" % timeout)

    def feed(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last) >= 100:  # the host needs no more than that
            self._last = now
            _vb.send("feed")


class RTC:
    def datetime(self, dt=None):
        if dt is None:
            t = time.gmtime(time.time())
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        time._set_rtc(secs * 1000 + dt[7] // 1000)

    def init(self, dt):
        self.datetime(dt)


def reset_cause():
    return _vb.CAUSE


def reset():
    _vb.send("reset hard")
    while True:  # the host cuts us off
        time.sleep_ms(100)


def soft_reset():
    _vb.send("reset soft")
    while True:
        time.sleep_ms(100)


def unique_id():
    return bytes(int(_vb.UID[i:i + 2], 16) for i in range(0, len(_vb.UID), 2))


def freq(f=None):
    if f is None:
        return 160000000


def idle():
    time.sleep_ms(1)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
