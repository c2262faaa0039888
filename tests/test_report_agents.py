"""Per-agent figures (seatmon/report/agents.py) on a real InfluxDB: read
from the roll-ups, they equal attributing every raw call one by one, on
generated floors with random rosters (fixed seeds) and on a small month
whose figures are worked out by hand below."""

from __future__ import annotations

import json
import random
import re
from datetime import date

import pytest

from collector.influx import InfluxV1
from collector import rollup as ru
from rig.gendata import Plan, load
from rig.genroster import roster as gen_roster
from seatmon.cli import main as cli
from seatmon.report import agents as agents_mod
from seatmon.report import answers as answers_mod
from seatmon.report import safety as safety_mod
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


def test_timeline_agrees_with_the_roster_lookup():
    """Timeline.agent_at is Roster.agent_at; agent_over(t0, t1) is the one
    agent at every millisecond boundary in between, or None (random rosters)."""
    from seatmon.roster.model import Assignment, Roster
    rng = random.Random(4)
    for _ in range(50):
        spans, t = [], 0
        for _ in range(rng.randrange(0, 6)):
            t += rng.randrange(0, 50)
            end = t + rng.randrange(1, 60)
            spans.append(Assignment("hq", "A", "d/x", rng.choice("pqr"), t, end))
            t = end
        roster = Roster(spans)
        tl = agents_mod.Timeline(roster)
        for _ in range(40):
            t0 = rng.randrange(-10, t + 20)
            t1 = t0 + rng.randrange(0, 80)
            assert tl.agent_at("hq", "A", t0) == roster.agent_at("hq", "A", t0)
            seen = {roster.agent_at("hq", "A", x) for x in range(t0, t1 + 1)}
            assert tl.agent_over("hq", "A", t0, t1) == (seen.pop() if len(seen) == 1 else None)
            pieces = tl.unassigned_pieces("hq", "A", t0, t1)
            assert sum(b - a for a, b in pieces) == sum(roster.agent_at("hq", "A", x) == UNASSIGNED
                                                        for x in range(t0, t1))
            assert all(roster.agent_at("hq", "A", a) == UNASSIGNED for a, _b in pieces)
        assert tl.agent_over("hq", "B", 0, 10) == UNASSIGNED


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
            safety_agents = safety_mod.build(safety_mod.read(db, scope), scope, "agent", tl)
            assert safety_agents.total == safety_mod.build(safety_mod.read(db, scope), scope, "seat").total
            assert sum(g.shift_ends for g in safety_agents.groups) > 0
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


# ---- a small month by hand -----------------------------------------------------------------
#
# Europe/Berlin, October 2026 (CEST = UTC+2 until 2026-10-25 03:00, then CET = UTC+1).
# 2026-10-05, day shift 07:00-15:00 local (05:00Z-13:00Z):
#   seat A: li.wei until 10:07 local (08:07Z), then ana; omar has A's late shift (13:00Z-21:00Z);
#   seat B: omar until 08:07Z, then li.wei (who moved from A); nobody holds B's late shift.
# The night shift 2026-10-24/night at A: ana, 23:00 CEST to 07:00 CET = 21:00Z to 06:00Z, 9 hours;
# li.wei holds A from 06:00Z (the day shift of the 25th).

H_MS = 3_600_000


def z(text: str) -> int:
    from tests.test_reports import ms
    return ms(text)


