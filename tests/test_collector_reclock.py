"""Events a unit stamped without a clock (collector/reclock.py): never
refused for their clock, stored at received time until the unit's `clock`
event says the offset, then moved to their true time."""

import json
import time

from collector.ingest import Ingestor, Limits
from collector.reclock import DELETE
from collector.spool import Spool
from firmware.core import FW_EPOCH_MS
from shared import protocol as p
from tests.portable.protocol_cases import _call
from tests.test_collector import collector_factory, db  # noqa: F401  (fixtures)

RECEIVED = 1994400000000  # 2033-03-14T06:40Z: years after the firmware epoch
TRUE_T0 = RECEIVED - 3 * 3600000  # the first call's true time: 3 h before it was received
TOPIC = p.topic("hq", "u-0001", p.EVENT)


def unsynced_call(seq, at_ms):
    """A call the unit stamped `at_ms` after its first one, from the firmware epoch."""
    msg = _call(seq=seq, ts=FW_EPOCH_MS + 1000 + at_ms, clock="unsynced")
    del msg["shift"]  # a unit without a clock labels no shift
    return p.encode(p.EVENT, msg)


def clock_event(seq, offset_ms):
    return p.encode(p.EVENT, {"v": 1, "kind": "clock", "site": "hq", "unit": "u-0001", "seat": "A-01", "boot": 3,
                              "seq": seq, "ts": RECEIVED, "clock": "ntp", "offset_ms": offset_ms, "unsynced": 3})


def ts_of(line):
    return int(line.rsplit(" ", 1)[1])


