"""The roster's storage contract (seatmon/roster/store.py) on a real
InfluxDB, and the seat-and-time lookup every per-agent figure uses."""

from __future__ import annotations

from collector.influx import InfluxV1
from seatmon.roster import store
from seatmon.roster.model import UNASSIGNED, Agent, Assignment, Roster

H = 3600 * 1000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % H  # an hour boundary


def test_lookup_by_seat_and_time_half_open():
    r = Roster([Assignment("hq", "A-01", "2026-10-05/early", "li.wei", T0, T0 + 4 * H),
                Assignment("hq", "A-01", "2026-10-05/early", "ana", T0 + 4 * H, T0 + 8 * H)])
    assert r.agent_at("hq", "A-01", T0) == "li.wei"
    assert r.agent_at("hq", "A-01", T0 + 4 * H - 1) == "li.wei"
    assert r.agent_at("hq", "A-01", T0 + 4 * H) == "ana"
    assert r.agent_at("hq", "A-01", T0 + 8 * H) == UNASSIGNED
    assert r.agent_at("hq", "A-01", T0 - 1) == UNASSIGNED
    assert r.agent_at("hq", "A-02", T0) == UNASSIGNED
    assert r.agents() == ["ana", "li.wei"]


def test_stored_assignments_and_agents_round_trip_and_replace(influxdb, unique_name):
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    a = Assignment("hq", "A 01", "2026-10-05/early", 'li "wei"', T0, T0 + 8 * H)
    b = Assignment("hq", "A-02", "2026-10-05/night", "ana", T0 + 16 * H, T0 + 24 * H)
    store.write(db, [a, b], [Agent('li "wei"', "Li Wei", "li.wei@example.com"), Agent("ana")])
    got = store.load(db, T0, T0 + 24 * H, site="hq")
    assert got.assignments == [a, b]
    assert store.load(db, T0 + 8 * H, T0 + 16 * H).assignments == []  # neither overlaps
    assert store.load(db, T0 + 23 * H, T0 + 30 * H).assignments == [b]  # started before the range
    store.write(db, [Assignment("hq", "A 01", "2026-10-05/early", "ana", T0, T0 + 8 * H)])  # same start: replaced
    assert store.load(db, T0, T0 + H).agent_at("hq", "A 01", T0) == "ana"
    store.delete_span(db, "hq", T0, T0 + 24 * H, shift_name="night")
    assert [x.seat for x in store.load(db, T0, T0 + 24 * H).assignments] == ["A 01"]
    people = store.agents(db)
    assert people['li "wei"'] == Agent('li "wei"', "Li Wei", "li.wei@example.com")
    assert people["ana"] == Agent("ana", "", "")