def small_month():
    from tests.test_reports import Units
    u = Units()
    day, late, night = "2026-10-05/day", "2026-10-05/late", "2026-10-24/night"

    def end(seat, utc, shift, equipment, action):
        return u.event("shift_end", seat, utc, shift, equipment=equipment, action=action, idle_ms=60000)

    events = [
        # The 15-minute roll-ups A 08:00Z and B 08:00Z both straddle the 08:07Z seat change.
        u.call("A", "2026-10-05T08:00:00Z", answer_ms=3000, shift=day, talk_ms=60000),   # li.wei, in time
        u.call("A", "2026-10-05T08:05:00Z", answer_ms=12000, shift=day),                 # li.wei, late
        u.call("A", "2026-10-05T08:10:00Z", answer_ms=4000, shift=day, talk_ms=120000),  # ana, in time
        u.call("A", "2026-10-05T09:00:00Z", outcome="missed", ring_ms=30000, shift=day),  # ana
        u.event("outgoing", "A", "2026-10-05T09:30:00Z", day, talk_ms=30000),             # ana
        u.call("B", "2026-10-05T08:06:00Z", answer_ms=5000, shift=day),                  # omar, in time
        u.call("B", "2026-10-05T08:09:00Z", answer_ms=15000, shift=day),                 # li.wei, late
        u.call("B", "2026-10-05T08:30:00Z", outcome="abandoned", ring_ms=4000, shift=day),  # li.wei
        u.call("A", "2026-10-05T13:05:00Z", answer_ms=6000, shift=day),   # overtime of the day shift: omar's
        u.call("B", "2026-10-05T14:00:00Z", answer_ms=2000, shift=late),  # nobody holds B: (unassigned)
        end("A", "2026-10-05T13:01:00Z", day, "on", "logged"),   # A's day shift: ana (its last assignment)
        end("B", "2026-10-05T12:58:00Z", day, "off", "none"),    # B's day shift: li.wei
        end("B", "2026-10-05T21:01:00Z", late, "off", "none"),   # B's late shift: (unassigned)
        # The night across midnight and the DST change, all ana's but the overtime call.
        u.call("A", "2026-10-24T21:30:00Z", answer_ms=8000, shift=night),   # 23:30 CEST
        u.call("A", "2026-10-25T00:30:00Z", answer_ms=11000, shift=night),  # 02:30 CEST, late
        u.call("A", "2026-10-25T01:30:00Z", outcome="missed", ring_ms=25000, shift=night),  # 02:30 CET
        u.call("A", "2026-10-25T05:50:00Z", answer_ms=2000, shift=night),   # 06:50 CET
        u.call("A", "2026-10-25T06:10:00Z", answer_ms=3000, shift=night),   # 07:10 CET, overtime: li.wei's
        end("A", "2026-10-25T06:01:00Z", night, "on", "cut"),               # ana
    ]
    from seatmon.roster.model import Assignment
    roster = [
        Assignment("hq", "A", day, "li.wei", z("2026-10-05T05:00:00Z"), z("2026-10-05T08:07:00Z")),
        Assignment("hq", "A", day, "ana", z("2026-10-05T08:07:00Z"), z("2026-10-05T13:00:00Z")),
        Assignment("hq", "A", late, "omar", z("2026-10-05T13:00:00Z"), z("2026-10-05T21:00:00Z")),
        Assignment("hq", "B", day, "omar", z("2026-10-05T05:00:00Z"), z("2026-10-05T08:07:00Z")),
        Assignment("hq", "B", day, "li.wei", z("2026-10-05T08:07:00Z"), z("2026-10-05T13:00:00Z")),
        Assignment("hq", "A", night, "ana", z("2026-10-24T21:00:00Z"), z("2026-10-25T06:00:00Z")),
        Assignment("hq", "A", "2026-10-25/day", "li.wei", z("2026-10-25T06:00:00Z"), z("2026-10-25T14:00:00Z")),
    ]
    return events, roster


@pytest.fixture
def month_db(db):
    from collector.rollstore import store_events
    from seatmon.roster.model import Agent
    events, roster = small_month()
    store_events(db, events, tz="Europe/Berlin")
    store.write(db, roster, [Agent("li.wei", "Li Wei"), Agent("ana"), Agent("omar")])
    return db


MONTH = ("--from", "2026-10-01", "--to", "2026-10-31", "--tz")


def rows(doc, *keys):
    return [tuple(g[k] for k in ("group",) + keys) for g in doc["groups"]]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Europe/Paris"])  # day roll-ups; 15-minute ones
def test_small_month_answers_by_agent_by_hand(month_db, capsys, tz):
    doc = report_json(month_db, capsys, "answers", "--by", "agent", *MONTH, tz)
    keys = ("calls", "answered", "answered_in_time", "answered_late", "missed", "abandoned", "outgoing",
            "timeliness_rate", "asa_ms", "max_ms")
    assert rows(doc, *keys) == [
        # li.wei: A 3 s, A 12 s, B 15 s, B abandoned, A 3 s (the night's overtime call).
        ("ana", 6, 4, 3, 1, 2, 0, 1, 0.5, 25000 / 4, 11000),  # A 4 s, A missed; night 8, 11, missed, 2 s
        ("li.wei", 5, 4, 2, 2, 0, 1, 0, 0.4, 33000 / 4, 15000),
        ("omar", 2, 2, 2, 0, 0, 0, 0, 1.0, 5500, 6000),  # B 5 s; A 6 s in the day shift's overtime
        ("(unassigned)", 1, 1, 1, 0, 0, 0, 0, 1.0, 2000, 2000),
    ]
    assert (doc["total"]["calls"], doc["total"]["answered_in_time"]) == (14, 8)
    by_seat = report_json(month_db, capsys, "answers", "--by", "seat", *MONTH, tz)
    assert {k: by_seat["total"][k] for k in keys} == {k: doc["total"][k] for k in keys}
    # Exact medians from the raw answer times: ana 4, 8, 11, 2 s -> 6 s.
    assert doc["groups"][0]["median_ms"] == 6000


