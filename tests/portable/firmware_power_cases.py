# Equipment-power sense on a half-wave input (a rectified current
# transformer, an opto on the mains): high for half of every 50/60 Hz cycle,
# sampled every 10 ms as the shell samples. Run by tests/test_firmware_power.py
# (CPython) and inside MicroPython by tests/test_micropython.py.
#
# Expected values come from the rules: a seat whose equipment is on is never
# read "off" (one low sample must not end a reminder as "switched off"), and
# switching off is seen within the filter window (POWER_WINDOW_MS) plus one
# sample.

from firmware import scenario
from firmware.core import SHIFT_EVAL_MS
from firmware.sensing import POWER_WINDOW_MS, PowerSense
from tests.portable.check import eq
from tests.portable.firmware_shift_cases import END, MIN, SEC, kinds, one, setup_shift

PERIOD = 10  # the shell's sampling period (shared/boardfiles.py period_ms)
# Mains frequencies: nominal, and off nominal so the phase drifts through every
# position against the samples within the run (the grid wanders by 0.1 Hz).
MAINS_MHZ = (50000, 49900, 50100, 60000, 59900)


def half_wave(t, mhz, phase_us):
    """The input at t ms: high in the first half of each mains cycle."""
    cycle_us = 1000000000 // mhz
    return (t * 1000 + phase_us) % cycle_us < cycle_us // 2


class HalfWaveScript(scenario.Script):
    """A script whose power input is a half-wave from `on_at` until `off_at`."""

    def __init__(self, period_ms, mhz, phase_us, on_at, off_at):
        scenario.Script.__init__(self, period_ms)
        self.mhz = mhz
        self.phase_us = phase_us
        self.on_at = on_at
        self.off_at = off_at

    def power_at(self, t):
        return self.on_at <= t < self.off_at and half_wave(t, self.mhz, self.phase_us)


def test_half_wave_never_reads_off_and_switching_off_is_seen_within_the_window():
    worst = 0
    for mhz in MAINS_MHZ:
        for phase_us in (0, 3000, 5000, 9990, 15000):
            p = PowerSense("digital")
            off_at = 10000
            states = []
            t = 0
            while t < off_at + 1000:
                states.append((t, p.update(t, half_wave(t, mhz, phase_us) and t < off_at)))
                t += PERIOD
            lows_while_on = [t for t, s in states if t < off_at and s is not True and t > 20]
            eq(lows_while_on, [], "read off while on at " + str(mhz) + " mHz, phase " + str(phase_us) + " us")
            seen = [t for t, s in states if t >= off_at and s is False][0]
            if seen - off_at > worst:
                worst = seen - off_at
            eq([s for t, s in states if t >= seen], [False] * len([1 for t, s in states if t >= seen]))
    if worst > POWER_WINDOW_MS + PERIOD:
        raise AssertionError("switching off seen " + str(worst) + " ms late")
    return worst <= POWER_WINDOW_MS + PERIOD


def test_adc_half_wave_from_a_current_transformer():
    """A rectified CT on the ADC: full reading in one half-cycle, 0 in the
    other; under the off level only once the load is gone."""
    p = PowerSense("adc", on_level=2000, off_level=1500)
    got = []
    for t in range(0, 3000, PERIOD):
        reading = 30000 if t < 2000 and half_wave(t, 50000, 2500) else 40
        got.append(p.update(t, reading))
    eq(got[0], True)
    eq(got[1:200], [True] * 199)
    eq(got.index(False) * PERIOD - 2000 <= POWER_WINDOW_MS + PERIOD, True)
    return "ok"


def test_reminder_runs_while_a_half_wave_says_on_then_ends_when_switched_off():
    """Remind mode, 16:00 shift end, no grace: the equipment on a 49.9 Hz
    half-wave sense is reminded about until it is switched off 2 min after
    the shift end; the reminder does not end early on a low half-cycle."""
    c, s = setup_shift(END - 30 * SEC, shift_end_mode="remind", shift_end_grace_ms=0)
    s = HalfWaveScript(PERIOD, 49900, 0, 0, 30 * SEC + 2 * MIN)  # the grid a little slow
    events = scenario.run(c, s, 0, 30 * SEC + 3 * MIN)
    eq(kinds(events), ["selftest", "reminder/start", "reminder/stop", "shift_end/reminded"])
    se = one(events, "shift_end")
    eq(se["equipment"], "on")
    off_after = se["off_after_ms"]  # the shift logic looks every SHIFT_EVAL_MS
    if not 2 * MIN <= off_after <= 2 * MIN + POWER_WINDOW_MS + SHIFT_EVAL_MS:
        raise AssertionError("off seen " + str(off_after - 2 * MIN) + " ms after the switch-off")
    return se["action"]


def test_shift_end_check_reads_a_half_wave_as_on():
    """Log mode: the check after the shift end reads the equipment on, at
    every mains phase (before, a sample in the low half-cycle read 'off')."""
    found = []
    for phase_us in (0, 5000, 10000, 15000):
        c, s = setup_shift(END - 2 * SEC, shift_end_mode="log", shift_end_grace_ms=0)
        s = HalfWaveScript(PERIOD, 50000, phase_us, 0, 60 * SEC)
        events = scenario.run(c, s, 0, 10 * SEC)
        found.append(one(events, "shift_end")["equipment"])
    eq(found, ["on"] * 4)
    return found
