"""Roll-ups kept current at ingest (collector/service.py, collector/spool.py):
the dirty keys are durable in the spool from the moment their lines leave it,
every key gets its passes, a crash or an InfluxDB outage loses no refresh,
and collectors sharing a subscription end with the exact figures."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone

import pytest

from collector import config, rollstore
from collector import rollup as ru
from collector.influx import InfluxV1
from collector.ingest import Ingestor, Limits
from collector.schema import event_line
from collector.spool import Spool
from shared import protocol as p
from tests.test_collector import collector_factory, db, units, write_config  # noqa: F401 (fixtures)
from rig.loadgen import LoadGen

DAY = 86400_000
# Fast passes for tests: the second pass follows the first after 0.3 s.
FAST = {"rollup": {"interval_s": 0.1, "settle_s": 0.3}}


def _event(seq, ts, seat="S1", kind="call", site="hq", **extra):
    msg = {"v": 1, "kind": kind, "site": site, "unit": "u-" + seat, "seat": seat, "boot": 1, "seq": seq,
           "ts": ts, "clock": "ntp", "shift": "2031-03-29/day"}
    if kind == "call":
        msg.update(outcome="answered", rings=1, limit_ms=10000, ring_ms=3000, answer_ms=3000, within_limit=True,
                   apology_prompted=False)
    else:
        msg.update(talk_ms=1000)
    msg.update(extra)
    return p.validate_event(msg)


T0 = int(datetime(2031, 3, 29, 9, 5, tzinfo=timezone.utc).timestamp() * 1000)


# ---- the spool's side, no servers --------------------------------------------------------


def test_ingest_keys_lines_of_calls_and_outgoing_only():
    ing = Ingestor({}, Limits(max_past_ms=10 ** 13))
    reminder = p.validate_event({"v": 1, "kind": "reminder", "site": "hq", "unit": "u-S1", "seat": "S1", "boot": 1,
                                 "seq": 3, "ts": T0 + 2, "clock": "ntp", "pattern": "missed", "action": "start"})
    msgs = [(p.topic("hq", e["unit"], p.EVENT), p.encode(p.EVENT, e), T0)
            for e in (_event(1, T0), _event(2, T0 + 1, kind="outgoing"), reminder)]
    out = ing.batch(msgs)
    start = ru.interval_start(T0)
    assert [key for _, _, key in out.lines] == [("hq", "S1", start), ("hq", "S1", start), None]


def test_dirty_keys_are_marked_with_the_delete_and_survive_a_restart(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    a, b = ("hq", "S1", T0 - T0 % ru.INTERVAL_MS), ("hq", "S2", 0)
    spool.commit([("l1", 1, a), ("l2", 1, a), ("l3", 1, None), ("l4", 1, b), ("l5", 1)], [], [])
    rows = spool.read_batch(3)
    spool.delete_through(rows[-1][0], 3)  # "stored in InfluxDB": l1-l3
    assert spool.dirty_due(0, 10) == [(*a, 0, 0)]
    spool.close()  # a crash here: the key is on disk
    spool = Spool(path)
    [due] = spool.dirty_due(0, 10)
    assert due == (*a, 0, 0) and spool.depth == 2
    # Refreshed once: another pass later. Meanwhile new rows of the key are stored.
    spool.dirty_done([(*a, 0)], [], due_ms=1000)
    assert spool.dirty_due(999, 10) == [] and spool.dirty_due(1000, 10) == [(*a, 0, 1)]
    spool.commit([("l6", 2, a)], [], [])
    rows = spool.read_batch(10)
    spool.delete_through(rows[-1][0], 3)
    assert sorted(spool.dirty_due(0, 10)) == [(*a, 1, 0), (*b, 0, 0)]  # due again at once, passes restart
    # A refresh that read before the new rows cannot retire the key (its gen moved on).
    spool.dirty_done([], [(*a, 0), (*b, 0)], due_ms=0)
    assert spool.dirty_due(0, 10) == [(*a, 1, 0)] and spool.dirty_count() == 1
    spool.dirty_done([], [(*a, 1)], due_ms=0)
    assert spool.dirty_count() == 0
    spool.close()


def test_a_spool_from_before_roll_ups_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL,"
                " received_ms INTEGER NOT NULL)")
    old.execute("INSERT INTO outbox (line, received_ms) VALUES ('old', 5)")
    old.commit()
    old.close()
    spool = Spool(path)
    assert spool.depth == 1
    spool.commit([("new", 6, ("hq", "S1", 0))], [], [])
    rows = spool.read_batch(10)
    assert [r[1] for r in rows] == ["old", "new"]
    spool.delete_through(rows[-1][0], 2)
    assert spool.dirty_due(0, 10) == [("hq", "S1", 0, 0, 0)]
    spool.close()


def test_rollup_pending_is_read_from_the_spool_from_the_first_moment(tmp_path):
    """A restart with dirty keys in the spool: /health says so before the
    first refresh (it used to say 0 until then)."""
    from collector.service import Collector

    path = write_config(tmp_path / "c.toml", 1, "http://127.0.0.1:1", "hq", rollup={"interval_s": 3600})
    cfg = config.load(path, env={})
    spool = Spool(cfg.spool.path)
    keys = [("hq", f"S{i}", ru.interval_start(T0)) for i in range(3)]
    spool.commit([(f"l{i}", T0, key) for i, key in enumerate(keys)], [], [])
    rows = spool.read_batch(10)
    spool.delete_through(rows[-1][0], len(rows))
    spool.close()
    c = Collector(cfg)  # not started: nothing has refreshed
    try:
        assert c.health()["rollup_pending"] == 3
        c.spool.dirty_done([], [(*keys[0], 0)], due_ms=0)  # another collector process, or a refresh
        assert c.health()["rollup_pending"] == 2
    finally:
        c.spool.close()


def test_health_says_when_refreshes_fail_while_influxdb_answers():
    from collector.watch import Snapshot, Thresholds, problems

    def snap(**kw):
        base = dict(now=100.0, waiting=0, last_progress=100.0, broker="b", broker_down_since=None, broker_error="",
                    influx="i", influx_down_since=None, influx_error="", spool_depth=0, spool_max_rows=1000,
                    spool_error_since=None, spool_error="", writer_alive=True, stopping=False)
        base.update(kw)
        return Snapshot(**base)

    t = Thresholds(unreachable_s=15)
    failing = dict(rollup_failing_since=80.0, rollup_error="InfluxQL error: boom", rollup_pending=7)
    assert problems(snap(**failing), t) == {
        "rollup": "roll-up refresh failing for 20 s (7 key(s) waiting): InfluxQL error: boom"}
    assert problems(snap(**dict(failing, rollup_failing_since=90.0)), t) == {}  # not yet
    # InfluxDB away: that is the problem to report, the keys just wait.
    assert set(problems(snap(**failing, influx_down_since=50.0), t)) == {"influx"}


# ---- config -------------------------------------------------------------------------


def test_rollup_zone_from_the_site_file_and_errors_name_key_and_line(tmp_path):
    from seatmon import sitefile

    site = tmp_path / "site.toml"
    site.write_text('[site]\nid = "hq"\ntimezone = "Asia/Shanghai"\n')
    assert config.load(None, env={}, site=sitefile.load(site)).rollup.tz == "Asia/Shanghai"
    own = tmp_path / "c.toml"
    own.write_text('[rollup]\ntz = "Europe/Berlin"\n')
    assert config.load(own, env={}, site=sitefile.load(site)).rollup.tz == "Europe/Berlin"
    assert config.load(None, env={}).rollup.tz == "UTC"
    own.write_text('[mqtt]\nport = 1883\n\n[rollup]\nenabled = true\ntz = "Europe/Berlim"\n')
    with pytest.raises(config.ConfigError, match=r"c\.toml:6: key 'rollup\.tz': expected a time zone"):
        config.load(own, env={})
    own.write_text('[rollup]\nsettle_s = 0\n')
    with pytest.raises(config.ConfigError, match=r"c\.toml:2: key 'rollup\.settle_s': expected a positive"):
        config.load(own, env={})


# ---- against the real servers ----------------------------------------------------------------


def _raw_rollups(client: InfluxV1, tz: str = "UTC") -> tuple[dict, dict]:
    """The roll-ups recomputed from every stored row, and the stored ones."""
    keys = rollstore.stored_keys(client, 0, 4_000_000_000_000)
    fresh = {}
    for site, seat, start in keys:
        calls = rollstore._rows(client, rollstore._selects("call", {(site, start, start + ru.INTERVAL_MS): {seat}}))
        outs = rollstore._rows(client, rollstore._selects("outgoing", {(site, start, start + ru.INTERVAL_MS): {seat}}))
        fresh.update(ru.rollup_15m(calls[0], outs[0]))
    stored = {}
    for result in client.query("SELECT * FROM rollup_15m"):
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                stored[(row["site"], row["seat"], row.get("shift"), row["time"])] = ru.Rollup.from_fields(row)
    return fresh, stored


def _day_totals(client: InfluxV1) -> dict:
    out = {}
    for result in client.query("SELECT sum(calls), sum(outgoing) FROM rollup_day GROUP BY seat"):
        for series in result.get("series", []):
            out[series["tags"]["seat"]] = tuple(series["values"][0][1:])
    return out


def _raw_totals(client: InfluxV1) -> dict:
    out = {}
    for measurement, index in (("call", 0), ("outgoing", 1)):
        for result in client.query(f"SELECT count(seq) FROM {measurement} GROUP BY seat"):
            for series in result.get("series", []):
                counts = list(out.get(series["tags"]["seat"], (0, 0)))
                counts[index] = series["values"][0][1]
                out[series["tags"]["seat"]] = tuple(counts)
    return out


def _settled(c, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.spool.depth == 0 and c.spool.dirty_count() == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"roll-ups not settled: {c.spool.dirty_count()} dirty keys, depth {c.spool.depth}")


@pytest.mark.slow
def test_roll_ups_follow_the_stream_and_a_late_event(mqtt_broker, influxdb, db, collector_factory, units):
    c = collector_factory(mqtt_broker.port, influxdb.url, db, **FAST)
    gen = units(mqtt_broker.port, db, 6)
    gen.publish(200)
    assert gen.wait_acked(60)
    _settled(c)
    client = InfluxV1(influxdb.url, db)
    fresh, stored = _raw_rollups(client)
    assert fresh and fresh == stored
    assert _day_totals(client) == _raw_totals(client)
    # An event three days late lands in its own interval and day.
    late = LoadGen("127.0.0.1", mqtt_broker.port, db, 1, first_unit=50).start()
    try:
        late.units[0].t0_ms -= 3 * DAY
        late.publish(5)
        assert late.wait_acked(30)
    finally:
        late.stop()
    _settled(c)
    fresh, stored = _raw_rollups(client)
    assert fresh == stored
    assert _day_totals(client) == _raw_totals(client)
    assert c.health()["rollup_pending"] == 0 and c.health()["rollup_errors"] == 0


def test_stored_but_not_refreshed_when_the_collector_died(mqtt_broker, influxdb, db, tmp_path):
    """A crash between InfluxDB storing lines and their refresh: the keys
    are in the spool, and the next start refreshes them."""
    client = InfluxV1(influxdb.url, db)
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, db, **FAST)
    cfg = config.load(path, env={})
    events = [_event(i, T0 + i * 60_000, seat=f"S{i % 3}", site=db, kind="outgoing" if i % 4 == 0 else "call")
              for i in range(1, 40)]
    spool = Spool(cfg.spool.path)
    spool.commit([(event_line(e), T0, (db, e["seat"], ru.interval_start(e["ts"]))) for e in events], [], [])
    rows = spool.read_batch(100)
    client.write_lines([r[1] for r in rows])  # the writer stored them ...
    spool.delete_through(rows[-1][0], len(rows))
    spool.close()  # ... and the process died before any refresh
    assert not client.query("SHOW MEASUREMENTS")[0]["series"][0]["values"].count(["rollup_15m"])
    from collector.service import Collector

    c = Collector(cfg).start()
    try:
        _settled(c)
    finally:
        c.stop(flush_timeout=5)
    fresh, stored = _raw_rollups(client)
    assert len(fresh) == len(rollstore.keys_of(events)) and fresh == stored


@pytest.mark.slow
def test_influxdb_down_keys_wait_and_are_retried(mqtt_broker, influxdb_factory, unique_name, tmp_path):
    influx = influxdb_factory()
    client = InfluxV1(influx.url, unique_name)
    client.create_database()
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influx.url, unique_name, **FAST)
    cfg = config.load(path, env={})
    events = [_event(i, T0 + i * 1000, site=unique_name) for i in range(1, 6)]
    spool = Spool(cfg.spool.path)
    spool.commit([(event_line(e), T0, (unique_name, "S1", ru.interval_start(e["ts"]))) for e in events], [], [])
    rows = spool.read_batch(100)
    client.write_lines([r[1] for r in rows])
    spool.delete_through(rows[-1][0], len(rows))
    spool.close()
    influx.stop()
    from collector.service import Collector

    c = Collector(cfg).start()
    try:
        deadline = time.monotonic() + 30
        while c.stats.rollup_errors < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.stats.rollup_errors >= 2 and c.spool.dirty_count() == 1
        assert c.health()["rollup_pending"] == 1
        influx.start()
        _settled(c)
    finally:
        c.stop(flush_timeout=5)
    fresh, stored = _raw_rollups(client)
    assert list(fresh.values())[0].calls == 5 and fresh == stored


def test_a_refresh_that_waited_on_a_stalled_influxdb_does_not_slow_the_next(mqtt_broker, influxdb_factory,
                                                                            unique_name, tmp_path):
    """The loop paces refreshes by the work they did, so that a backlog cannot
    crowd out ingest; a refresh that only waited on a paused server (SIGSTOP)
    did no work, and the key's second pass follows `settle_s` later, not 19
    times the stall later."""
    import signal

    influx = influxdb_factory()
    client = InfluxV1(influx.url, unique_name)
    client.create_database()
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influx.url, unique_name, **FAST)
    cfg = config.load(path, env={})
    events = [_event(i, T0 + i * 1000, site=unique_name) for i in range(1, 4)]
    spool = Spool(cfg.spool.path)
    spool.commit([(event_line(e), T0, (unique_name, "S1", ru.interval_start(e["ts"]))) for e in events], [], [])
    rows = spool.read_batch(100)
    client.write_lines([r[1] for r in rows])
    spool.delete_through(rows[-1][0], len(rows))
    spool.close()
    from collector.service import Collector

    influx.proc.send_signal(signal.SIGSTOP)
    c = Collector(cfg).start()
    try:
        time.sleep(3)  # the first refresh waits on the paused server
        influx.proc.send_signal(signal.SIGCONT)
        _settled(c, timeout=20)  # both passes: the second 0.3 s after the first
        assert c.stats.rollup_refreshes >= 2
    finally:
        influx.proc.send_signal(signal.SIGCONT)
        c.stop(flush_timeout=5)
    fresh, stored = _raw_rollups(client)
    assert list(fresh.values())[0].calls == 3 and fresh == stored


def test_the_collector_says_in_influxdb_which_intervals_wait(mqtt_broker, influxdb, db, tmp_path, capsys):
    """What `seatmon report` reads to note pending roll-ups: each collector's
    latest count and span of dirty keys, written as it changes."""
    from collector.service import Collector
    from seatmon.cli import main as cli

    client = InfluxV1(influxdb.url, db)
    path = write_config(tmp_path / "c.toml", mqtt_broker.port, influxdb.url, db,
                        rollup={"interval_s": 0.1, "settle_s": 3600})  # the second pass waits an hour
    cfg = config.load(path, env={})
    events = [_event(i, T0 + i * 1000, site=db) for i in range(1, 4)]
    spool = Spool(cfg.spool.path)
    spool.commit([(event_line(e), T0, (db, "S1", ru.interval_start(e["ts"]))) for e in events], [], [])
    rows = spool.read_batch(100)
    client.write_lines([r[1] for r in rows])
    spool.delete_through(rows[-1][0], len(rows))
    spool.close()
    c = Collector(cfg).start()
    start = ru.interval_start(T0)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not client.query("SELECT * FROM rollup_pending")[0].get("series"):
            time.sleep(0.1)
        [series] = client.query("SELECT * FROM rollup_pending")[0]["series"]
        last = dict(zip(series["columns"], series["values"][-1]))
        assert (last["collector"], last["keys"], last["from_ms"], last["to_ms"]) == (
            cfg.mqtt.client_id, 1, start, start + ru.INTERVAL_MS)
        assert cli(["report", "answers", "--from", "2031-03-29", "--tz", "UTC", "--influx", influxdb.url,
                    "--db", db]) == 0
        assert "roll-ups of 1 interval(s) from 2031-03-29 09:00 to 09:15 UTC are still pending" in \
            capsys.readouterr().err
    finally:
        c.stop(flush_timeout=5)  # its last pass retires the key: nothing pending
    [series] = client.query("SELECT * FROM rollup_pending")[0]["series"]
    assert dict(zip(series["columns"], series["values"][-1]))["keys"] == 0


@pytest.mark.slow
def test_two_collectors_sharing_a_subscription_end_exact(tmp_path, mqtt_broker, influxdb, db, collector_factory,
                                                        units):
    shared = {"shared_group": "g" + db[-6:]}
    cs = [collector_factory(mqtt_broker.port, influxdb.url, db, mqtt=dict(shared, client_id=f"c{i}-{db}"),
                            spool={"path": str(tmp_path / f"spool{i}.db")}, **FAST)
          for i in range(2)]
    gen = units(mqtt_broker.port, db, 4)  # every unit's events are split between both collectors
    gen.publish(300)
    assert gen.wait_acked(60)
    for c in cs:
        _settled(c)
    assert all(c.stats.rollup_refreshes for c in cs)
    client = InfluxV1(influxdb.url, db)
    fresh, stored = _raw_rollups(client)
    assert fresh == stored
    assert _day_totals(client) == _raw_totals(client)


def test_roll_ups_off_by_config(mqtt_broker, influxdb, db, collector_factory, units):
    c = collector_factory(mqtt_broker.port, influxdb.url, db, rollup={"enabled": False})
    gen = units(mqtt_broker.port, db, 2)
    gen.publish(20)
    assert gen.wait_acked(30)
    deadline = time.monotonic() + 30
    while c.spool.depth and time.monotonic() < deadline:
        time.sleep(0.1)
    assert c.spool.dirty_count() == 0
    names = [v[0] for r in InfluxV1(influxdb.url, db).query("SHOW MEASUREMENTS") for s in r.get("series", [])
             for v in s["values"]]
    assert "call" in names and "rollup_15m" not in names


# ---- series count -------------------------------------------------------------------------


def _floor_lines(first_day: int, days: int, seats: int = 10, old: bool = False) -> list[str]:
    """Every seat of a floor, every day: three shifts, and in each a call of
    every outcome and an outgoing call (so every tag value appears)."""
    from tests.test_migrate import old_line

    day0 = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    out = []
    seq = 0
    for d in range(first_day, first_day + days):
        date = datetime.fromtimestamp((day0 + d * DAY) / 1000, timezone.utc).date().isoformat()
        for s, name in enumerate(("early", "late", "night")):
            for k in range(seats):
                base = day0 + d * DAY + s * 8 * 3600_000 + k * 1000
                for i, extra in enumerate(({}, {"within_limit": False, "exceeded": "time", "answer_ms": 12000},
                                           {"outcome": "missed", "within_limit": False, "ring_ms": 30000,
                                            "exceeded": "both"},
                                           {"outcome": "abandoned", "within_limit": False, "ring_ms": 4000})):
                    seq += 1
                    msg = {**_event(seq, base + i * 60_000, seat=f"S{k:02d}", site="hq"), **extra,
                           "shift": f"{date}/{name}"}
                    if msg["outcome"] != "answered":
                        msg.pop("answer_ms", None)
                    msg = p.validate_event(msg)
                    out.append(old_line(msg) if old else event_line(msg))
                seq += 1
                msg = _event(seq, base + 10 * 60_000, seat=f"S{k:02d}", site="hq", kind="outgoing",
                             shift=f"{date}/{name}")
                out.append(old_line(msg) if old else event_line(msg))
    return out


def _series(client: InfluxV1, measurement: str) -> int:
    """Distinct series keys (SHOW SERIES lists each once; SHOW SERIES EXACT
    CARDINALITY adds up every shard's, i.e. grows with the weeks stored)."""
    return sum(len(s["values"]) for r in client.query(f'SHOW SERIES FROM "{measurement}"')
               for s in r.get("series", []))


@pytest.mark.slow
def test_call_series_do_not_grow_with_shifts(influxdb, unique_name, capsys):
    """Two years of the same floor make no more `call` series than one
    month; with the label as a tag (the old schema) every shift added some."""
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    old = InfluxV1(influxdb.url, unique_name + "old")
    old.create_database()

    def write(db, lines):
        for i in range(0, len(lines), 20000):
            db.write_lines(lines[i:i + 20000])

    write(client, _floor_lines(0, 30))
    month = {m: _series(client, m) for m in ("call", "outgoing")}
    write(client, _floor_lines(30, 700))
    two_years = {m: _series(client, m) for m in ("call", "outgoing")}
    write(old, _floor_lines(0, 30, old=True))
    old_month = _series(old, "call")
    write(old, _floor_lines(30, 30, old=True))
    old_two_months = _series(old, "call")
    with capsys.disabled():
        print(f"\ncall series, 10 seats x 3 shifts: after 1 month {month['call']}, after 2 years {two_years['call']}"
              f" (old schema: 1 month {old_month}, 2 months {old_two_months})")
    assert two_years == month and month["call"] == 10 * 3 * 4  # seat x shift name x (outcome, exceeded)
    assert old_two_months == 2 * old_month


def test_a_stale_refresh_written_last_is_corrected_by_the_second_pass(influxdb, unique_name):
    """The race of collectors sharing a subscription, made to happen: A reads
    before B's row is stored but writes after B's refresh. A's second pass
    (the service gives every key one) finds the point wrong and rewrites it;
    a pass that finds it right writes no 15-minute point."""
    import threading

    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()

    class HeldWrites(InfluxV1):
        """A's InfluxDB client: its writes wait until released."""
        release = threading.Event()
        writing = threading.Event()  # A has read and computed

        def write_lines(self, lines, **kw):
            self.writing.set()
            assert self.release.wait(30)
            return super().write_lines(lines, **kw)

    first, second = _event(1, T0, site=unique_name), _event(2, T0 + 60_000, site=unique_name, answer_ms=9000)
    key = (unique_name, "S1", ru.interval_start(T0))
    client.write_lines([event_line(first)])  # stored by collector A
    slow_a = HeldWrites(influxdb.url, unique_name)
    a = threading.Thread(target=rollstore.refresh_changed, args=(slow_a, {key}, "Europe/Berlin"))
    a.start()
    assert HeldWrites.writing.wait(30)
    client.write_lines([event_line(second)])  # stored by collector B ...
    _, changed = rollstore.refresh_changed(client, {key}, "Europe/Berlin")  # ... which refreshes: right
    assert changed == {key}
    HeldWrites.release.set()
    a.join(30)
    fresh, stored = _raw_rollups(client)
    assert list(stored.values())[0].calls == 1 != list(fresh.values())[0].calls  # A's stale point won
    _, changed = rollstore.refresh_changed(client, {key}, "Europe/Berlin")  # A's second pass
    assert changed == {key}
    fresh, stored = _raw_rollups(client)
    assert fresh == stored and list(stored.values())[0].calls == 2
    assert _day_totals(client) == {"S1": (2, 0)}
    _, changed = rollstore.refresh_changed(client, {key}, "Europe/Berlin")  # B's second pass: right, no write
    assert changed == set()


# ---- rows whose write may be in flight, and points whose label has no rows ------------------


def test_a_refresh_removes_points_whose_label_no_longer_has_rows(influxdb, unique_name):
    """A refresh that read a torn row (its `shift` missing) wrote an
    unlabelled point; later refreshes wrote only the labels they found, so
    the extra calls stayed in rollup_15m, rollup_day and the reports. A
    refresh, and `seatmon collect rollup` (rebuild), remove such points."""
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    tz = "Europe/Berlin"
    call = _event(1, T0, site=unique_name)
    client.write_lines([event_line(call)])
    key = (unique_name, "S1", ru.interval_start(T0))
    torn = dict(call)
    torn.pop("shift")  # what a read during the write could return
    bogus = ru.rollup_15m([dict(torn, time=T0)])
    client.write_lines(ru.lines_15m(bogus) + ru.lines_day(ru.rollup_day(bogus, tz), tz))
    rollstore.refresh_changed(client, {key}, tz)
    fresh, stored = _raw_rollups(client)
    assert fresh == stored and list(stored) == [(unique_name, "S1", "2031-03-29/day", key[2])]
    assert _day_totals(client) == {"S1": (1, 0)}
    # The repair over a range heals it the same way.
    client.write_lines(ru.lines_15m(bogus) + ru.lines_day(ru.rollup_day(bogus, tz), tz))
    rollstore.rebuild(client, T0 - DAY, T0 + DAY, tz)
    fresh, stored = _raw_rollups(client)
    assert fresh == stored and _day_totals(client) == {"S1": (1, 0)}


def test_a_torn_row_is_not_rolled_up_and_its_key_gets_another_pass(influxdb, unique_name):
    """A row read without fields every stored row of its kind carries (or
    with the shift name tag but without its label) was read while its write
    was in flight: the key is not written from it, and is due another pass."""
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    call = _event(1, T0, site=unique_name)
    line = event_line(call)
    head, fields, ts = line.split(" ")
    part = ",".join(f for f in fields.split(",") if f.split("=")[0] in ("seq", "boot", "answer_ms"))
    client.write_lines([f"{head} {part} {ts}"])  # only some of the point's fields are visible yet
    key = (unique_name, "S1", ru.interval_start(T0))
    _, changed = rollstore.refresh_changed(client, {key})
    assert changed == {key}
    assert not client.query("SELECT * FROM rollup_15m")[0].get("series")
    client.write_lines([line])  # the write completes
    _, changed = rollstore.refresh_changed(client, {key})
    fresh, stored = _raw_rollups(client)
    assert changed == {key} and fresh == stored and list(stored.values())[0].calls == 1


def test_a_refresh_does_not_trust_keys_the_writer_has_in_flight(influxdb, unique_name):
    """The writer says which keys it is writing (from its first attempt until
    the lines leave the spool); a refresh whose read overlapped such a write
    writes nothing for those keys and gives them another pass."""
    from collector.spool import WritesInFlight

    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    a, b = (_event(1, T0, site=unique_name), _event(2, T0, seat="S2", site=unique_name))
    client.write_lines([event_line(a), event_line(b)])
    ka, kb = (unique_name, "S1", ru.interval_start(T0)), (unique_name, "S2", ru.interval_start(T0))
    in_flight = WritesInFlight()
    in_flight.begin({ka})
    _, changed = rollstore.refresh_changed(client, {ka, kb}, in_flight=in_flight)
    assert changed == {ka, kb}  # kb: written; ka: not trusted
    fresh, stored = _raw_rollups(client)
    assert set(stored) == {(unique_name, "S2", "2031-03-29/day", kb[2])}
    in_flight.end()
    # A write that begins while the refresh reads taints its keys too.

    class WriterStartsDuringTheRead(InfluxV1):
        def query(self, q, **kw):
            in_flight.begin({ka})
            return super().query(q, **kw)

    _, changed = rollstore.refresh_changed(WriterStartsDuringTheRead(influxdb.url, unique_name), {ka},
                                           in_flight=in_flight)
    assert changed == {ka} and len(_raw_rollups(client)[1]) == 1
    in_flight.end()
    _, changed = rollstore.refresh_changed(client, {ka}, in_flight=in_flight)
    fresh, stored = _raw_rollups(client)
    assert changed == {ka} and fresh == stored


def test_writes_in_flight_bookkeeping():
    from collector.spool import WritesInFlight

    w = WritesInFlight()
    with w.watch() as first:
        w.begin({"a"})
        with w.watch() as second:
            pass
        w.end()
        w.begin({"b"})
        w.end()
    assert first.tainted == {"a", "b"} and second.tainted == {"a"}
    with w.watch() as third:
        pass
    assert third.tainted == set() and not w._last  # nothing kept once no read is open
