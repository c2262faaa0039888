"""The collector's deciding logic without servers: ack marks, gaps,
de-duplication, quarantine reasons, config errors."""

import json

import pytest

from collector import config
from collector.ingest import Ingestor, Limits
from collector.tracker import UnitState, to_ranges
from shared import protocol as p
from tests.portable.protocol_cases import _call

NOW = 1763900000000


def test_mark_is_highest_contiguous_and_duplicates_are_refused():
    s = UnitState("u")
    assert s.store(1) and s.store(2) and s.store(4)
    assert s.mark == 2 and s.above == {4}
    assert not s.store(2) and not s.store(4)
    assert s.store(3) and s.mark == 4 and s.above == set()


def test_gaps_close_as_lost_only_when_the_unit_passes_them():
    s = UnitState("u")
    for seq in (1, 2, 5, 6, 9):
        s.store(seq)
    assert s.unit_mark(2) == [] and s.mark == 2
    assert s.unit_mark(8) == [(3, 4), (7, 8)]
    assert s.mark == 9 and s.lost == 4
    assert s.unit_mark(5) == []  # an old heartbeat changes nothing


def test_fresh_spool_does_not_invent_losses():
    s = UnitState("u")
    s.store(5001)
    assert s.unit_mark(5000) == [] and s.lost == 0 and s.mark == 5001


def test_seed_from_retained_ack_and_persistence_round_trip():
    s = UnitState("u")
    s.store(12)
    assert s.seed(10) and s.mark == 10 and s.above == {12}
    s.store(11)
    assert s.mark == 12
    s.store(20)
    s.store(21)
    assert to_ranges({1, 2, 3, 7, 9, 10}) == [[1, 3], [7, 7], [9, 10]]
    assert UnitState.above_from_json(s.above_json()) == {20, 21}


def _topic(unit="u-0001", channel="event", site="hq"):
    return p.topic(site, unit, channel)


def _event(**kw):
    msg = _call(ts=NOW - 1000, **kw)
    return json.dumps(msg, separators=(",", ":")).encode()


def test_ingest_stores_dedups_and_quarantines_with_reasons():
    ing = Ingestor({}, Limits())
    big = b'{"v":1,' + b" " * 3000 + b"}"
    future = json.dumps(_call(ts=NOW + 3 * 86400 * 1000, seq=9)).encode()
    out = ing.batch([
        (_topic(), _event(seq=1), NOW),
        (_topic(), _event(seq=1), NOW),  # redelivered
        (_topic(unit="u-0002"), _event(seq=2), NOW),  # payload names u-0001
        (_topic(), future, NOW),
        (_topic(), big, NOW),
        (_topic(), b"\xff\xfe", NOW),
        ("seatmon/v1/hq/bad unit/event", _event(seq=3), NOW),
        (_topic(channel="heartbeat"), b'{"v":1}', NOW),
    ])
    assert out.events == 1 and out.duplicates == 1 and len(out.lines) == 1
    reasons = [q[3] for q in out.quarantined]
    assert "but was published under unit 'u-0002'" in reasons[0]
    assert "in the future" in reasons[1]
    assert "over the 2048-byte limit" in reasons[2]
    assert reasons[3] == "payload is not UTF-8"
    assert "bad unit id" in reasons[4]
    assert reasons[5].startswith("field 'site': missing")
    assert ing.units["hq/u-0001"].mark == 1


def test_peer_collector_stores_keep_the_ack_mark_contiguous():
    # Two collectors share the units' events: this one stored seq 1 and 3, its
    # peer announces 2 (in the format the service publishes), so the mark is 3.
    ing = Ingestor({}, Limits())
    ing.batch([(_topic(), _event(seq=1), NOW), (_topic(), _event(seq=3), NOW)])
    assert ing.units["hq/u-0001"].mark == 1
    peer = json.dumps({"from": "other", "units": {"hq/u-0001": to_ranges({2})}}).encode()
    out = ing.peer_stored(peer)
    assert ing.units["hq/u-0001"].mark == 3
    assert out.ack_due == {"hq/u-0001"}