def test_small_month_one_agent_by_day_and_shift(month_db, capsys):
    doc = report_json(month_db, capsys, "answers", "--agent", "ana", "--by", "day", *MONTH, "Europe/Berlin")
    assert rows(doc, "calls", "answered_in_time") == [("2026-10-05", 2, 1), ("2026-10-24", 1, 1),
                                                       ("2026-10-25", 3, 1)]
    assert doc["agent"] == "ana"
    doc = report_json(month_db, capsys, "answers", "--agent", "li.wei", "--by", "shift", *MONTH, "Europe/Berlin")
    assert rows(doc, "calls", "answered_in_time") == [("2026-10-05/day", 4, 1), ("2026-10-24/night", 1, 1)]
    doc = report_json(month_db, capsys, "answers", "--agent", "(unassigned)", "--by", "seat", *MONTH,
                      "Europe/Berlin")
    assert rows(doc, "calls") == [("B", 1)]


def test_small_month_safety_by_agent_by_hand(month_db, capsys):
    doc = report_json(month_db, capsys, "safety", "--by", "agent", *MONTH, "Europe/Berlin")
    # A's day shift ended after the seat changed hands: ana's, its last assignment (omar held the
    # seat at 13:01Z, but in his own shift). B's late shift had nobody.
    assert sorted(rows(doc, "shift_ends", "off_in_time", "logged", "cut")) == [
        ("(unassigned)", 1, 1, 0, 0), ("ana", 2, 0, 1, 1), ("li.wei", 1, 1, 0, 0)]
    assert doc["total"] == report_json(month_db, capsys, "safety", "--by", "seat", *MONTH, "Europe/Berlin")["total"]
    assert doc["total"]["shift_ends"] == 4
    doc = report_json(month_db, capsys, "safety", "--agent", "ana", "--by", "shift", *MONTH, "Europe/Berlin")
    assert sorted(rows(doc, "shift_ends", "left_on")) == [("2026-10-05/day", 1, 1), ("2026-10-24/night", 1, 1)]


def test_small_month_staffing_by_agent_by_hand(month_db, capsys):
    doc = report_json(month_db, capsys, "staffing", "--by", "agent", *MONTH, "Europe/Berlin")
    assert rows(doc, "offered", "answered", "outgoing", "busy_ms", "staffed_ms") == [
        # A 4h53 + the night of the DST change, 9 hours; busy 120 s talk + 30 s outgoing
        ("ana", 6, 4, 1, 150000, (4 * 60 + 53) * 60000 + 9 * H_MS),
        # assigned: A 3h07 + B 4h53 + A 8 h on the 25th
        ("li.wei", 5, 4, 0, 60000, 16 * H_MS),
        ("omar", 2, 2, 0, 0, (3 * 60 + 7) * 60000 + 8 * H_MS),
        # B's late shift, nobody assigned: its first event (14:00Z) to its shift-end check (21:01Z)
        ("(unassigned)", 1, 1, 0, 0, (7 * 60 + 1) * 60000),
    ]
    by_day = report_json(month_db, capsys, "staffing", "--by", "day", *MONTH, "Europe/Berlin")
    for k in ("offered", "answered", "outgoing", "busy_ms"):
        assert doc["total"][k] == by_day["total"][k], k
    # ana's night by local day: 23:00-24:00 CEST on the 24th, then 8 hours (one of them twice) on the 25th.
    doc = report_json(month_db, capsys, "staffing", "--agent", "ana", "--by", "day", *MONTH, "Europe/Berlin")
    assert rows(doc, "offered", "staffed_ms") == [("2026-10-05", 2, (4 * 60 + 53) * 60000),
                                                  ("2026-10-24", 1, H_MS), ("2026-10-25", 3, 8 * H_MS)]


def test_an_unknown_agent_is_named(month_db, capsys):
    code = cli(["report", "answers", "--agent", "nobody", *MONTH, "UTC", "--influx", month_db.url,
                "--db", month_db.database])
    assert code == 2
    assert "--agent 'nobody': no such agent in the roster from 2026-10-01 to 2026-10-31" in capsys.readouterr().err
    code = cli(["report", "safety", "--agent", "a,b", *MONTH, "UTC", "--influx", month_db.url])
    assert code == 2 and "is not an agent id" in capsys.readouterr().err


