"""Desk-unit core scenarios under CPython: cadences, call timing, noisy
inputs, clocks (the same cases run under MicroPython in test_micropython.py)."""

import importlib

import pytest

SUITES = ["firmware_cadence_cases", "firmware_call_cases", "firmware_line_cases"]
CASES = []
for _suite in SUITES:
    _mod = importlib.import_module("tests.portable." + _suite)
    CASES += [(_suite, n) for n in sorted(dir(_mod)) if n.startswith("test_")]


@pytest.mark.parametrize("suite,name", CASES, ids=[s + "." + n for s, n in CASES])
def test_core_case(suite, name):
    getattr(importlib.import_module("tests.portable." + suite), name)()


def test_answer_time_within_one_sampling_period_over_random_calls():
    """The design's accuracy bar over many calls: random profile, ring
    frequency (16-50 Hz), answer instant (off the sample grid) and tick
    origin (wrap-arounds included): |measured - truth| <= 10 ms, and the
    ring count is the number of rings started (and confirmed) by then."""
    import random

    from firmware import cadence, core, scenario

    rnd = random.Random(20261123)
    names = sorted(cadence.PROFILES)
    worst = 0
    for _ in range(150):
        name = rnd.choice(names)
        cad = cadence.PROFILES[name]
        period = sum(cad)
        ring_at = 1000 + rnd.randrange(0, 10)
        truth = rnd.randrange(200, 3 * period)
        tick0 = rnd.randrange(0, 1 << 30)
        c = core.Core({"site": "hq", "unit": "u1", "seat": "s1", "cadence": name}, tick0)
        c.set_clock(tick0, 1795392000000)
        s = scenario.Script(10, tick0, ring_hz=rnd.randrange(16, 51))
        s.answer(ring_at + truth, cad, ring_at, ring_at + truth + 1000)
        events = scenario.run(c, s, 0, ring_at + truth + 1100)
        calls = [e for e in events if e["kind"] == "call"]
        assert len(calls) == 1, (name, truth, events)
        err = calls[0]["answer_ms"] - truth
        assert -10 <= err <= 10, (name, truth, err)
        worst = max(worst, abs(err))
        # Rings: rings whose first burst had lasted ring_min_ms (150) at the
        # answer (answers within one sample of that edge are ambiguous: skipped).
        starts = [k * period for k in range(truth // period + 1)]
        if any(abs(truth - (st + 150)) <= 10 for st in starts):
            continue
        assert calls[0]["rings"] == len([st for st in starts if st + 150 < truth]), (name, truth)
    assert worst <= 10