def test_heartbeat_acked_writes_a_gap_point():
    ing = Ingestor({}, Limits())
    ing.batch([(_topic(), _event(seq=s), NOW) for s in (1, 2, 5)])
    hb = p.encode(p.HEARTBEAT, {"v": 1, "site": "hq", "unit": "u-0001", "boot": 3, "ts": NOW, "uptime_s": 1,
                                "heap_free": 1, "journal_depth": 0, "dropped": 2, "acked": 5})
    out = ing.batch([(_topic(channel="heartbeat"), hb, NOW + 5)])
    assert out.lost == 2
    assert any(line.startswith("seq_gap,site=hq,unit=u-0001 count=2i,first_seq=3i,last_seq=4i") for line, *_ in out.lines)
    assert ing.units["hq/u-0001"].mark == 5 and out.ack_due == {"hq/u-0001"}


def _poison(seq, unit="u-0001", **kw):
    """An event the protocol refuses: a JSON-escaped lone surrogate in a field."""
    return _event(seq=seq, unit=unit, **kw).replace(b'"shift":"2025-11-23/day"', b'"shift":"\\ud800"')


def test_a_quarantined_event_is_handled_once_and_its_resend_is_a_duplicate():
    ing = Ingestor({}, Limits())
    out = ing.batch([(_topic(), _event(seq=1), NOW), (_topic(), _poison(2), NOW), (_topic(), _event(seq=3), NOW)])
    assert out.events == 2 and len(out.quarantined) == 1 and "field 'shift'" in out.quarantined[0][3]
    assert ing.units["hq/u-0001"].mark == 3 and ing.units["hq/u-0001"].held == {2}
    assert out.ack_due == {"hq/u-0001"} and out.held == {"hq/u-0001": {2}}
    # The unit resends its backlog: recognised, not quarantined again.
    out = ing.batch([(_topic(), _poison(2), NOW + 9), (_topic(), _event(seq=3), NOW + 9)])
    assert out.duplicates == 2 and not out.quarantined and out.ack_due == {"hq/u-0001"}


def test_only_a_refused_event_whose_seq_can_be_read_moves_the_ack():
    ing = Ingestor({}, Limits())
    ing.batch([(_topic(), _event(seq=1), NOW)])
    cannot = [b"not json {", b'[1, 2]', b'{"seq": "2"}', b'{"seq": true}', b'{"seq": 0}',
              _poison(2, unit="u-0002"),  # names another unit than its topic
              _poison(2).replace(b'"site":"hq"', b'"site":"elsewhere"'),
              _poison(2).replace(b'"seq":2', b'"seq":2,"seq":3'),  # which one?
              _poison(2).replace(b'"seq":2', b'"seq":2,"inc":"a b"')]
    out = ing.batch([(_topic(), payload, NOW) for payload in cannot] + [(_topic(channel="status"), _poison(2), NOW)])
    assert len(out.quarantined) == len(cannot) + 1 and out.duplicates == 0
    assert ing.units["hq/u-0001"].mark == 1
    # A payload that is not JSON but fits: quarantined, the ack stays; the seq alone is enough.
    out = ing.batch([(_topic(), b'{"seq":2,"kind":"coffee"}', NOW)])
    assert len(out.quarantined) == 1 and ing.units["hq/u-0001"].mark == 2


def test_a_replay_of_a_quarantined_event_is_stored_once():
    ing = Ingestor({}, Limits(max_past_ms=60_000))
    old = json.dumps(_call(seq=1, ts=NOW - 3_600_000)).encode()
    out = ing.batch([(_topic(), old, NOW)])
    assert "in the past" in out.quarantined[0][3] and ing.units["hq/u-0001"].mark == 1
    ing.limits.max_past_ms = 86400_000  # the operator widened the window, then replays it
    out = ing.batch([(_topic(), old, NOW)])
    assert out.events == 1 and len(out.lines) == 1 and not out.quarantined
    out = ing.batch([(_topic(), old, NOW)])
    assert out.duplicates == 1 and not out.lines


