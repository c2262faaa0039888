# Unanswered, outgoing and back-to-back calls, noisy inputs, clocks and
# ticks wrap-around through the desk-unit core: run by tests/test_firmware_calls.py
# (CPython) and, unchanged, inside MicroPython by tests/test_micropython.py.
#
# Expected values come from the rules (cadence tables, the 10 s / 3 ring
# limit, docs/protocol.md), not from the code's output. Sampling period is
# 10 ms, so a measured answer time may differ from the script's ground truth
# by at most 10 ms.

from firmware import cadence, core, scenario
from firmware.ticks import TICKS_PERIOD
from tests.portable.check import eq
from tests.portable.fwscen import EPOCH, PERIOD, answered, calls, make_core, near, run

def test_unanswered_after_one_ring():
    """One CN ring (1 s) and the caller gives up: ringing stopped before the
    limit, so docs/protocol.md calls it 'abandoned'. It is reported once the
    longest gap (4 s) plus the margin (1.5 s) passed after the ring, and the
    missed-call reminder starts."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    s.ring(1000, cadence.PROFILES["CN"], rings=1)
    outputs = []
    events = run(c, s, 20000, outputs=outputs)
    call = calls(events)[0]
    eq(call["outcome"], "abandoned")
    eq(call["rings"], 1)
    near(call["ring_ms"], 1000 - 25, "ring_ms", 25)
    eq(call["within_limit"], False)
    eq([e["kind"] for e in events], ["call", "reminder"])
    eq(events[1]["pattern"], "missed")
    eq(events[1]["action"], "start")
    # reported between 2000 + 5500 - 40 and 2000 + 5500 + 10
    missed_at = [o[0] for o in outputs if o[1] == "missed"][0]
    near(missed_at, 7500 - 15, "reported at", 25)
    return call["outcome"]


def test_missed_after_five_rings_until_button():
    """Five CN rings: 5 > 3 and 21 s > 10 s: missed. The missed pattern stays
    until the button is pressed; the press is journaled as an ack."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    s.ring(1000, cadence.PROFILES["CN"], rings=5)
    s.press(30000)
    outputs = []
    events = run(c, s, 30500, outputs=outputs)
    call = calls(events)[0]
    eq(call["outcome"], "missed")
    eq(call["rings"], 5)
    near(call["ring_ms"], 21000 - 25, "ring_ms", 25)
    eq([e["kind"] + "/" + e.get("action", "") for e in events], ["call/", "reminder/start", "reminder/ack"])
    pats = [o[1] for o in outputs]
    eq(pats, ["idle", "notice", "urgent", "missed", "idle"])
    # notice at 5 s and urgent at 10 s after the first ring
    eq(outputs[1][0], 6000)
    eq(outputs[2][0], 11000)
    near(outputs[4][0], 30030, "ack after debounce", PERIOD)
    return pats


def test_outgoing_call():
    """Off-hook for 10 s with no ringing: one outgoing event, talk_ms 10 s."""
    c = make_core()
    s = scenario.Script(PERIOD)
    s.off_hook(2003, 12003)
    events = run(c, s, 12100, t_from=1900)
    eq([e["kind"] for e in events], ["outgoing"])
    near(events[0]["talk_ms"], 10000, "talk_ms")
    near(events[0]["ts"], EPOCH + 2003, "ts", PERIOD)
    return events[0]["talk_ms"]


