"""Per-agent figures (seatmon/report/agents.py) on a real InfluxDB: read
from the roll-ups, they equal attributing every raw call one by one, on
generated floors with random rosters (fixed seeds) and on a small month
whose figures are worked out by hand below."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest

from collector.influx import InfluxV1
from collector import rollup as ru
from rig.gendata import Plan, load
from rig.genroster import roster as gen_roster
from seatmon.cli import main as cli
from seatmon.report import agents as agents_mod
from seatmon.report import answers as answers_mod
from seatmon.report.query import make_scope
from seatmon.roster import store
from seatmon.roster.model import UNASSIGNED

FAR = 4_000_000_000_000  # 2096


@pytest.fixture
def db(influxdb, unique_name):
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    return client


def report_json(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def expected(r: ru.Rollup) -> dict:
    """The report's figures of a group, from its calls rolled up one by one."""
    return {"calls": r.calls, "answered": r.answered, "answered_in_time": r.timely, "missed": r.missed,
            "abandoned": r.abandoned, "outgoing": r.outgoing, "asa_ms": r.answer_sum / r.answered if r.answered
            else None, "max_ms": r.answer_max if r.answered else None, "abandoned_short": r.short_n,
            "abandoned_long": r.long_n, "hangup_known": r.hangup_known, "unsynced": r.unsynced,
            "exceeded_time": r.exceeded_time, "exceeded_rings": r.exceeded_rings,
            "exceeded_both": r.exceeded_both,
            "avg_abandon_ms": (r.short_sum + r.long_sum) / (r.short_n + r.long_n) if r.short_n + r.long_n else None}


def figures(group: dict) -> dict:
    return {k: group[k] for k in expected(ru.Rollup())}


def replace_roster(db, assignments, agents=()):
    store.delete_span(db, "hq", 0, FAR)
    store.write(db, assignments, list(agents))


# ---- exact attribution from roll-ups -------------------------------------------------------

PLAN = Plan(start=date(2026, 10, 22), days=7, seats=5, calls_per_seat_day=40, outgoing_per_seat_day=6,
            tz="Europe/Berlin", seed=11)


def test_per_agent_figures_equal_attributing_every_call_on_random_rosters(db):
    """Random rosters (fixed seeds): seat changes at random minutes, seats
    nobody holds, over the October DST change. From day roll-ups (Berlin)
    and 15-minute ones (Paris), every agent's figures equal its calls
    rolled up one by one, and the agents add up to the seats."""
    load(db, PLAN)
    for seed in (1, 2, 3):
        assignments, people = gen_roster(PLAN, seed=seed, changes=0.4, unassigned=0.15)
        rng = random.Random(seed)
        # Some assignments end early or start late: calls around them fall to nobody or to the neighbour.
        assignments = [a if rng.random() < 0.8 else
                       type(a)(a.site, a.seat, a.shift, a.agent, a.start_ms + rng.randrange(0, 3_600_000),
                               a.end_ms) for a in assignments]
        replace_roster(db, assignments, people)
        for tz in ("Europe/Berlin", "Europe/Paris"):
            scope = make_scope("2026-10-22", "2026-10-28", tz)
            tl = agents_mod.timeline(db, scope)
            want = agents_mod.one_by_one(db, scope, tl)
            pulled = answers_mod.pull(db, scope, ("agent", "seat"))
            by_agent, by_seat = pulled.reports["agent"], pulled.reports["seat"]
            got = {g.group: figures(g.as_dict()) for g in by_agent.groups}
            assert got == {a: expected(r) for a, r in want.items()}, (seed, tz)
            assert UNASSIGNED in got and len(got) > 10
            assert figures(by_agent.total.as_dict()) == figures(by_seat.total.as_dict())
            # One agent's figures by day add up to the same as its row.
            one = sorted(a for a in want if a != UNASSIGNED)[seed]
            from dataclasses import replace
            alone = answers_mod.pull(db, replace(scope, agent=one), "day").report
            assert figures(alone.total.as_dict()) == expected(want[one]), (seed, tz, one)


def test_a_row_straddling_a_seat_change_is_read_from_its_calls(db):
    """The generated roster's mid-shift changes fall at random minutes:
    only the rows they split are read raw, and those add up exactly."""
    load(db, PLAN)
    assignments, people = gen_roster(PLAN, seed=5, changes=0.2)
    replace_roster(db, assignments, people)
    scope = make_scope("2026-10-22", "2026-10-28", "Europe/Berlin")
    tl = agents_mod.timeline(db, scope)
    series = answers_mod._gather(answers_mod._select(
        db, answers_mod.ThreadPoolExecutor(1), scope,
        "calls, answered, timely, first_ms, last_ms, shift, answer_max, answer_hist", ru.MEASUREMENT_DAY,
        "tz = 'Europe/Berlin'"))
    straddling = [1 for tags, cols, values in series for row in values
                  if tl.agent_over(tags["site"], tags["seat"], row[cols.index("first_ms")],
                                   row[cols.index("last_ms")]) is None]
    rows = sum(len(v) for _t, _c, v in series)
    assert 0 < len(straddling) < rows / 4
    split = agents_mod.split_rollups(db, series, tl, "Europe/Berlin")
    calls = [sum(row[1] for _t, _c, values in got for row in values) for got in (split, series)]
    assert calls[0] == calls[1] > 0