def test_incarnations_are_tracked_apart_and_legacy_events_are_one_of_them():
    ing = Ingestor({}, Limits())
    out = ing.batch([(_topic(), _event(seq=s), NOW) for s in (1, 2, 3)]  # a unit from before incarnations
                    + [(_topic(), _event(seq=s, inc="a1b2c3d4e5f6-0a1b2c"), NOW + 1) for s in (1, 2)])
    assert out.events == 5 and out.duplicates == 0
    old, new = ing.units["hq/u-0001"], ing.units["hq/u-0001/a1b2c3d4e5f6-0a1b2c"]
    assert (old.mark, old.inc, new.mark, new.inc) == (3, "", 2, "a1b2c3d4e5f6-0a1b2c")
    assert ing.is_current(new) and not ing.is_current(old)
    # Each incarnation's heartbeat and retained ack move its own mark only.
    hb = p.encode(p.HEARTBEAT, {"v": 1, "site": "hq", "unit": "u-0001", "boot": 1, "ts": NOW, "uptime_s": 1,
                                "heap_free": 1, "journal_depth": 0, "dropped": 0, "acked": 4,
                                "inc": "a1b2c3d4e5f6-0a1b2c"})
    ack = p.encode(p.ACK, {"v": 1, "unit": "u-0001", "seq": 7})
    ing.batch([(_topic(channel="heartbeat"), hb, NOW + 2), (_topic(channel="ack"), ack, NOW + 2)])
    assert (old.mark, new.mark) == (7, 4)
    assert ing.is_current(new) and not ing.is_current(old)  # a retained ack does not say who is current
    # A fresh collector: the retained ack names the incarnation to publish for,
    # and a status (which names none) does not add another.
    fresh = Ingestor({}, Limits())
    seeded = p.encode(p.ACK, {"v": 1, "unit": "u-0001", "seq": 7, "inc": "b0"})
    status = p.encode(p.STATUS, {"v": 1, "site": "hq", "unit": "u-0001", "state": "online"})
    fresh.batch([(_topic(channel="ack"), seeded, NOW), (_topic(channel="status"), status, NOW)])
    assert set(fresh.units) == {"hq/u-0001/b0"} and fresh.is_current(fresh.units["hq/u-0001/b0"])
    # The same time and seat: two points, told apart by the incarnation tag.
    lines = [line for line, *_ in out.lines]
    assert lines[0].split(" ")[0] + ",x" != lines[3].split(" ")[0] + ",x"
    assert ",inc=a1b2c3d4e5f6-0a1b2c," in lines[3] and "inc=" not in lines[0]


def test_spool_keeps_incarnations_and_held_seqs_and_upgrades_an_old_spool(tmp_path):
    import sqlite3

    from collector.spool import Spool
    path = tmp_path / "s.db"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE units (site TEXT NOT NULL, unit TEXT NOT NULL, mark INTEGER NOT NULL,"
                      " above TEXT NOT NULL, known INTEGER NOT NULL, unit_acked INTEGER NOT NULL,"
                      " lost INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, boot INTEGER NOT NULL,"
                      " PRIMARY KEY (site, unit));"
                      "INSERT INTO units VALUES ('hq', 'u-0001', 40, '[]', 1, 40, 0, 5, 2);")
    old.close()
    spool = Spool(path)
    units = spool.load_units()
    assert units["hq/u-0001"].mark == 40 and units["hq/u-0001"].inc == ""
    ing = Ingestor(units, Limits())
    out = ing.batch([(_topic(), _event(seq=1, inc="b0"), NOW), (_topic(), _poison(2, inc="b0"), NOW)])
    spool.commit(out.lines, out.quarantined, list(out.changed.values()))
    spool.close()
    units = Spool(path).load_units()
    assert units["hq/u-0001"].mark == 40
    assert units["hq/u-0001/b0"].mark == 2 and units["hq/u-0001/b0"].held == {2}
    # The ack topic carries the incarnation heard from last, after a restart too.
    ing = Ingestor(units, Limits())
    assert ing.is_current(units["hq/u-0001/b0"]) and not ing.is_current(units["hq/u-0001"])