def test_noisy_ring_input():
    """Isolated spikes (5 ms) while idle make no call; dropouts of 60 ms
    inside a burst and spikes in the gaps do not split or add rings."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    for t in range(500, 8000, 730):
        s.spike(t)
    quiet = run(c, s, 8000)
    eq(quiet, [], "no events from noise alone")
    s2 = scenario.Script(PERIOD)
    s2.ring(21000, cadence.PROFILES["CN"], until=21000 + 12400)
    for t in (21300, 26500, 31600):  # inside bursts of rings 1, 2, 3
        s2.dropout(t, 60)
    for t in (23000, 24000, 28000, 29500):  # in the gaps
        s2.spike(t)
    s2.off_hook(21000 + 12400, 34000)
    call = calls(run(c, s2, 34100, t_from=20000))[0]
    eq(call["rings"], 3)
    near(call["answer_ms"], 12400, "answer_ms")
    return call["rings"]


def test_two_calls_back_to_back():
    """Call 1 answered in ring 2 and hung up at 8 s; call 2 rings 1 s later
    and is answered in ring 1: two call events, each timed from its own
    first ring."""
    c = make_core(cadence="CN")
    s = scenario.Script(PERIOD)
    s.answer(1000 + 5600, cadence.PROFILES["CN"], 1000, 8000)
    s.answer(9000 + 700, cadence.PROFILES["CN"], 9000, 11000)
    got = calls(run(c, s, 11100, t_from=900))
    eq(len(got), 2)
    eq([x["rings"] for x in got], [2, 1])
    near(got[0]["answer_ms"], 5600, "first")
    near(got[1]["answer_ms"], 700, "second")
    eq(got[1]["ts"], EPOCH + 9000)
    return [x["rings"] for x in got]


def test_ticks_wrap_in_the_middle_of_a_call():
    """ticks_ms wraps at 2**30 between ring 1 and the answer: same results
    as without the wrap."""
    tick0 = TICKS_PERIOD - 3000
    truth = 5000 + 400
    call, _ = answered("CN", 1000, 1000 + truth, 1000 + truth + 2000, tick0=tick0)
    eq(call["rings"], 2)
    near(call["answer_ms"], truth, "answer_ms")
    near(call["talk_ms"], 2000, "talk_ms")
    eq(call["ts"], EPOCH + 1000)
    return call["rings"]


def test_clock_synced_after_the_call():
    """No clock while the call happens; NTP arrives at 12 s: the held event
    is stamped from the ticks->wall offset, as an NTP time."""
    c = make_core(sync=False, cadence="CN")
    s = scenario.Script(PERIOD)
    s.answer(6500, cadence.PROFILES["CN"], 1000, 9000)
    early = run(c, s, 12000, t_from=900)
    eq(early, [], "held until a clock is known")
    c.set_clock(12000, EPOCH + 12000)
    later = run(c, s, 12100, t_from=12000)
    call = calls(later)[0]
    eq(call["ts"], EPOCH + 1000)
    eq(call["clock"], "ntp")
    return call["clock"]


def test_clock_never_synced():
    """With only a best-effort clock (e.g. the last journaled stamp) events
    wait clock_wait_ms and then go out marked unsynced; with no clock at
    all they are stamped from the firmware epoch."""
    c = make_core(sync=False, cadence="CN", clock_wait_ms=10000)
    c.set_clock(0, EPOCH - 3600000, "unsynced")
    s = scenario.Script(PERIOD)
    s.answer(2500, cadence.PROFILES["CN"], 1000, 4000)
    events = run(c, s, 14100, t_from=900)
    call = calls(events)[0]
    eq(call["clock"], "unsynced")
    eq(call["ts"], EPOCH - 3600000 + 1000)
    c2 = make_core(sync=False, cadence="CN", clock_wait_ms=10000)
    call2 = calls(run(c2, s, 14100, t_from=900))[0]
    eq(call2["clock"], "unsynced")
    eq(call2["ts"], core.FW_EPOCH_MS + 1000)
    return [call["clock"], call2["clock"]]


def test_disconnect_supervision_says_who_hung_up_first():
    """With supervision: a line disconnect before on-hook means the caller
    hung up first; on-hook without it means the agent did. Without
    supervision the field is absent."""
    c = make_core(cadence="CN", disconnect_supervision=True)
    s = scenario.Script(PERIOD)
    s.answer(3000, cadence.PROFILES["CN"], 1000, 6000)
    s.disconnect(5000)
    s.answer(8000, cadence.PROFILES["CN"], 7000, 10000)
    got = calls(run(c, s, 10100, t_from=900))
    eq([x["hung_up_first"] for x in got], ["caller", "agent"])
    plain, _ = answered("CN", 1000, 3000, 4000)
    eq("hung_up_first" in plain, False)
    return [x["hung_up_first"] for x in got]