def test_small_month_monthly_page_has_the_agent_table(month_db, capsys, tmp_path):
    page = tmp_path / "m.html"
    code = cli(["report", "monthly", "--month", "2026-10", "--tz", "Europe/Berlin", "--out", str(page),
                "--influx", month_db.url, "--db", month_db.database])
    assert code == 0, capsys.readouterr().err
    html = page.read_text()
    table = html[html.index("<h2>Answers by agent</h2>"):]
    table = table[:table.index("</table>")]
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in table.split("<tr")[2:]]
    # agent, calls, in time, late, missed, aband., outg., rate, SL, ASA (site: 71 s / 11 answered)
    assert cells == [["ana", "6", "3", "1", "2", "0", "1", "50.0%", "50.0%", "6.2"],
                     ["li.wei", "5", "2", "2", "0", "1", "0", "40.0%", "50.0%", "8.2"],
                     ["omar", "2", "2", "0", "0", "0", "0", "100.0%", "100.0%", "5.5"],
                     ["(unassigned)", "1", "1", "0", "0", "0", "0", "100.0%", "100.0%", "2.0"],
                     ["site", "14", "8", "3", "2", "1", "1", "57.1%", "61.5%", "6.5"]]


def test_small_month_yearly_table(month_db, capsys):
    doc = report_json(month_db, capsys, "yearly", "--year", "2026", "--tz", "Europe/Berlin")
    assert rows(doc, "calls_10", "rate_10", "calls_09", "rate_09", "calls", "rate") == [
        ("ana", 6, 0.5, 0, None, 6, 0.5), ("li.wei", 5, 0.4, 0, None, 5, 0.4), ("omar", 2, 1.0, 0, None, 2, 1.0),
        ("(unassigned)", 1, 1.0, 0, None, 1, 1.0)]
    assert (doc["total"]["calls"], doc["total"]["in_time"]) == (14, 8)
    for fmt, want in (("table", "li.wei"), ("csv", "calls_10,in_time_10,rate_10"), ("html", "<td>li.wei</td>")):
        code = cli(["report", "yearly", "--year", "2026", "--tz", "Europe/Berlin", "--format", fmt,
                    "--influx", month_db.url, "--db", month_db.database])
        out, err = capsys.readouterr()
        assert code == 0 and want in out, (fmt, err)
    doc = report_json(month_db, capsys, "yearly", "--year", "2026", "--tz", "UTC", "--agent", "omar")
    assert rows(doc, "calls") == [("omar", 2)]


def audit_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_reports_that_name_agents_are_audited_and_pseudonymised_on_request(month_db, capsys, tmp_path, audit_log):
    report_json(month_db, capsys, "answers", "--by", "seat", *MONTH, "Europe/Berlin")
    assert audit_lines(audit_log) == []  # seats only: nobody named
    doc = report_json(month_db, capsys, "answers", "--by", "agent", "--pseudonymise", *MONTH, "Europe/Berlin")
    assert [g["group"] for g in doc["groups"]] == ["anon-01", "anon-02", "anon-03", "(unassigned)"]
    doc = report_json(month_db, capsys, "safety", "--agent", "ana", "--pseudonymise", *MONTH, "Europe/Berlin")
    assert doc["agent"] == "anon-01" and "ana" not in json.dumps(doc)
    report_json(month_db, capsys, "yearly", "--year", "2026", "--tz", "Europe/Berlin")
    page = tmp_path / "m.html"
    code = cli(["report", "monthly", "--month", "2026-10", "--tz", "Europe/Berlin", "--out", str(page),
                "--pseudonymise", "--influx", month_db.url, "--db", month_db.database])
    assert code == 0, capsys.readouterr().err
    assert "li.wei" not in page.read_text() and "<td>anon-02</td>" in page.read_text()
    got = [(e["command"], e["agents_named"], e["scope"]["pseudonymised"]) for e in audit_lines(audit_log)]
    assert got == [("report answers", 3, True), ("report safety", 1, True), ("report yearly", 3, False),
                   ("report monthly", 3, True)]
    # No audit line, no report.
    blocked = tmp_path / "file"
    blocked.write_text("")
    code = cli(["report", "answers", "--by", "agent", *MONTH, "UTC", "--audit-log", str(blocked / "a.jsonl"),
                "--influx", month_db.url, "--db", month_db.database])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "cannot write the audit log" in err
