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
