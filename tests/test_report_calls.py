"""`seatmon report calls`: the calls behind a figure, on a real InfluxDB.
The rows listed per outcome equal the answers report's counts for the same
range, for a seat and for an agent; each row carries the agent the roster
puts at its seat at its first ring.

Calls as tests/test_reports.py (seat_calls) on 2026-11-02: seat A 8 in
time, 1 late, 1 missed; seat B 1 in time, 2 late, 1 abandoned, 1 missed.
On 2026-11-03 seat A 2 in time, 1 abandoned; seat B 3 in time, 1 late,
1 missed (one with the agent hanging up first, one unsynced clock).
Roster: li.wei at A on the 2nd, at B on the 3rd; ana at A on the 3rd; B on
the 2nd nobody (unassigned).
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from collector.influx import InfluxV1
from collector.rollstore import store_events
from seatmon.cli import main as cli
from seatmon.roster import store
from seatmon.roster.model import Agent, Assignment
from tests.test_reports import Units, ms, seat_calls

DAY2 = "2026-11-03"


def day2_calls(u: Units) -> list[dict]:
    ev = [u.call("A", f"{DAY2}T09:0{i}:00Z", answer_ms=a) for i, a in enumerate([3000, 4000])]
    ev.append(u.call("A", f"{DAY2}T09:10:00Z", outcome="abandoned", ring_ms=3000))
    ev += [u.call("B", f"{DAY2}T10:0{i}:00Z", answer_ms=a) for i, a in enumerate([2000, 6000, 9000])]
    ev.append(u.call("B", f"{DAY2}T10:10:00Z", answer_ms=14000, hung_up_first="agent"))
    ev.append(u.call("B", f"{DAY2}T10:20:00Z", outcome="missed", ring_ms=35000))
    return ev


def day(d: str) -> tuple[int, int]:
    return ms(f"{d}T00:00:00Z"), ms(f"{d}T00:00:00Z") + 86_400_000


def roster() -> list[Assignment]:
    s2, e2 = day("2026-11-02")
    s3, e3 = day(DAY2)
    return [Assignment("hq", "A", "2026-11-02/day", "li.wei", s2, e2),
            Assignment("hq", "B", f"{DAY2}/day", "li.wei", s3, e3),
            Assignment("hq", "A", f"{DAY2}/day", "ana", s3, e3)]


@pytest.fixture
def db(influxdb, unique_name):
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    u = Units()
    store_events(client, seat_calls())
    u.seq = {"u-A": 100, "u-B": 100}
    store_events(client, day2_calls(u))
    store.write(client, roster(), [Agent("li.wei", "Li Wei", "li.wei@example.com"), Agent("ana", "Ana", "")])
    return client




def run(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database, "--tz", "UTC"])
    out, err = capsys.readouterr()
    return code, out, err


def listed(db, capsys, *args) -> dict:
    code, out, err = run(db, capsys, "calls", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def answers(db, capsys, seat, first, last=None) -> dict:
    code, out, err = run(db, capsys, "answers", "--seat", seat, "--from", first, "--to", last or first,
                         "--format", "json")
    assert code == 0, err
    return json.loads(out)["total"]


def per_outcome(doc) -> dict:
    found = {"timely": 0, "late": 0, "missed": 0, "abandoned": 0}
    for c in doc["calls"]:
        found[c["outcome"]] += 1
    return found


def as_counts(total: dict) -> dict:
    return {"timely": total["answered_in_time"], "late": total["answered_late"], "missed": total["missed"],
            "abandoned": total["abandoned"]}


def test_a_seats_rows_per_outcome_equal_the_answers_counts(db, capsys, audit_log):
    for seat in ("A", "B"):
        doc = listed(db, capsys, "--seat", seat, "--from", "2026-11-02", "--to", DAY2)
        total = answers(db, capsys, seat, "2026-11-02", DAY2)
        assert per_outcome(doc) == as_counts(total) == doc["counts"]
        assert len(doc["calls"]) == total["calls"]
        for outcome, n in as_counts(total).items():  # --outcome lists exactly that many
            assert len(listed(db, capsys, "--seat", seat, "--from", "2026-11-02", "--to", DAY2,
                              "--outcome", outcome)["calls"]) == n
        both = listed(db, capsys, "--seat", seat, "--from", "2026-11-02", "--to", DAY2, "--outcome", "answered")
        assert len(both["calls"]) == total["answered"]
    a = as_counts(answers(db, capsys, "A", "2026-11-02", DAY2))
    assert a == {"timely": 10, "late": 1, "missed": 1, "abandoned": 1}  # by hand


def test_an_agents_rows_equal_the_answers_of_the_seats_and_days_they_sat_at(db, capsys, audit_log):
    doc = listed(db, capsys, "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30")
    a2, b3 = answers(db, capsys, "A", "2026-11-02"), answers(db, capsys, "B", DAY2)
    expected = {k: as_counts(a2)[k] + as_counts(b3)[k] for k in as_counts(a2)}
    assert per_outcome(doc) == expected == {"timely": 11, "late": 2, "missed": 2, "abandoned": 0}
    assert {c["agent"] for c in doc["calls"]} == {"li.wei"}
    assert [(c["seat"], c["time"][:10]) for c in doc["calls"]][0] == ("A", "2026-11-02")
    assert [c["time_ms"] for c in doc["calls"]] == sorted(c["time_ms"] for c in doc["calls"])
    late = listed(db, capsys, "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30",
                  "--outcome", "late,missed")
    assert [(c["seat"], c["answer_ms"], c["outcome"]) for c in late["calls"]] == [
        ("A", 12000, "late"), ("A", None, "missed"), ("B", 14000, "late"), ("B", None, "missed")]
    agent_first = [c for c in late["calls"] if c["hung_up_first"] == "agent"]
    assert len(agent_first) == 1 and agent_first[0]["apology_prompted"] is True


def test_each_row_names_the_agent_at_its_seat_at_its_first_ring(db, capsys, audit_log):
    doc = listed(db, capsys, "--seat", "B", "--from", "2026-11-02", "--to", DAY2)
    agents = [(c["time"][:10], c["agent"]) for c in doc["calls"]]
    assert agents == [("2026-11-02", "(unassigned)")] * 5 + [(DAY2, "li.wei")] * 5
    first = doc["calls"][0]
    assert (first["rings"], first["answer_ms"], first["limit_ms"], first["outcome"], first["clock"],
            first["apology_prompted"]) == (2, 5000, 10000, "timely", "ntp", False)
    assert first["time"] == "2026-11-02T11:00:00+00:00"


def test_table_and_csv_hold_the_same_rows(db, capsys, audit_log):
    code, out, err = run(db, capsys, "calls", "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30")
    assert code == 0, err
    assert "15 calls: timely 11, late 2, missed 2, abandoned 0" in out
    assert "11-03 10:10:00" in out and "agent" in out
    code, out, err = run(db, capsys, "calls", "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30",
                         "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 15 and rows[0]["agent"] == "li.wei" and rows[0]["time"] == "2026-11-02T09:00:00+00:00"
    assert "Li Wei" not in out and "example.com" not in out  # names and e-mails never


def test_pseudonymised_listing_shows_codes_in_order_of_appearance(db, capsys, audit_log):
    doc = listed(db, capsys, "--seat", "A", "--seat", "B", "--from", "2026-11-02", "--to", DAY2, "--pseudonymise")
    text = json.dumps(doc)
    assert "li.wei" not in text and "ana" not in text.replace("anon-", "")
    seen = list(dict.fromkeys(c["agent"] for c in doc["calls"] if c["agent"] != "(unassigned)"))
    assert seen == ["anon-01", "anon-02"]
    # The same agent keeps its code within the report: li.wei sat at A on the 2nd and at B on the 3rd.
    assert {c["agent"] for c in doc["calls"] if c["seat"] == "A" and c["time"].startswith("2026-11-02")} == {"anon-01"}
    assert {c["agent"] for c in doc["calls"] if c["seat"] == "B" and c["time"].startswith(DAY2)} == {"anon-01"}


def test_bad_options_are_one_line_errors_before_any_server(capsys):
    for args, words in ((["--from", "2026-11-02"], "needs --seat SEAT or --agent ID"),
                        (["--seat", "A", "--outcome", "slow"], "--outcome 'slow' is not one of"),
                        (["--agent", "li,wei"], "is not an agent id")):
        code = cli(["report", "calls", *args, "--influx", "http://127.0.0.1:9"])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_listing_that_names_agents_is_audited_and_refused_when_it_cannot_be(db, capsys, audit_log, tmp_path):
    listed(db, capsys, "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30")
    listed(db, capsys, "--seat", "B", "--from", "2026-11-02")  # only (unassigned): names nobody
    listed(db, capsys, "--seat", "A", "--from", "2026-11-02", "--to", DAY2, "--pseudonymise")  # codes: still audited
    lines = [json.loads(x) for x in audit_log.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["command"] == "report calls" and lines[0]["scope"]["agent"] == "li.wei"
    assert lines[0]["agents_named"] == 1 and "--agent" in lines[0]["argv"]
    assert (lines[1]["scope"]["seats"], lines[1]["agents_named"], lines[1]["scope"]["pseudonymised"]) == (["A"], 2, True)
    blocked = tmp_path / "no-such-dir-file"
    blocked.write_text("")
    code, out, err = run(db, capsys, "calls", "--agent", "li.wei", "--from", "2026-11-01", "--to", "2026-11-30",
                         "--audit-log", str(blocked / "audit.jsonl"))
    assert code == 1 and out == "" and "cannot write the audit log" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_seat_is_named_and_no_calls_is_exit_4(db, capsys, audit_log):
    code, out, err = run(db, capsys, "calls", "--seat", "Z", "--from", "2026-11-02")
    assert code == 2 and "unknown seat 'Z'" in err
    code, out, err = run(db, capsys, "calls", "--agent", "li.wei", "--from", "2026-12-01")
    assert code == 4 and out == "" and "no calls of agent li.wei" in err
    assert not audit_log.exists()  # nothing shown, nobody named


def test_roster_reads_of_one_agent_or_some_seats_are_filtered_in_influxdb(db):
    from seatmon.roster import store

    s2, _e2 = day("2026-11-02")
    _s3, e3 = day(DAY2)
    mine = store.load(db, s2, e3, "hq", agent="li.wei")
    assert mine.assignments == [a for a in roster() if a.agent == "li.wei"]
    assert store.load(db, s2 + 3_600_000, s2 + 7_200_000, agent="li.wei").assignments == roster()[:1]  # overlaps
    assert store.load(db, e3, e3 + 86_400_000, agent="li.wei").assignments == []
    assert store.load(db, s2, e3, agent="li'wei").assignments == []  # quoted, not an error
    assert sorted(a.agent for a in store.load(db, s2, e3, seats=["A"]).assignments) == ["ana", "li.wei"]


def test_a_night_shift_over_the_dst_change_lists_both_half_past_twos(influxdb, unique_name, capsys, audit_log):
    # Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET. 02:30 local happens twice: 00:30Z and 01:30Z.
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    u = Units()
    label = "2026-10-24/night"
    store_events(db, [u.call("N", "2026-10-24T21:30:00Z", answer_ms=4000, shift=label),
                      u.call("N", "2026-10-25T00:30:00Z", answer_ms=11000, shift=label),
                      u.call("N", "2026-10-25T01:30:00Z", outcome="missed", ring_ms=30000, shift=label),
                      u.call("N", "2026-10-25T06:30:00Z", answer_ms=3000, shift="2026-10-25/day")],
                 tz="Europe/Berlin")
    # 23:00 CEST to 07:00 CET: 9 hours.
    store.write(db, [Assignment("hq", "N", label, "nite", ms("2026-10-24T21:00:00Z"), ms("2026-10-25T06:00:00Z"))])

    def cmd(*args):
        code = cli(["report", *args, "--influx", db.url, "--db", db.database, "--tz", "Europe/Berlin",
                    "--format", "json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    doc = cmd("calls", "--agent", "nite", "--from", "2026-10-24", "--to", "2026-10-25")
    assert [(c["time"], c["outcome"]) for c in doc["calls"]] == [
        ("2026-10-24T23:30:00+02:00", "timely"), ("2026-10-25T02:30:00+02:00", "late"),
        ("2026-10-25T02:30:00+01:00", "missed")]
    seat = cmd("calls", "--seat", "N", "--from", "2026-10-24", "--to", "2026-10-25")
    total = cmd("answers", "--seat", "N", "--from", "2026-10-24", "--to", "2026-10-25")["total"]
    assert per_outcome(seat) == as_counts(total) == {"timely": 2, "late": 1, "missed": 1, "abandoned": 0}
    assert [c["agent"] for c in seat["calls"]] == ["nite", "nite", "nite", "(unassigned)"]
