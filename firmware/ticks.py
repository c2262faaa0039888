# Pure versions of MicroPython's time.ticks_diff / ticks_add.
# ticks_ms counts modulo 2**30 on MicroPython (about 12.4 days), so durations
# must never be computed with a plain subtraction.

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD // 2


def ticks_add(ticks, delta):
    """ticks + delta, wrapped into [0, 2**30)."""
    return (ticks + delta) % TICKS_PERIOD


def ticks_diff(a, b):
    """Signed a - b in [-2**29, 2**29), correct across one wrap-around."""
    return ((a - b + _HALF) % TICKS_PERIOD) - _HALF
