# Shift schedule cases for the desk-unit core: shift-start self-test and its
# faults, shift labels, shifts crossing midnight, back-to-back shifts, dated
# overrides, DST through the host-computed offset table, no shift logic
# without NTP. (Shift end: firmware_shift_cases.py.) Run by tests/test_firmware_shifts.py
# (CPython) and inside MicroPython by tests/test_micropython.py.
#
# The scripts sample every second (shift logic works in seconds; hook and
# button debounce still apply). The site is at UTC+1 (tz [[0, 60]]); 2026-11-23
# is a Monday. Expected values follow the rules in docs/firmware.md.

from firmware import config, localtime, scenario
from tests.portable.check import eq
from tests.portable.fwscen import make_core, run
from tests.portable.firmware_shift_cases import DAY, END, HOUR, MIN, MON, SEC, T0, kinds, one, setup_shift

def test_selftest_at_shift_start_and_labels():
    """Booting inside the day shift runs the self-test at once; every event
    carries the shift label '2026-11-23/day'."""
    c, s = setup_shift(T0)
    s.off_hook(60 * SEC, 90 * SEC)
    events = run(c, s, 100 * SEC)
    eq(kinds(events), ["selftest", "outgoing"])
    st = events[0]
    eq(st["ok"], True)
    eq(st["checks"], {"hook": "on", "ring": "ok", "power": "on"})
    eq(st["faults"], [])
    eq([e["shift"] for e in events], ["2026-11-23/day", "2026-11-23/day"])
    return st["checks"]

def test_night_shift_crossing_midnight():
    """Sunday's night shift 22:00-06:00 local: events after midnight on
    Monday still belong to '2026-11-22/night', and so does its shift_end."""
    night = {"sun": [["night", "22:00", "06:00"]]}
    start = MON + 4 * HOUR + 50 * MIN  # 05:50 local on Monday
    c, s = setup_shift(start, shifts=night, shift_end_mode="log")
    s.off_hook(60 * SEC, 120 * SEC)
    events = run(c, s, 20 * MIN)
    eq(kinds(events), ["selftest", "outgoing", "shift_end/logged"])
    eq([e["shift"] for e in events], ["2026-11-22/night"] * 3)
    eq(events[2]["ts"], MON + 5 * HOUR + 5 * MIN)
    return events[2]["shift"]

def test_back_to_back_shifts():
    """Day 06:00-14:00 then late 14:00-22:00: at 14:00 the day shift ends
    with the seat still staffed (a handover: action none with the equipment
    on, nothing switched off) and the late shift starts with its self-test."""
    shifts = {"mon": [["day", "06:00", "14:00"], ["late", "14:00", "22:00"]]}
    c, s = setup_shift(MON + 13 * HOUR - 2 * MIN, shifts=shifts, shift_end_mode="cut")
    events = run(c, s, 5 * MIN)
    eq(kinds(events), ["selftest", "shift_end/none", "selftest"])
    eq(events[1]["equipment"], "on")
    eq([e["shift"] for e in events], ["2026-11-23/day", "2026-11-23/day", "2026-11-23/late"])
    eq(c.relay, True)
    return [e["shift"] for e in events]

def test_dated_override_for_a_holiday():
    """An empty override for 2026-11-23 means no shift that day; an override
    with a short shift replaces the weekday's."""
    c, s = setup_shift(T0, overrides={"2026-11-23": []})
    eq(run(c, s, 20 * MIN), [])
    c2, s2 = setup_shift(T0, overrides={"2026-11-23": [["holiday", "15:30", "15:55"]]}, shift_end_mode="log")
    events = run(c2, s2, 20 * MIN)
    eq(kinds(events), ["selftest", "shift_end/logged"])
    eq(events[1]["shift"], "2026-11-23/holiday")
    eq(events[1]["ts"], END - 5 * MIN + 5 * MIN)  # 15:55 + 5 min grace
    return events[1]["shift"]

def test_selftest_faults():
    """A ring input stuck high for longer than stuck_ring_ms and an
    unreadable power sense fail the self-test: a selftest event with the
    faults, a fault event, and the steady fault pattern."""
    c, s = setup_shift(T0 - 30 * SEC, power=None, shifts={"mon": [["day", "15:50", "16:00"]]})
    s.bursts.append((0, 60 * MIN))  # ring opto stuck at pulsing
    s.ring_hz = 0  # level high all the time
    outputs = []
    events = run(c, s, 60 * SEC, outputs=outputs)
    st = one(events, "selftest")
    eq(st["ok"], False)
    eq(st["checks"]["power"], "unreadable")
    eq(st["checks"]["ring"], "stuck")
    eq(sorted(st["faults"]), ["power_unreadable", "ring_stuck"])
    fault = one(events, "fault")
    eq(fault["code"], "selftest")
    eq(c.pattern in ("fault", "urgent", "notice"), True)
    return st["faults"]

def test_no_shift_logic_without_ntp():
    """Shift times need a real clock: with only an unsynced guess, no
    self-test or shift end happens."""
    c = make_core(sync=False, tz=[[0, 60]], shifts=DAY)
    c.set_clock(0, T0, "unsynced")
    s = scenario.Script(SEC)
    s.set_power(0, True)
    eq(run(c, s, 20 * MIN), [])
    return c.phase

def test_dst_from_the_offset_table():
    """Europe/Berlin 2026: +1 h until 2026-03-29T01:00Z, +2 h until
    2026-10-25T01:00Z, then +1 h. A Saturday night shift 22:00-06:00 lasts 7 h
    over the spring change and 9 h over the autumn one."""
    table = [[0, 60], [1774746000000, 120], [1792890000000, 60]]
    conf = config.validate({"site": "hq", "unit": "u-0001", "seat": "A-01", "tz": table,
                            "shifts": {"sat": [["night", "22:00", "06:00"]]}})
    spring = localtime.shift_at(conf, 1774746000000 + HOUR)  # 2026-03-29T02:00Z
    eq(spring[0], "2026-03-28/night")
    eq(spring[1], 1774656000000 + 21 * HOUR)  # 2026-03-28T21:00Z
    eq(spring[2] - spring[1], 7 * HOUR)
    autumn = localtime.shift_at(conf, 1792890000000)
    eq(autumn[0], "2026-10-24/night")
    eq(autumn[2] - autumn[1], 9 * HOUR)
    eq(localtime.local_text(table, 1774746000000 - 1), "2026-03-29 01:59")
    eq(localtime.local_text(table, 1774746000000), "2026-03-29 03:00")
    return [spring[0], autumn[0]]
