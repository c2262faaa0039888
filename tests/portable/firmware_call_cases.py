# Call scenarios for the desk-unit core: run by tests/test_firmware_calls.py
# (CPython) and, unchanged, inside MicroPython by tests/test_micropython.py.
#
# Expected values come from the rules (cadence tables, the 10 s / 3 ring
# limit, docs/protocol.md), not from the code's output. Sampling period is
# 10 ms, so a measured answer time may differ from the script's ground truth
# by at most 10 ms.

from firmware import cadence, scenario
from tests.portable.check import eq
from tests.portable.fwscen import EPOCH, PERIOD, answered, calls, make_core, near, ring_start, run

def test_uk_double_ring_counts_pairs():
    """UK 400/200/400/2000: a ring is two bursts; the 3rd ring starts at 6 s."""
    call, _ = answered("UK", 1000, 1000 + 6300, 8000)
    eq(call["rings"], 3)
    near(call["answer_ms"], 6300, "answer_ms")
    eq(call["within_limit"], True)
    return call["rings"]


def test_which_limit_decided_is_stored_with_each_call():
    """Both limits go with every call, and the one a late call went past: on a
    UK cadence the 4th ring starts at 9 s (rings decide before the clock); on
    a CN cadence an answer in ring 3 at 10.5 s is late by time alone; in
    ring 4 at 15.5 s by both."""
    uk, _ = answered("UK", 1000, 1000 + 9300, 11000)
    eq((uk["rings"], uk["within_limit"], uk["exceeded"]), (4, False, "rings"))
    eq((uk["limit_ms"], uk["limit_rings"]), (10000, 3))
    cn_time, _ = answered("CN", 1000, 1000 + ring_start("CN", 3) + 500, 14000)
    eq((cn_time["rings"], cn_time["exceeded"]), (3, "time"))
    cn_both, _ = answered("CN", 1000, 1000 + ring_start("CN", 4) + 500, 19000)
    eq((cn_both["rings"], cn_both["exceeded"]), (4, "both"))
    in_time, _ = answered("CN", 1000, 1000 + ring_start("CN", 2) + 500, 9000)
    eq(("exceeded" in in_time, in_time["limit_rings"]), (False, 3))
    return [uk["exceeded"], cn_time["exceeded"], cn_both["exceeded"]]


def test_custom_profile_from_config():
    """A site cadence from config: 800 on / 2200 off, ring 3 starts at 6 s."""
    conf = {"cadence": "site1", "cadences": {"site1": [800, 2200]}}
    c = make_core(**conf)
    s = scenario.Script(PERIOD)
    s.answer(1000 + 6400, [800, 2200], 1000, 8000)
    call = calls(run(c, s, 8100, t_from=900))[0]
    eq(call["rings"], 3)
    near(call["answer_ms"], 6400, "answer_ms")
    return call["rings"]


def test_answered_in_rings_one_to_four():
    out = []
    for k in (1, 2, 3, 4):
        truth = ring_start("CN", k) + 500 + 3  # 3 ms off the sample grid
        call, events = answered("CN", 1000, 1000 + truth, 1000 + truth + 2000)
        eq(call["outcome"], "answered")
        eq(call["rings"], k, "rings")
        near(call["answer_ms"], truth, "answer_ms")
        eq(call["ring_ms"], call["answer_ms"])
        late = truth > 10000  # 500, 5500 within; 10500, 15500 late
        eq(call["within_limit"], not late, "within_limit")
        eq(call["apology_prompted"], late, "apology_prompted")
        eq(call["limit_ms"], 10000)
        near(call["talk_ms"], 2000, "talk_ms")
        eq(call["ts"], EPOCH + 1000, "ts is the first ring")
        eq(call["clock"], "ntp")
        out.append([k, call["answer_ms"] - call["answer_ms"] % PERIOD, call["within_limit"]])
    return out


def test_answered_exactly_at_the_limit_and_one_sample_after():
    """US 2000/4000: at 10 s the line is in the gap after ring 2. An answer at
    exactly 10 000 ms is within the limit, 10 010 ms is not."""
    at, _ = answered("US", 1000, 11000, 12000)
    eq(at["answer_ms"], 10000)
    eq(at["rings"], 2)
    eq(at["within_limit"], True)
    eq(at["apology_prompted"], False)
    late, _ = answered("US", 1000, 11010, 12000)
    eq(late["answer_ms"], 10010)
    eq(late["within_limit"], False)
    eq(late["apology_prompted"], True)
    return [at["within_limit"], late["within_limit"]]


def test_ring_limit_applies_before_the_ms_limit():
    """UK: ring 4 starts at 9 s, so an answer at 9.2 s is inside 10 s but in
    the 4th ring: late by the 3-ring rule; with limit_rings 0 only ms count."""
    late, _ = answered("UK", 1000, 10200, 11000)
    eq(late["rings"], 4)
    eq(late["within_limit"], False)
    ok, _ = answered("UK", 1000, 10200, 11000, limit_rings=0)
    eq(ok["within_limit"], True)
    return [late["within_limit"], ok["within_limit"]]


def test_bouncy_hook():
    """Contacts chatter for 25 ms on lift and on replace: still one answered
    call, answer time from the first contact, no outgoing call from bounces."""
    truth = 5000 + 1507
    call, events = answered("CN", 1000, 1000 + truth, 9000, bounce=25)
    eq([e["kind"] for e in events], ["call"])
    eq(call["rings"], 2)
    near(call["answer_ms"], truth, "answer_ms")
    near(call["talk_ms"], 9000 - 1000 - truth, "talk_ms", 2 * PERIOD)
    return call["rings"]


def test_hook_knock_while_ringing_is_not_an_answer():
    """A 15 ms knock on the hook switch (shorter than the 30 ms debounce)
    during ring 2 neither answers the call nor adds a ring."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    s.ring(1000, cadence.PROFILES["CN"], until=1000 + 10500)
    s.off_hook(6300, 6315)
    s.off_hook(11500, 12000)
    call = calls(run(c, s, 12100, t_from=900))[0]
    eq(call["outcome"], "answered")
    eq(call["rings"], 3)
    near(call["answer_ms"], 10500, "answer_ms")
    return call["rings"]


def test_late_answer_shows_apology_then_idle():
    """Answered at 12 s (CN, ring 3): notice at 5 s, urgent at 10 s, then the
    apologise pattern from the moment the off-hook is confirmed (30 ms
    debounce) until apology_ms (5 s) after the answer, then idle."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    s.answer(13000, cadence.PROFILES["CN"], 1000, 19000)
    outputs = []
    run(c, s, 19100, outputs=outputs)
    eq([[o[0], o[1]] for o in outputs],
       [[0, "idle"], [6000, "notice"], [11000, "urgent"], [13030, "apologise"], [18000, "idle"]])
    return [o[1] for o in outputs]
