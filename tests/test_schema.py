"""Events -> points, stored in a real InfluxDB: the schema of docs/schema.md."""

from collector.influx import InfluxV1
from collector.schema import event_point, heartbeat_point, line
from tests.portable.protocol_cases import _base, _call


def test_call_point_tags_fields_and_flags():
    text = line(event_point(_call(answer_ms=12500, ring_ms=12500, within_limit=False, apology_prompted=True)))
    head, fields, ts = text.split(" ")
    # The shift's name is the tag (a few values); its label, new every shift, is a field.
    assert head == "call,outcome=answered,seat=A-01,shift_name=day,site=hq,unit=u-0001"
    got = dict(kv.split("=", 1) for kv in fields.split(","))
    assert got["shift"] == '"2025-11-23/day"'
    assert got["answer_ms"] == "12500i" and got["seq"] == "17i" and got["within_limit"] == "false"
    assert (got["answered"], got["timely"], got["late"], got["missed"], got["abandoned"]) == ("1i", "0i", "1i", "0i", "0i")
    assert "seq" not in head and "boot" not in head
    assert ts == "1763900000000"


def test_shift_end_and_selftest_points():
    se = line(event_point(_base("shift_end", shift="2025-11-23/night", equipment="on", action="cut", idle_ms=5)))
    assert "left_on=1i" in se and "cut=1i" in se and "off_in_time=0i" in se
    # Only equipment found on is "left on": not a postponed end (found off after the granted overtime),
    # an unreadable power sensor, or a handover to the next shift.
    for equipment, action, left_on in (("off", "postponed", 0), ("unknown", "logged", 0), ("on", "none", 0),
                                       ("off", "none", 0), ("on", "logged", 1), ("on", "reminded", 1)):
        se = line(event_point(_base("shift_end", equipment=equipment, action=action, idle_ms=5)))
        assert f"left_on={left_on}i" in se, (equipment, action)
    st = line(event_point(_base("selftest", ok=False, checks={"ring": "stuck"}, faults=["ring_stuck", "hook"])))
    assert 'faults="ring_stuck,hook"' in st and "fault_count=2i" in st and 'checks="{\\"ring\\":\\"stuck\\"}"' in st


def test_redelivered_event_overwrites_itself(influxdb, unique_name):
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    lines = [line(event_point(_call(seq=s, ts=1763900000000 + s))) for s in range(1, 11)]
    db.write_lines(lines)
    db.write_lines(lines[3:7])  # the same events again
    hb = {"v": 1, "site": "hq", "unit": "u-0001", "boot": 3, "ts": 1763900000000, "uptime_s": 1,
          "heap_free": 1, "journal_depth": 0, "dropped": 0, "acked": 10}
    db.write_lines([line(heartbeat_point(hb, 1763900000250))])
    res = db.query("SELECT count(seq), sum(timely) FROM call")
    assert res[0]["series"][0]["values"][0][1:] == [10, 10]
    res = db.query("SELECT skew_ms FROM heartbeat")
    assert res[0]["series"][0]["values"][0][1] == 250
