"""Property-based fuzzing of what the collector takes in: the validator, ingest
and the spool together, and the round trip through a real InfluxDB.

Every payload is either stored and reads back from InfluxDB exactly as sent,
or quarantined with a reason; ingest never raises and the spool never refuses
a commit. Fixed seed (derandomize) and bounded example counts, so CI runs the
same examples every time. Counter-examples found here live on as the regular
tests at the bottom of the file.
"""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from collector import schema
from collector.influx import InfluxV1
from collector.ingest import Ingestor, Limits, decode_strict
from collector.spool import Spool
from shared import protocol as p

TS = 1_790_000_000_000  # the tests' own clock: 2026-09-21, well inside the protocol's range
RECEIVED = TS + 5_000
SITE, UNIT = "fz", "u-0001"
TOPIC = p.topic(SITE, UNIT, p.EVENT)



def fuzz(max_examples: int) -> settings:
    return settings(derandomize=True, database=None, deadline=None, max_examples=max_examples,
                    suppress_health_check=list(HealthCheck))

# Every code point, lone surrogates and control characters included.
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=30)
# Mostly printable: so that most free-text examples are accepted and go the whole way.
free_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30) | any_text
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | any_text,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(any_text, kids, max_size=4),
    max_leaves=12)


def event(kind: str, seq: int, **fields) -> dict:
    msg = {"v": 1, "kind": kind, "site": SITE, "unit": UNIT, "seat": "A-01", "boot": 1, "seq": seq,
           "ts": TS + seq, "clock": "ntp"}
    msg.update(fields)
    return msg


def templates(seq: int) -> list[dict]:
    """One valid event of every kind: the shapes the mutations start from."""
    return [
        event("call", seq, outcome="answered", rings=2, ring_ms=6000, answer_ms=6000, within_limit=True,
              limit_ms=10000, apology_prompted=False, talk_ms=1000, hung_up_first="caller", shift="2026-09-21/day"),
        event("outgoing", seq, talk_ms=5000),
        event("reminder", seq, pattern="missed", action="start", reason="unanswered call"),
        event("selftest", seq, ok=False, checks={"ring": "stuck", "hook": {"v": 1.5}}, faults=["ring_stuck"]),
        event("shift_end", seq, equipment="on", action="reminded", idle_ms=60000),
        event("postpone", seq, granted_ms=1_800_000, count=1),
        event("fault", seq, code="x", detail="fine"),
    ]


def dumps(msg, ensure_ascii: bool) -> bytes:
    # ensure_ascii=True writes \\uXXXX escapes (lone surrogates arrive that
    # way); False writes UTF-8, where a surrogate cannot be encoded at all.
    text = json.dumps(msg, ensure_ascii=ensure_ascii, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_event(draw) -> bytes:
    msg = draw(st.sampled_from(templates(1)))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(msg) + ["colour", "\ud800", "a\nb"]))
        msg[name] = draw(json_value)
    return dumps(msg, draw(st.booleans()))


@st.composite
def texty_event(draw) -> bytes:
    """A valid shape whose free-text fields hold arbitrary characters: the
    ones a unit could really send wrong."""
    msg = draw(st.sampled_from(templates(1)))
    msg["shift"] = draw(free_text)
    if msg["kind"] == "fault":
        msg["detail"] = draw(free_text)
    if msg["kind"] == "reminder":
        msg["reason"] = draw(free_text)
    if msg["kind"] == "selftest":
        msg["faults"] = draw(st.lists(free_text, max_size=3))
        msg["checks"] = draw(st.dictionaries(free_text, json_value, max_size=3))
    return dumps(msg, draw(st.booleans()))


def duplicate_keys(draw_value: str) -> bytes:
    body = dumps(templates(1)[6], True)[:-1]
    return body + b',"detail":' + json.dumps(draw_value).encode() + b"}"


def deep(n: int) -> bytes:
    return b'{"v":1,"kind":"selftest","checks":' + b"[" * n + b"]" * n + b"}"


payloads = st.one_of(
    st.binary(max_size=200),
    json_value.map(lambda v: dumps(v, True)),
    mutated_event(),
    texty_event(),
    any_text.map(duplicate_keys),
    st.integers(1, 100_000).map(deep),
    st.sampled_from([b"NaN", b'{"v":NaN}', b"[1e999]", b"-Infinity", b"\xed\xa0\x80", b"\xff", b""]),
)


# ---- the validator -----------------------------------------------------------------


@fuzz(1500)
@given(payloads)
def test_the_validator_accepts_only_what_can_be_stored_exactly(payload):
    try:
        msg = decode_strict(p.EVENT, payload)
    except p.ProtocolError as exc:
        reason = str(exc)
        reason.encode("utf-8")  # the reason itself is always storable
        assert reason
        return
    # Accepted: it must become a line InfluxDB takes, and say the same again.
    line = schema.event_line(msg)
    line.encode("utf-8")
    assert "\n" not in line and "\r" not in line
    assert decode_strict(p.EVENT, p.encode(p.EVENT, msg)) == msg


# ---- ingest and the spool together --------------------------------------------------


@pytest.fixture
def spool(tmp_path):
    s = Spool(tmp_path / "spool.db")
    yield s
    s.close()


