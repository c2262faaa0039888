# Input conditioning: sampled pin levels in, clean edges and ring bursts out.
# Every method takes the sample's tick time, so it runs the same on a board,
# in a simulator or in a test.

from firmware.ticks import ticks_diff


class Debouncer:
    """A level that must hold for `hold_ms` before it counts.

    Contact bounce is folded into the change: the reported edge time is the
    first sample that left the old level, provided the line then settles on
    the new level; a glitch that returns to the old level for `hold_ms` is
    forgotten. Debouncing delays the decision, not the measured instant."""

    def __init__(self, hold_ms, initial=False):
        self.hold_ms = hold_ms
        self.value = initial
        self._first = None  # first sample that left the stable level
        self._run = None  # start of the current run at the other level
        self._back = None  # since when the line is back at the stable level

    def update(self, now, raw):
        """Return the edge time when the stable value changes, else None."""
        if raw == self.value:
            if self._first is not None:
                self._run = None
                if self._back is None:
                    self._back = now
                elif ticks_diff(now, self._back) >= self.hold_ms:
                    self._first = None
                    self._back = None
            return None
        self._back = None
        if self._first is None:
            self._first = now
        if self._run is None:
            self._run = now
        if ticks_diff(now, self._run) >= self.hold_ms:
            self.value = raw
            edge = self._first
            self._first = None
            self._run = None
            return edge
        return None


class RingDetector:
    """Opto-coupler pulse train -> ring bursts.

    Pulses closer than `join_ms` belong to one burst; a burst counts only once
    it has lasted `min_ms` (rejects spikes and hook-transition clicks). update()
    returns None, ("start", t_first_pulse) or ("end", t_last_pulse)."""

    def __init__(self, join_ms=120, min_ms=150):
        self.join_ms = join_ms
        self.min_ms = min_ms
        self._start = None  # first pulse of the current candidate burst
        self._last = None  # latest pulse
        self.active = False  # confirmed burst in progress

    def reset(self):
        """Forget a candidate burst (e.g. pulses during a hook transition)."""
        ended = self._last if self.active else None
        self._start = None
        self._last = None
        self.active = False
        return ended

    def update(self, now, pulse):
        if pulse:
            if self._start is None:
                self._start = now
            self._last = now
            if not self.active and ticks_diff(now, self._start) >= self.min_ms:
                self.active = True
                return ("start", self._start)
            return None
        if self._last is not None and ticks_diff(now, self._last) > self.join_ms:
            end = self._last
            was_active = self.active
            self._start = None
            self._last = None
            self.active = False
            if was_active:
                return ("end", end)
        return None

    def busy(self):
        """True while pulses are arriving (candidate or confirmed burst)."""
        return self._start is not None

    def pulsing_since(self):
        """Tick of the first pulse of the current burst, or None."""
        return self._start


POWER_WINDOW_MS = 100  # 5 cycles of 50 Hz, 6 of 60 Hz


class PowerSense:
    """Equipment-power sense: a digital level, or an ADC reading with a
    threshold and hysteresis. `None` as a reading means unreadable.

    A half-wave input (a rectified current transformer, an opto on the mains)
    is low for half of every mains cycle, and 10 ms samples of a 50 Hz wave
    alias: runs of low samples come and go. So "on" is decided by the highest
    reading of the last `window_ms`: on as soon as a reading reaches the on
    level, off only once no reading in a whole window rose above the off level."""

    def __init__(self, mode="digital", on_level=2000, off_level=1500, window_ms=POWER_WINDOW_MS):
        self.mode = mode
        self.on_level = on_level
        self.off_level = off_level
        self.window_ms = window_ms
        self.state = None  # True on, False off, None unknown
        self.holding = False  # on only because of a reading earlier in the window
        self._above = None  # tick of the last reading above the off level

    def update(self, now, reading):
        self.holding = False
        if self.mode == "none" or reading is None:
            self.state = None
            self._above = None
            return None
        if self.mode == "digital":
            level = 1 if reading else 0
            on_level = 1
            off_level = 0
        elif reading is True or reading is False:
            self.state = None  # a digital pin cannot be judged by ADC levels
            self._above = None
            return None
        else:
            level = reading
            on_level = self.on_level
            off_level = self.off_level
        if level > off_level:
            self._above = now
        if level >= on_level:
            self.state = True
        elif level <= off_level:
            if self._above is None or ticks_diff(now, self._above) >= self.window_ms:
                self.state = False
            else:
                self.holding = self.state is True
        elif self.state is None:
            # Between the thresholds with no history: call it on (the safe
            # guess for a shift-end check).
            self.state = True
        return self.state


class Button:
    """Debounced push button; update() returns the press time once per press."""

    def __init__(self, hold_ms=30):
        self._deb = Debouncer(hold_ms, False)

    def update(self, now, raw):
        edge = self._deb.update(now, bool(raw))
        if edge is not None and self._deb.value:
            return edge
        return None
