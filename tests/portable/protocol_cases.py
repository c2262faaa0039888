# Protocol cases: run by tests/test_protocol.py (CPython) and, unchanged,
# inside MicroPython by tests/test_micropython.py.

import json

from shared import protocol as p
from tests.portable.check import contains, eq, raises

TS = 1763900000000  # 2025-11-23T12:13:20Z


def _call(**over):
    msg = {
        "v": 1, "kind": "call", "site": "hq", "unit": "u-0001", "seat": "A-01",
        "boot": 3, "seq": 17, "ts": TS, "clock": "ntp", "shift": "2025-11-23/day",
        "outcome": "answered", "rings": 2, "ring_ms": 6400, "answer_ms": 6400,
        "within_limit": True, "limit_ms": 10000, "apology_prompted": False,
    }
    for k in over:
        msg[k] = over[k]
    return msg


def _base(kind, **fields):
    msg = {"v": 1, "kind": kind, "site": "hq", "unit": "u-0001", "seat": "A-01",
           "boot": 3, "seq": 18, "ts": TS, "clock": "ntp"}
    for k in fields:
        msg[k] = fields[k]
    return msg


def _error(channel, payload):
    return raises(p.ProtocolError, p.decode, channel, payload)


def _error_event(msg):
    return _error(p.EVENT, json.dumps(msg))


# ---- topics ----

def test_topic_layout():
    t = p.topic("hq", "u-0001", p.EVENT)
    eq(t, "seatmon/v1/hq/u-0001/event")
    eq(p.parse_topic(t), ("hq", "u-0001", "event"))
    eq(p.topic("hq", "u1", p.ACK, prefix="acme/seatmon"), "acme/seatmon/v1/hq/u1/ack")
    eq(p.parse_topic("acme/seatmon/v1/hq/u1/ack", prefix="acme/seatmon"), ("hq", "u1", "ack"))
    eq(p.subscription(p.EVENT), "seatmon/v1/+/+/event")
    return t


def test_topic_rejects_wildcards_and_unknown_channels():
    a = raises(p.ProtocolError, p.topic, "hq", "u/1", p.EVENT)
    contains(a, "'unit'")
    b = raises(p.ProtocolError, p.topic, "h+q", "u1", p.EVENT)
    contains(b, "'site'")
    c = raises(p.ProtocolError, p.parse_topic, "seatmon/v1/hq/u1/bogus")
    contains(c, "unknown channel")
    d = raises(p.ProtocolError, p.parse_topic, "seatmon/v2/hq/u1/event")
    contains(d, "unsupported protocol version")
    e = raises(p.ProtocolError, p.parse_topic, "seatmon/v1/hq/event")
    contains(e, "expected seatmon/v1/<site>/<unit>/<channel>")
    return [a, b, c, d, e]


# ---- round trips: one per message type ----

def test_round_trip_every_event_kind():
    msgs = [
        _call(),
        _call(outcome="missed", rings=5, ring_ms=24000, answer_ms=None, within_limit=False),
        _call(outcome="abandoned", rings=1, ring_ms=1000, answer_ms=None, within_limit=False),
        _call(answer_ms=12500, ring_ms=12500, within_limit=False, apology_prompted=True,
              talk_ms=60000, hung_up_first="caller"),
        _base("outgoing", talk_ms=45000),
        _base("reminder", pattern="missed", action="start", reason="missed call"),
        _base("selftest", ok=False, checks={"hook": "on", "ring": "stuck"}, faults=["ring_stuck"]),
        _base("shift_end", shift="2025-11-23/night", equipment="on", action="cut", idle_ms=900000,
              overtime_ms=0),
        _base("postpone", granted_ms=1800000, count=1),
        _base("fault", code="config_invalid", detail="key 'limit_ms': expected an integer"),
    ]
    kinds = []
    for msg in msgs:
        data = p.encode(p.EVENT, msg)
        back = p.decode(p.EVENT, data)
        eq(back, msg)
        kinds.append(back["kind"])
    return kinds