@fuzz(300)
@given(st.lists(payloads, min_size=1, max_size=20))
def test_ingest_and_spool_take_every_payload(spool, payloads_):
    ingest = Ingestor({}, Limits(max_past_ms=10 ** 15, max_future_ms=10 ** 15))
    result = ingest.batch([(TOPIC, payload, RECEIVED) for payload in payloads_])
    # Everything is accounted for: stored, a duplicate, or quarantined with a reason.
    assert len(result.lines) + result.duplicates + len(result.quarantined) == len(payloads_)
    assert all(reason for *_, reason in result.quarantined)
    spool.commit(result.lines, result.quarantined, list(result.changed.values()))


# ---- the round trip through InfluxDB -----------------------------------------------------


_seq = itertools.count(1)


def _read_back(db: InfluxV1, kind: str, seq: int) -> dict:
    rows = db.query(f'SELECT * FROM "{kind}" WHERE "seq" = {seq}')
    series = rows[0]["series"]
    assert len(series) == 1 and len(series[0]["values"]) == 1
    return dict(zip(series[0]["columns"], series[0]["values"][0]))


@fuzz(120)
@given(st.lists(texty_event(), min_size=1, max_size=8))
def test_accepted_events_read_back_from_influxdb_exactly_as_sent(influx_db, events):
    accepted = []
    for payload in events:
        try:
            msg = decode_strict(p.EVENT, payload)
        except p.ProtocolError:
            continue
        msg["seq"] = next(_seq)  # one point each
        msg["ts"] = TS + msg["seq"]
        accepted.append(msg)
    assume(accepted)
    influx_db.write_lines([schema.event_line(m) for m in accepted])
    for msg in accepted:
        back = _read_back(influx_db, msg["kind"], msg["seq"])
        _, tags, fields, ts = schema.event_parts(msg)
        assert back["time"] == ts
        for name, value in tags.items():
            assert back[name] == value, (name, value, back[name])
        for name, value in fields.items():
            assert back[name] == value, (name, value, back[name])
        if msg["kind"] == "selftest":
            assert json.loads(back["checks"]) == msg["checks"]
            assert (back["faults"].split(",") if back["faults"] else []) == msg["faults"]


@pytest.fixture(scope="module")
def influx_db(influxdb, request):
    name = "fuzz_" + request.module.__name__.rsplit(".", 1)[-1]
    db = InfluxV1(influxdb.url, name)
    db.query(f'DROP DATABASE "{name}"', method="POST")
    db.create_database()
    return db


# ---- counter-examples found by the suites above, kept as plain tests ----------------------


@pytest.mark.parametrize("payload, field", [
    (dumps(event("fault", 1, code="x", detail="\ud800"), True), "detail"),
    (dumps(event("reminder", 1, pattern="missed", action="start", reason="\udfff"), True), "reason"),
    (dumps(event("outgoing", 1, talk_ms=1, shift="\ud83d"), True), "shift"),
    (dumps(event("selftest", 1, ok=True, checks={}, faults=["\ud800"]), True), "faults"),
    (dumps(event("selftest", 1, ok=True, checks={"\ud800": 1}, faults=[]), True), "checks"),
    (dumps(event("outgoing", 1, talk_ms=1, shift="ends\\"), True), "shift"),
    (dumps(event("outgoing", 1, talk_ms=1, shift="a\tb"), True), "shift"),
    (dumps(event("outgoing", 1, talk_ms=1, shift="a\nb"), True), "shift"),
    (dumps(event("selftest", 1, ok=True, checks={"x": float("nan")}, faults=[]), True), ""),
    (dumps(event("selftest", 1, ok=True, checks={"x": 2 ** 64}, faults=[]), True), "checks"),
    (dumps(event("selftest", 1, ok=True, checks={}, faults=["a,b"]), True), "faults"),
    (dumps(event("selftest", 1, ok=True, checks={}, faults=[""]), True), "faults"),
    (duplicate_keys("again"), "detail"),
])
def test_refused_with_the_field_named(payload, field):
    with pytest.raises(p.ProtocolError) as err:
        decode_strict(p.EVENT, payload)
    assert err.value.field == field, str(err.value)


def test_an_unknown_field_named_with_a_surrogate_has_a_storable_reason(tmp_path):
    payload = dumps(dict(event("outgoing", 1, talk_ms=1), **{"\ud800": 1}), True)
    result = Ingestor({}, Limits(max_past_ms=10 ** 15)).batch([(TOPIC, payload, RECEIVED)])
    assert len(result.quarantined) == 1 and "unknown field" in result.quarantined[0][3]
    spool = Spool(tmp_path / "s.db")
    spool.commit([], result.quarantined, [])
    spool.close()


def test_a_surrogate_in_the_quarantine_reason_is_escaped_not_refused(tmp_path):
    from collector.ingest import quarantine_row

    spool = Spool(tmp_path / "s.db")
    spool.commit([], [quarantine_row(1, "t/\ud800", b"\xff", "bad \udc80 thing")], [])
    topic, reason = sqlite3.connect(tmp_path / "s.db").execute("SELECT topic, reason FROM quarantine").fetchone()
    assert topic == "t/\\ud800" and reason == "bad \\udc80 thing"
    spool.close()
