"""A seat idle for weeks: ticks_ms wraps every 2**30 ms (12.4 days) and
ticks_diff is only right within 2**29 ms (6.2 days), so no tick may be kept
that long. The pure core over 17 idle days, sampled every few seconds (and
every 10 ms around a call): every shift end comes on time, reports the true
idle time, and a call after 16 idle days is still heard."""

from __future__ import annotations

import pytest

from firmware import core as fw_core
from firmware.ticks import ticks_add, ticks_diff
from shared import protocol

DAY = 86400000
EPOCH = 1795392000000  # 2026-11-23T00:00Z, a Monday: the wall time at the first tick
GRACE = 300000
SHIFT_END = 16 * 3600000  # "day" shift 08:00-16:00 UTC every day
IDLE_STEP = 5000  # sampling while idle (the core takes any tick sequence)
QUIET = {"ring": False, "hook": False, "power": True, "button": False, "disc": False}


def _core(tick0):
    conf = {"site": "hq", "unit": "u-0001", "seat": "A-01", "shift_end_mode": "log",
            "shift_end_grace_ms": GRACE,
            "shifts": {d: [["day", "08:00", "16:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    c = fw_core.Core(conf, tick0)
    c.set_clock(tick0, EPOCH)
    return c


def _run(c, tick0, t_from, t_to, step, inputs=QUIET, out=None):
    """Step the core from t_from to t_to ms after tick0; collect (t, event)."""
    out = [] if out is None else out
    t = t_from
    while t < t_to:
        for ev in c.step(ticks_add(tick0, t), inputs):
            ev2 = dict(ev, boot=1, seq=1)
            protocol.validate(protocol.EVENT, ev2)
            out.append((t, ev))
        t += step
    return out


def _ring_and_answer(c, tick0, t0, out):
    """EU cadence (1 s on, 4 s off): two rings, answered 10 s after the first, 20 s talk."""
    t = t0
    ring = dict(QUIET, ring=True)
    for burst in range(2):
        _run(c, tick0, t, t + 1000, 10, ring, out)
        _run(c, tick0, t + 1000, t + 5000, 10, QUIET, out)
        t += 5000
    _run(c, tick0, t, t + 1000, 10, dict(QUIET, hook=True), out)
    _run(c, tick0, t + 1000, t + 21000, 1000, dict(QUIET, hook=True), out)
    _run(c, tick0, t + 21000, t + 22000, 10, QUIET, out)
    return t + 22000


@pytest.mark.parametrize("tick0", [(1 << 29) - 7000, (1 << 30) - 7000, 12345])
def test_seventeen_idle_days_shift_ends_on_time_and_a_late_call_is_heard(tick0):
    c = _core(tick0)
    call_at = 16 * DAY + 10 * 3600000  # day 16, 10:00: 16 days with no activity at all
    events = _run(c, tick0, 0, call_at, IDLE_STEP)
    after = _ring_and_answer(c, tick0, call_at, events)
    _run(c, tick0, after, 17 * DAY + 12 * 3600000, IDLE_STEP, out=events)

    ends = [(t, ev) for t, ev in events if ev["kind"] == "shift_end"]
    assert len(ends) == 17  # one per day, none lost
    for day, (t, ev) in enumerate(ends):
        due = day * DAY + SHIFT_END + GRACE
        assert due <= t < due + IDLE_STEP + 1000, (day, t - due)  # on time, not 0.9 day late
        assert ev["ts"] == EPOCH + t
        assert ev["equipment"] == "on" and ev["action"] == "logged"
        if day < 16:
            # Idle since boot: the true idle time, however many wraps ago.
            assert abs(ev["idle_ms"] - t) <= IDLE_STEP, (day, ev["idle_ms"], t)
        else:
            assert ev["idle_ms"] <= 7 * 3600000  # idle since the call that day
    answered = [ev for t, ev in events if ev["kind"] == "call"]
    assert len(answered) == 1 and answered[0]["outcome"] == "answered"
    assert answered[0]["rings"] == 2 and 9990 <= answered[0]["answer_ms"] <= 10010


def test_idle_time_is_counted_across_the_fold():
    tick0 = (1 << 30) - 1000
    c = _core(tick0)
    _run(c, tick0, 0, 10 * DAY, 60000)
    now = ticks_add(tick0, 10 * DAY)
    assert abs(c.idle_ms(now) - 10 * DAY) <= 60000
    assert 0 < ticks_diff(now, c.last_activity) <= fw_core.HORIZON_MS + 60000