def test_round_trip_other_channels():
    status = {"v": 1, "site": "hq", "unit": "u-0001", "state": "online", "ts": TS, "boot": 3,
              "fw": "0.1.0", "reason": "power_on", "ip": "10.0.0.7", "seat": "A-01"}
    will = {"v": 1, "site": "hq", "unit": "u-0001", "state": "offline"}
    hb = {"v": 1, "site": "hq", "unit": "u-0001", "boot": 3, "ts": TS, "uptime_s": 3600,
          "heap_free": 81234, "rssi": -61, "journal_depth": 4, "dropped": 0, "acked": 12,
          "clock_offset_ms": -35}
    ack = {"v": 1, "unit": "u-0001", "seq": 17, "ts": TS}
    cfg = {"v": 1, "config": {"limit_ms": 10000}}
    live = {"v": 1, "site": "hq", "unit": "u-0001", "seat": "A-01", "state": "ringing", "since": TS,
            "rings": 2, "pattern": "notice", "missed_pending": False, "left_on": False, "ts": TS + 6000}
    out = []
    for channel, msg in ((p.STATUS, status), (p.STATUS, will), (p.HEARTBEAT, hb), (p.ACK, ack), (p.CONFIG, cfg),
                         (p.LIVE, live)):
        eq(p.decode(channel, p.encode(channel, msg)), msg)
        out.append(channel)
    return out


def test_encoding_is_compact():
    data = p.encode(p.EVENT, _call())
    eq(data.find(b" "), -1, "compact JSON has no spaces")
    return len(data)


def test_event_id():
    return list(eq(p.event_id(_call()), ("u-0001", 3, 17)))


# ---- malformed input: every kind of wrong names its problem ----

def test_invalid_json():
    return [contains(_error(p.EVENT, b"{not json"), "not valid JSON"),
            contains(_error(p.EVENT, b"\xff\xfe"), "not UTF-8"),
            contains(_error(p.EVENT, b""), "not valid JSON")]


def test_not_an_object():
    return [contains(_error(p.EVENT, b"[1,2]"), "expected a JSON object, got list"),
            contains(_error(p.STATUS, b"42"), "expected a JSON object, got int")]


def test_missing_field():
    msg = _call()
    del msg["seq"]
    a = contains(_error_event(msg), "field 'seq': missing")
    msg = _call()
    del msg["outcome"]
    b = contains(_error_event(msg), "field 'outcome': missing")
    c = contains(_error(p.ACK, b'{"v":1,"unit":"u1"}'), "field 'seq': missing")
    d = contains(_error(p.LIVE, b'{"v":1,"site":"hq","unit":"u1","seat":"A","state":"dancing"}'),
                 "field 'state': expected one of idle, ringing, talking, outgoing")
    return [a, b, c, d]


def test_wrong_type():
    a = contains(_error_event(_call(rings="2")), "field 'rings': expected an integer, got str")
    b = contains(_error_event(_call(within_limit=1)), "field 'within_limit': expected true or false, got int")
    c = contains(_error_event(_call(rings=True)), "field 'rings': expected an integer, got bool")
    d = contains(_error_event(_call(seq=1.5)), "field 'seq': expected an integer, got float")
    e = contains(_error_event(_call(unit="a b")), "field 'unit': expected an id")
    return [a, b, c, d, e]


def test_out_of_range_and_enums():
    a = contains(_error_event(_call(ts=123)), "field 'ts': expected a value from")
    b = contains(_error_event(_call(outcome="hung")), "field 'outcome': expected one of answered, missed, abandoned")
    c = contains(_error_event(_call(v=2)), "field 'v': expected a value from 1 to 1, got 2")
    d = contains(_error_event(_call(seq=0)), "field 'seq'")
    return [a, b, c, d]


def test_unknown_kind():
    msg = _call(kind="coffee")
    return contains(_error_event(msg), "field 'kind': unknown event kind 'coffee'")