def test_unsynced_events_are_stored_at_receive_time_then_moved_to_their_true_time(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    ing = Ingestor(spool.load_units(), Limits(), reclock=None)
    first = ing.batch([(TOPIC, unsynced_call(1, 0), RECEIVED), (TOPIC, unsynced_call(2, 60000), RECEIVED + 5)])
    assert not first.quarantined and first.events == 2
    # Received time for the first, the same shift for the rest of the boot.
    assert [ts_of(line) for line, *_ in first.lines] == [RECEIVED, RECEIVED + 60000]
    assert all('clock="unsynced"' in line and "unit_ts=" in line for line, *_ in first.lines)
    spool.commit(first.lines, first.quarantined, list(first.changed.values()), first.clock_ops)

    # A collector restart: what waits for a correction comes back from the spool.
    ing = Ingestor(spool.load_units(), Limits())
    ing.reclock.clocks = spool.load_clocks()
    offset = TRUE_T0 - (FW_EPOCH_MS + 1000)
    out = ing.batch([(TOPIC, clock_event(3, offset), RECEIVED + 10), (TOPIC, unsynced_call(4, 120000), RECEIVED + 20),
                     (TOPIC, unsynced_call(2, 60000), RECEIVED + 30)])  # a resend: a duplicate
    assert out.duplicates == 1 and not out.quarantined
    lines = [line for line, *_ in out.lines]
    assert lines[0].startswith("clock,") and ts_of(lines[0]) == RECEIVED
    assert lines[1] == (f'{DELETE}"call" WHERE "site" = \'hq\' AND "unit" = \'u-0001\' AND "inc" = \'\''
                        f' AND time = {RECEIVED}ms')
    assert ts_of(lines[2]) == TRUE_T0 and 'clock="corrected"' in lines[2]
    assert lines[3].endswith(f"time = {RECEIVED + 60000}ms") and ts_of(lines[4]) == TRUE_T0 + 60000
    assert ts_of(lines[5]) == TRUE_T0 + 120000 and 'clock="corrected"' in lines[5]  # after the offset: at once
    assert len(lines) == 6
    # Roll-up keys: the old interval (emptied) and the true one are both refreshed.
    keys = {key for _, _, key in out.lines if key}
    assert ("hq", "A-01", RECEIVED - RECEIVED % 900000) in keys and ("hq", "A-01", TRUE_T0 - TRUE_T0 % 900000) in keys
    spool.commit(out.lines, out.quarantined, list(out.changed.values()), out.clock_ops)
    assert spool.load_clocks()[("hq", "u-0001", "", 3)].held == {}
    spool.close()


def test_a_replaced_boards_boot_is_placed_apart_from_the_old_boards_boot_of_the_same_number():
    """A new board incarnation counts its boots from 1 again: its unsynced
    events must not take the old board's estimate or correction for that
    boot number, nor its delete remove the old board's points."""
    ing = Ingestor({}, Limits())
    offset = TRUE_T0 - (FW_EPOCH_MS + 1000)
    ing.batch([(TOPIC, unsynced_call(1, 0), RECEIVED), (TOPIC, clock_event(2, offset), RECEIVED + 10)])
    new_board = json.loads(unsynced_call(1, 0))
    new_board["inc"] = "24a160c0ffee-00a1b2"
    later = RECEIVED + 86400000
    out = ing.batch([(TOPIC, json.dumps(new_board).encode(), later)])
    assert [ts_of(line) for line, *_ in out.lines] == [later]  # its own estimate, not the old boot's correction
    assert 'clock="unsynced"' in out.lines[0][0]
    moved = ing.batch([(TOPIC, p.encode(p.EVENT, dict(json.loads(clock_event(2, offset + 5000)),
                                                      inc="24a160c0ffee-00a1b2")), later + 10)])
    delete = moved.lines[1][0]
    assert delete.startswith(DELETE) and "\"inc\" = '24a160c0ffee-00a1b2'" in delete
    assert ts_of(moved.lines[2][0]) == TRUE_T0 + 5000


def test_a_peer_collector_moves_what_it_stored_when_another_got_the_correction():
    """Two collectors on a shared subscription: B stored the unsynced call, A
    got the unit's clock event. A tells its peers (with the seqs it stored);
    B moves its call. A correction B already knows changes nothing again."""
    from collector.ingest import peer_message

    a, b = Ingestor({}, Limits()), Ingestor({}, Limits())
    b.batch([(TOPIC, unsynced_call(1, 0), RECEIVED)])
    offset = TRUE_T0 - (FW_EPOCH_MS + 1000)
    told = peer_message("a", a.batch([(TOPIC, clock_event(2, offset), RECEIVED + 10)]))
    assert told["clocks"] == [["hq", "u-0001", "", 3, offset]] and told["units"] == {"hq/u-0001": [[2, 2]]}
    out = b.peer_stored(json.dumps(told).encode(), RECEIVED + 20)
    lines = [line for line, *_ in out.lines]
    assert lines[0].startswith(DELETE) and lines[0].endswith(f"time = {RECEIVED}ms")
    assert ts_of(lines[1]) == TRUE_T0 and 'clock="corrected"' in lines[1] and len(lines) == 2
    assert peer_message("b", out)["clocks"] == [["hq", "u-0001", "", 3, offset]]  # B passes it on once
    assert b.peer_stored(json.dumps(told).encode(), RECEIVED + 30).lines == []
    assert a.peer_stored(json.dumps(peer_message("b", out)).encode(), RECEIVED + 40).lines == []


def test_an_unsynced_stamp_is_never_refused_for_its_clock():
    """An ntp stamp 7 years old is quarantined; an unsynced one is stored."""
    ing = Ingestor({}, Limits())
    old_ntp = p.encode(p.EVENT, _call(seq=1, ts=FW_EPOCH_MS + 1000))
    out = ing.batch([(TOPIC, old_ntp, RECEIVED), (TOPIC, unsynced_call(2, 0), RECEIVED)])
    assert len(out.quarantined) == 1 and "in the past" in out.quarantined[0][3]
    assert out.events == 1 and ts_of(out.lines[0][0]) == RECEIVED


def test_collector_moves_unsynced_calls_to_their_true_time_in_influxdb(mqtt_broker, influxdb, db, collector_factory):
    """Through the broker, the collector and InfluxDB: two calls stamped
    without a clock land at receive time; the unit's clock event moves them,
    and a third sent after it lands at its true time at once. In the end
    InfluxDB holds the three calls once each, at their true times, and the
    roll-ups count them there."""
    import paho.mqtt.client as paho

    from collector.influx import InfluxV1
    from collector.rollup import INTERVAL_MS

    c = collector_factory(mqtt_broker.port, influxdb.url, db, rollup={"interval_s": 0.2, "settle_s": 0.5})
    client = InfluxV1(influxdb.url, db)
    topic = p.topic(db, "u-0001", p.EVENT)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=db + "-unit")
    pub.connect("127.0.0.1", mqtt_broker.port)
    pub.loop_start()

    def send(payload):
        msg = json.loads(payload)
        msg["site"] = db
        pub.publish(topic, json.dumps(msg), qos=1).wait_for_publish(5)

    def calls():
        res = client.query(f"SELECT seq, clock, unit_ts FROM call WHERE site = '{db}'")[0]
        return [tuple(v) for v in res["series"][0]["values"]] if res.get("series") else []

    def wait(pred, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.1)
        return False

    try:
        send(unsynced_call(1, 0))
        send(unsynced_call(2, 60000))
        assert wait(lambda: len(calls()) == 2)
        before = calls()
        assert [row[2] for row in before] == ["unsynced", "unsynced"]
        assert before[1][0] - before[0][0] == 60000 and abs(before[0][0] - time.time() * 1000) < 60000
        true_t0 = int(time.time() * 1000) - 3 * 3600000
        offset = true_t0 - (FW_EPOCH_MS + 1000)
        clock = json.loads(clock_event(3, offset))
        clock["ts"] = int(time.time() * 1000)
        send(json.dumps(clock))
        send(unsynced_call(4, 120000))
        want = [(true_t0, 1, "corrected", FW_EPOCH_MS + 1000), (true_t0 + 60000, 2, "corrected", FW_EPOCH_MS + 61000),
                (true_t0 + 120000, 4, "corrected", FW_EPOCH_MS + 121000)]
        assert wait(lambda: calls() == want), calls()

        def rolled():
            res = client.query(f"SELECT calls, unsynced FROM rollup_15m WHERE site = '{db}'")[0]
            return {v[0]: (v[1], v[2]) for v in res["series"][0]["values"]} if res.get("series") else {}

        assert wait(lambda: sum(n for n, _ in rolled().values()) == 3 and c.health()["rollup_pending"] == 0), rolled()
        got = rolled()
        assert {t - t % INTERVAL_MS for t, *_ in want} >= set(got) and all(u == 0 for _, u in got.values())
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_a_unit_without_ntp_then_with_it_ends_with_every_call_at_its_true_time(tmp_path, mqtt_broker, influxdb, db,
                                                                                collector_factory):
    """The firmware (a simulated unit, 60x) and the collector: NTP is blocked
    (UDP/123 only), so the unit stamps its calls unsynced and sends them; the
    collector stores them at receive time. NTP comes back: the unit's clock
    event moves every one of them to its true time in the unit's world, no
    `unsynced` point is left, and the roll-ups count each call once."""
    from collector.influx import InfluxV1
    from virtual.units.harness import UnitThread, wait_until
    from virtual.units.unit import VirtualUnit

    c = collector_factory(mqtt_broker.port, influxdb.url, db, rollup={"interval_s": 0.2, "settle_s": 0.5})
    vu = VirtualUnit(str(tmp_path / "unit"), db, 1, (mqtt_broker.host, mqtt_broker.port), speed=60.0, seed=4,
                     traffic={"calls_per_hour": 240.0, "outgoing_per_hour": 0.0},
                     link={"keepalive": 5, "backoff_max_ms": 1000, "resend_ms": 2000},
                     settings={"ntp_retry_ms": 30000})
    vu.socket.answering = False
    client = InfluxV1(influxdb.url, db)

    def calls():
        res = client.query(f"SELECT clock, unit_ts, seq FROM call WHERE site = '{db}'")[0]
        return [dict(zip(["time", "clock", "unit_ts", "seq"], v)) for v in res["series"][0]["values"]] \
            if res.get("series") else []

    run = UnitThread(vu)
    try:
        assert wait_until(lambda: len([r for r in calls() if r["clock"] == "unsynced"]) >= 3, 60)
        world_before_ntp = vu.clock.true_ms()
        vu.socket.answering = True
        assert wait_until(lambda: vu.unit.core.synced(), 30)
        assert wait_until(lambda: calls() and all(r["clock"] != "unsynced" for r in calls())
                          and len(calls()) == len({r["seq"] for r in calls()}), 60), calls()
    finally:
        run.stop()

    def rolled_up():
        res = client.query(f"SELECT sum(calls) FROM rollup_15m WHERE site = '{db}'")[0]
        return res["series"][0]["values"][0][1] if res.get("series") else 0

    # Whatever was still on its way when the unit stopped: stored, rolled up.
    assert wait_until(lambda: c.health()["rollup_pending"] == 0 and rolled_up() == len(calls()), 30)
    rows = calls()
    assert all(r["clock"] != "unsynced" for r in rows)
    corrected = [r for r in rows if r["clock"] == "corrected"]
    assert len(corrected) >= 3
    offsets = {r["time"] - r["unit_ts"] for r in corrected}
    assert len(offsets) == 1  # one boot, one offset
    # At their true time: the unit's world ran 60x faster than the collector's clock.
    assert all(vu.start_ms <= r["time"] <= world_before_ntp for r in corrected)