def test_peer_collector_quarantines_keep_the_ack_mark_contiguous():
    ing = Ingestor({}, Limits())
    ing.batch([(_topic(), _event(seq=1, inc="b0"), NOW), (_topic(), _event(seq=3, inc="b0"), NOW)])
    peer = json.dumps({"from": "other", "units": {}, "held": {"hq/u-0001/b0": [[2, 2]]}}).encode()
    ing.peer_stored(peer)
    assert ing.units["hq/u-0001/b0"].mark == 3 and ing.units["hq/u-0001/b0"].held == {2}


def test_config_errors_name_key_and_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mqtt]\nhost = "b"\nport = "x"\n')
    with pytest.raises(config.ConfigError, match=r"c.toml:3: key 'mqtt.port': expected an integer, got 'x'"):
        config.load(path, env={})
    path.write_text('[mqtt]\nhots = "b"\n')
    with pytest.raises(config.ConfigError, match=r"c.toml:2: unknown key 'mqtt.hots'"):
        config.load(path, env={})
    path.write_text('[influx]\napi = "v2"\n')
    with pytest.raises(config.ConfigError, match=r"key 'influx.api': v2 needs"):
        config.load(path, env={})
    path.write_text("[mqtt\n")
    with pytest.raises(config.ConfigError, match="c.toml"):
        config.load(path, env={})


def test_environment_overrides_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mqtt]\nport = 1884\n[influx]\ngzip = true\n')
    cfg = config.load(path, env={"SEATMON_COLLECT_MQTT_PORT": "1999", "SEATMON_COLLECT_INFLUX_GZIP": "false"})
    assert cfg.mqtt.port == 1999 and cfg.influx.gzip is False and cfg.influx.batch_lines == 5000
    with pytest.raises(config.ConfigError, match="SEATMON_COLLECT_MQTT_PORT: key 'mqtt.port'"):
        config.load(path, env={"SEATMON_COLLECT_MQTT_PORT": "many"})
    with pytest.raises(config.ConfigError, match="SEATMON_COLLECT_MQTT_PROT: unknown setting"):
        config.load(path, env={"SEATMON_COLLECT_MQTT_PROT": "1"})


def test_fast_event_line_matches_point_for_every_kind():
    import random

    from collector import schema
    from tests.portable import protocol_cases as cases
    from rig.loadgen import VirtualUnit

    unit = VirtualUnit("127.0.0.1", 1, "hq", "u-0001")
    msgs = [unit.make_event(seq) for seq in range(1, 400)]
    msgs += [
        _call(hung_up_first="agent", talk_ms=5, shift='odd "shift", with=signs'),
        cases._base("selftest", ok=False, checks={"ring": "stuck", "a b": 1}, faults=["ring_stuck", 'q"x']),
        cases._base("shift_end", equipment="on", action="postponed", idle_ms=1, off_after_ms=2, overtime_ms=3),
        cases._base("postpone", granted_ms=1800000, count=2),
        cases._base("fault", code="config_invalid", detail='back\\slash "quoted" \u00e9\U0001f600'),
        cases._base("reminder", pattern="missed", action="ack", reason="a, b = c"),
        cases._base("outgoing", talk_ms=0),
    ]
    random.Random(1).shuffle(msgs)
    for msg in msgs:
        p.validate_event(msg)
        assert schema.event_line(msg) == schema.line(schema.event_point(msg)), msg


def test_systemd_unit_is_valid_and_hardened():
    import shutil
    import subprocess
    from pathlib import Path

    unit = Path(__file__).resolve().parents[1] / "deploy/seatmon-collector.service"
    text = unit.read_text()
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=seatmon/collector",
                   "KillSignal=SIGTERM", "Restart=always"):
        assert option in text
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        problems = [line for line in (r.stdout + r.stderr).splitlines() if "is not executable" not in line and line]
        assert not problems, problems