def test_unknown_field():
    return contains(_error_event(_call(colour="red")), "field 'colour': unknown field")


def test_oversized():
    msg = _base("fault", code="x", detail="y" * 150)
    data = json.dumps(msg) + " " * (p.MAX_PAYLOAD)
    a = contains(_error(p.EVENT, data), "over the 2048-byte limit")
    big = _base("selftest", ok=True, checks={}, faults=[])
    for i in range(200):
        big["checks"]["c" + str(i)] = "fine"
    b = contains(raises(p.ProtocolError, p.encode, p.EVENT, big), "over the 2048-byte limit")
    return [a, b]


def test_call_consistency():
    a = contains(_error_event(_call(answer_ms=None)), "field 'answer_ms': missing for an answered call")
    b = contains(_error_event(_call(outcome="missed", within_limit=False)), "field 'answer_ms': must be null")
    c = contains(_error_event(_call(outcome="missed", answer_ms=None)), "field 'within_limit': must be false")
    return [a, b, c]


def test_topic_payload_mismatch():
    msg = _call()
    p.check_topic_matches("hq", "u-0001", msg)
    a = contains(raises(p.ProtocolError, p.check_topic_matches, "hq", "u-0002", msg),
                 "payload names unit 'u-0001' but was published under unit 'u-0002'")
    b = contains(raises(p.ProtocolError, p.check_topic_matches, "branch", "u-0001", msg), "site")
    return [a, b]


def test_encode_validates():
    return contains(raises(p.ProtocolError, p.encode, p.EVENT, _call(rings=-1)), "field 'rings'")


# ---- what the host could not store or give back exactly ----


def test_control_characters_are_refused_in_every_string():
    a = contains(raises(p.ProtocolError, p.validate_event, _base("fault", code="x", detail="two\nlines")),
                 "field 'detail': expected a string of at most 200 printable characters")
    b = contains(raises(p.ProtocolError, p.validate_event, _call(shift="day\t2")), "field 'shift'")
    c = contains(raises(p.ProtocolError, p.validate_event, _base("selftest", ok=True, checks={}, faults=["a\x7fb"])),
                 "field 'faults'")
    d = contains(raises(p.ProtocolError, p.validate_event, _base("selftest", ok=True, checks={"k": "\x1b[31m"},
                                                                 faults=[])), "field 'checks'")
    e = contains(raises(p.ProtocolError, p.validate, p.STATUS,
                        {"v": 1, "site": "hq", "unit": "u-0001", "state": "online", "fw": "1.0\r"}), "field 'fw'")
    # Printable text beyond ASCII is fine.
    p.validate_event(_base("fault", code="x", detail="caf\u00e9 \u00fc\u20ac \\ \"q\""))
    return [a, b, c, d, e]


def test_shift_labels_cannot_hold_a_backslash():
    # An InfluxDB tag cannot end in one; labels never need one.
    return contains(raises(p.ProtocolError, p.validate_event, _call(shift="2025-11-23/ends\\")), "without a backslash")


def test_objects_hold_plain_finite_data_only():
    ok = _base("selftest", ok=True, checks={"ring": {"level": 1.5, "n": [1, 2, None, True]}, "name": "x"}, faults=[])
    p.validate_event(ok)
    nan = float("nan")
    inf = float("inf")
    bad = [
        {"v": nan}, {"v": inf}, {"v": [-inf]}, {"v": 2 ** 63}, {"v": -(2 ** 63) - 1},
        {"a": {"b": {"c": {"d": {"e": 1}}}}},  # deeper than OBJECT_DEPTH
        {"ta\tb": 1},
    ]
    out = []
    for checks in bad:
        out.append(contains(raises(p.ProtocolError, p.validate_event,
                                   _base("selftest", ok=True, checks=checks, faults=[])), "field 'checks'"))
    return out


def test_an_odd_unknown_field_name_is_quoted_in_the_error():
    msg = _call()
    msg["bad\nname"] = 1
    return contains(raises(p.ProtocolError, p.validate_event, msg), "unknown field")
