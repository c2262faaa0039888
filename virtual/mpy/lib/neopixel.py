# `neopixel` of the virtual board: the host records each write's colours.
import _vb


class NeoPixel:
    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.n = n
        self.buf = [(0, 0, 0)] * n

    def __setitem__(self, i, v):
        self.buf[i] = tuple(v)

    def __getitem__(self, i):
        return self.buf[i]

    def fill(self, v):
        for i in range(self.n):
            self.buf[i] = tuple(v)

    def write(self):
        _vb.send("neopixel %d %s" % (self.pin.id, ";".join(",".join(str(c) for c in px) for px in self.buf)))
