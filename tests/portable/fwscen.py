# Shared helpers of the firmware scenario case modules (portable: they run
# under CPython and inside MicroPython). Expected values in the cases come
# from the rules; these helpers only build cores and scripts and check that
# every event the core emits is a valid protocol event.

from firmware import cadence, core, scenario
from shared import protocol
from tests.portable import mpgc

mpgc.manual()

PERIOD = 10  # sampling period of the scenarios, ms
EPOCH = 1795392000000  # 2026-11-23T00:00Z (a Monday), the wall time at tick0
BASE = {"site": "hq", "unit": "u-0001", "seat": "A-01"}


def make_core(tick0=0, sync=True, **conf):
    raw = dict(BASE)
    for k in conf:
        raw[k] = conf[k]
    c = core.Core(raw, tick0)
    if sync:
        c.set_clock(tick0, EPOCH)
    return c


def run(c, s, t_to, t_from=0, outputs=None):
    events = scenario.run(c, s, t_from, t_to, outputs)
    for ev in events:  # every event must be a valid protocol event
        ev2 = dict(ev)
        ev2["boot"] = 1
        ev2["seq"] = 1
        protocol.validate(protocol.EVENT, ev2)
    return events


def calls(events):
    return [e for e in events if e["kind"] == "call"]


def near(actual, truth, what, slack=PERIOD):
    if not (truth - slack <= actual <= truth + slack):
        raise AssertionError(what + ": expected " + str(truth) + " +/- " + str(slack) + ", got " + str(actual))
    return actual


def answered(profile, ring_at, answer_at, hang_up_at, tick0=0, bounce=0, **conf):
    """One call ringing from ring_at, answered at answer_at: (call event, all events)."""
    conf["cadence"] = profile
    c = make_core(tick0, **conf)
    s = scenario.Script(PERIOD, tick0)
    s.answer(answer_at, cadence.PROFILES[profile], ring_at, hang_up_at, bounce)
    events = run(c, s, hang_up_at + 100, t_from=ring_at - 50)
    got = calls(events)
    if len(got) != 1:
        raise AssertionError("expected one call event, got " + repr(events))
    return got[0], events


def ring_start(profile, k):
    """Start of ring k (1-based) after the first ring, from the cadence table."""
    return (k - 1) * sum(cadence.PROFILES[profile])
