# Every cadence profile through the desk-unit core: run by
# tests/test_firmware_calls.py (CPython) and, unchanged, inside MicroPython by
# tests/test_micropython.py.
#
# Expected values come from the cadence tables (design brief section 2) and
# the 10 s / 3 ring limit, not from the code's output. Profiles that share a
# cadence (CN, DE, EU, IT, NL, CH are all 1000/4000) are the same data, so
# each distinct cadence is driven once and reported for every name using it.

from firmware import cadence, scenario
from tests.portable.check import eq
from tests.portable.fwscen import PERIOD, answered, calls, make_core, near, ring_start, run

RULES = {  # name -> cadence from the ITU list, written out here on purpose
    "CN": (1000, 4000), "DE": (1000, 4000), "EU": (1000, 4000), "IT": (1000, 4000),
    "NL": (1000, 4000), "CH": (1000, 4000), "US": (2000, 4000),
    "UK": (400, 200, 400, 2000), "FR": (1500, 3500), "ES": (1500, 3000),
    "SE": (1000, 5000), "PT": (1000, 5000),
}


def _distinct():
    """{cadence: [names]} over the built-in profiles."""
    groups = {}
    for name in cadence.PROFILES:
        groups.setdefault(tuple(cadence.PROFILES[name]), []).append(name)
    return groups


def test_profiles_match_the_cadence_table():
    for name in RULES:
        eq(tuple(cadence.PROFILES[name]), RULES[name], name)
    eq(sorted(cadence.PROFILES), sorted(RULES))
    return len(_distinct())


def test_every_profile_answered_in_second_ring():
    """Answer halfway through the first burst of ring 2: rings = 2, answer
    time = start of ring 2 + half its first burst (UK: 3000 + 200 ms)."""
    out = {}
    groups = _distinct()
    for cad in groups:
        names = sorted(groups[cad])
        name = names[0]
        truth = ring_start(name, 2) + cad[0] // 2
        call, _ = answered(name, 1000, 1000 + truth, 1000 + truth + 500)
        eq(call["rings"], 2, name + " rings")
        near(call["answer_ms"], truth, name + " answer_ms")
        eq(call["within_limit"], truth <= 10000, name + " within_limit")
        for n in names:
            out[n] = [call["rings"], call["answer_ms"] - call["answer_ms"] % PERIOD, call["within_limit"]]
    eq(sorted(out), sorted(RULES))
    return out


def test_every_profile_missed_after_four_rings():
    """Four whole rings, no answer: rings = 4 (> 3), so missed; ring_ms runs
    from the first ring's start to the end of the 4th ring, which the opto
    shows up to one pulse period (40 ms at 25 Hz) early. The event comes
    after the longest gap plus the 1.5 s margin."""
    out = {}
    groups = _distinct()
    for cad in groups:
        names = sorted(groups[cad])
        name = names[0]
        c = make_core(cadence=name)
        s = scenario.Script(PERIOD)
        s.ring(1000, cad, rings=4)
        truth = ring_start(name, 4) + sum(cad[:-1])
        longest = 0
        for i in range(1, len(cad), 2):
            longest = max(longest, cad[i])
        events = run(c, s, 1000 + truth + longest + 1600, t_from=950)
        got = calls(events)
        eq(len(got), 1, name + " one call")
        eq(got[0]["outcome"], "missed", name)
        eq(got[0]["rings"], 4, name + " rings")
        near(got[0]["ring_ms"], truth - 25, name + " ring_ms", 25)
        eq("answer_ms" in got[0], False)
        for n in names:
            out[n] = [got[0]["outcome"], got[0]["rings"]]
    return out
