# Shift-end cases for the desk-unit core: each mode (log, remind, cut),
# postpone, phone activity in the grace period. (Schedules, self-test,
# midnight, overrides, DST: firmware_schedule_cases.py.) Run by tests/test_firmware_shifts.py
# (CPython) and inside MicroPython by tests/test_micropython.py.
#
# The scripts sample every second (shift logic works in seconds; hook and
# button debounce still apply). The site is at UTC+1 (tz [[0, 60]]); 2026-11-23
# is a Monday. Expected values follow the rules in docs/firmware.md.

from firmware import scenario
from tests.portable.check import eq
from tests.portable.fwscen import make_core, run

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
MON = 1795392000000  # 2026-11-23T00:00Z
DAY = {"mon": [["day", "08:00", "16:00"]]}  # 07:00Z-15:00Z on the 23rd


def setup_shift(at_utc, shifts=DAY, overrides=None, power=True, **conf):
    """A core whose clock reads `at_utc` at t=0, and a script with equipment
    power `power` from t=0."""
    conf["tz"] = [[0, 60]]
    conf["shifts"] = shifts
    if overrides is not None:
        conf["overrides"] = overrides
    c = make_core(sync=False, **conf)
    c.set_clock(0, at_utc)
    s = scenario.Script(SEC)
    s.set_power(0, power)
    return c, s


def kinds(events):
    out = []
    for e in events:
        k = e["kind"]
        if "action" in e:
            k += "/" + e["action"]
        out.append(k)
    return out


def one(events, kind):
    got = [e for e in events if e["kind"] == kind]
    eq(len(got), 1, "one " + kind)
    return got[0]


END = MON + 15 * HOUR  # 16:00 local on Monday
T0 = END - 10 * MIN  # the scripts start 10 minutes before shift end


def test_shift_end_log_mode():
    """Log: 5 min grace after 16:00 with no phone activity, then record the
    equipment left on. idle_ms counts from the last activity (boot here)."""
    c, s = setup_shift(T0, shift_end_mode="log")
    outputs = []
    events = run(c, s, 20 * MIN, outputs=outputs)
    eq(kinds(events), ["selftest", "shift_end/logged"])
    se = events[1]
    eq(se["equipment"], "on")
    eq(se["idle_ms"], 15 * MIN)
    eq(se["ts"], END + 5 * MIN)
    eq(se["shift"], "2026-11-23/day")
    eq(se["overtime_ms"], 0)
    eq([o[1] for o in outputs], ["idle"])  # log mode shows nothing
    return se["action"]


def test_shift_end_ends_a_missed_call_reminder_nobody_acknowledged():
    c, s = setup_shift(T0, shift_end_mode="log")
    c.missed = True  # an unanswered call earlier in the shift; the agent never pressed the button
    events = run(c, s, 20 * MIN)
    eq(kinds(events), ["selftest", "shift_end/logged", "reminder/stop"])
    eq([events[2]["pattern"], events[2]["reason"], events[2]["ts"]], ["missed", "shift ended", END + 5 * MIN])
    eq(c.missed, False)
    return events[2]["action"]


def test_shift_end_with_equipment_off():
    c, s = setup_shift(T0, power=True, shift_end_mode="cut")
    s.set_power(8 * MIN, False)
    events = run(c, s, 16 * MIN)
    se = one(events, "shift_end")
    eq([se["equipment"], se["action"]], ["off", "none"])
    eq(c.relay, True)
    return se["action"]


def test_shift_end_remind_mode_until_off():
    """Remind: after the grace the shift_end pattern blinks until the
    equipment goes off (25 min after 16:00), then shift_end 'reminded' with
    off_after_ms from the shift end."""
    c, s = setup_shift(T0, shift_end_mode="remind")
    s.set_power(35 * MIN, False)
    outputs = []
    events = run(c, s, 40 * MIN, outputs=outputs)
    eq(kinds(events), ["selftest", "reminder/start", "reminder/stop", "shift_end/reminded"])
    se = one(events, "shift_end")
    eq(se["equipment"], "on")
    eq(se["off_after_ms"], 25 * MIN)
    eq([[o[0], o[1]] for o in outputs], [[0, "idle"], [15 * MIN, "shift_end"], [35 * MIN, "idle"]])
    return se["off_after_ms"]


def test_shift_end_cut_mode_and_postpone_after_cut():
    """Cut: the relay opens after the grace (16:05). The button at 16:06
    grants 30 min overtime (relay closed once the press is debounced,
    postpone logged); 5 min of grace after the overtime it opens again.
    One shift_end in all."""
    c, s = setup_shift(T0, shift_end_mode="cut")
    s.press(16 * MIN, 3 * SEC)
    outputs = []
    events = run(c, s, 56 * MIN, outputs=outputs)
    eq(kinds(events), ["selftest", "shift_end/cut", "postpone"])
    pp = events[2]
    eq([pp["granted_ms"], pp["count"]], [30 * MIN, 1])
    eq([[o[0], o[2]] for o in outputs], [[0, True], [15 * MIN, False], [16 * MIN + SEC, True], [51 * MIN, False]])
    return [o[2] for o in outputs]


def test_postpone_in_grace_then_switched_off():
    """The button during the grace (16:02) postpones the check to 16:32 (+5
    min grace); the agent switches off at 16:25: action 'postponed' and the
    overtime granted past 16:00."""
    c, s = setup_shift(T0, shift_end_mode="cut")
    s.press(12 * MIN, 3 * SEC)
    s.set_power(35 * MIN, False)
    events = run(c, s, 50 * MIN)
    eq(kinds(events), ["selftest", "postpone", "shift_end/postponed"])
    se = events[2]
    eq([se["equipment"], se["action"]], ["off", "postponed"])
    eq(se["overtime_ms"], 32 * MIN)  # from the press (16:02) plus 30 min
    eq(se["ts"], END + 37 * MIN)
    eq(c.relay, True)
    return se["overtime_ms"]


def test_phone_activity_delays_the_shift_end_check():
    """A call from 16:02 to 16:06 restarts the grace: check at 16:11."""
    c, s = setup_shift(T0, shift_end_mode="log")
    s.off_hook(12 * MIN, 16 * MIN)
    events = run(c, s, 25 * MIN)
    se = one(events, "shift_end")
    eq(se["ts"], END + 11 * MIN)
    eq(se["idle_ms"], 5 * MIN)
    return se["idle_ms"]


