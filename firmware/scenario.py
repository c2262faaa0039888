# Scenario builder: a call script (rings, answer at t, hang-up, bounces,
# noise, button presses, equipment power) -> the sampled input stream a desk
# unit would see. Used by the scenario suite (under CPython and MicroPython)
# and by the board simulator. Times are ms from the script's start; samples
# carry ticks_ms values that start at `tick0` and wrap at 2**30.

from firmware.ticks import TICKS_PERIOD


class Script:
    def __init__(self, period_ms=10, tick0=0, ring_hz=25):
        self.period_ms = period_ms
        self.tick0 = tick0
        self.ring_hz = ring_hz
        self.bursts = []  # [start, end) of ringing bursts
        self.hooks = []  # [start, end, bounce_ms) off-hook spans
        self.spikes = []  # [start, end) of noise on the ring input
        self.buttons = []  # [start, end) button held
        self.discs = []  # [start, end) line disconnect signal
        self.power = []  # (from, value) equipment power steps
        self.truth = []  # ground truth notes, for tests

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
        for s, e in self.bursts:
            if s <= t < e:
                # Opto pulses: high for the first half of every cycle.
                return ((t - s) * self.ring_hz * 2 // 1000) % 2 == 0
        for s, e in self.spikes:
            if s <= t < e:
                return True
        return False

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
        v = None
        for at, value in self.power:
            if at <= t:
                v = value
        return v

    def inputs(self, t):
        return {
            "ring": self._ring_level(t),
            "hook": self._hook_level(t),
            "power": self.power_at(t),
            "button": self._held(self.buttons, t),
            "disc": self._held(self.discs, t),
        }

    def tick(self, t):
        return (self.tick0 + t) % TICKS_PERIOD

    def samples(self, t_from, t_to):
        """Yield (ticks, inputs) every period_ms for t in [t_from, t_to)."""
        t = t_from
        while t < t_to:
            yield (self.tick0 + t) % TICKS_PERIOD, self.inputs(t)
            t += self.period_ms


def run(core, script, t_from, t_to, outputs=None):
    """Drive `core` through a script; return the events it produced. With a
    list as `outputs`, append (t, pattern, relay) whenever they change."""
    events = []
    last = None
    for tick, inputs in script.samples(t_from, t_to):
        for ev in core.step(tick, inputs):
            events.append(ev)
        if outputs is not None:
            now = (core.pattern, core.relay)
            if now != last:
                t = (tick - script.tick0) % TICKS_PERIOD
                outputs.append((t, core.pattern, core.relay))
                last = now
    return events
