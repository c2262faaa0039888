# Pure versions of MicroPython's time.ticks_diff / ticks_add.
# ticks_ms counts modulo 2**30 on MicroPython (about 12.4 days), so durations
# must never be computed with a plain subtraction. Written so that on a
# 32-bit port every operand and result stays a small int (2**30 itself is
# not one): no heap allocation per call.

TICKS_PERIOD = 1 << 30
TICKS_MAX = (1 << 30) - 1
_HALF = 1 << 29


def ticks_add(ticks, delta):
    # type: (int, int) -> int
    """ticks + delta, wrapped into [0, 2**30)."""
    r = ticks + delta
    if r > TICKS_MAX:
        return r - TICKS_MAX - 1
    if r < 0:
        return r + TICKS_MAX + 1
    return r


def ticks_diff(a, b):
    # type: (int, int) -> int
    """Signed a - b in [-2**29, 2**29), correct across one wrap-around."""
    d = a - b
    if d >= _HALF:
        return d - TICKS_MAX - 1
    if d < -_HALF:
        return d + TICKS_MAX + 1
    return d
