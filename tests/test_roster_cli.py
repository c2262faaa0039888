"""`seatmon roster set|clear|show` on a real InfluxDB: one assignment
corrected by hand (a part of a shift keeps the rest for whoever had it),
a seat cleared, and the stored roster shown without names unless asked."""

from __future__ import annotations

import csv
import io
import json

import pytest

from seatmon.roster import edit, store
from seatmon.roster.model import UNASSIGNED, Assignment
from tests.test_roster_import import PLAN, WEEK, run, site, utc  # noqa: F401 (the fixture)

H = 3600 * 1000


def test_place_trims_what_the_new_assignment_overlaps():
    night = "2026-10-05/night"
    stored = [Assignment("hq", "A-01", night, "ana", 0, 8 * H), Assignment("hq", "A-02", night, "bo", 0, 8 * H)]
    new = Assignment("hq", "A-01", night, "li.wei", 2 * H, 4 * H)
    remove, write = edit.place(stored, new)
    assert remove == [stored[0]]
    assert write == [new, Assignment("hq", "A-01", night, "ana", 0, 2 * H),
                     Assignment("hq", "A-01", night, "ana", 4 * H, 8 * H)]
    assert edit.place([new], new) == ([], [])  # already so
    with pytest.raises(edit.Conflict):
        edit.place([Assignment("hq", "A-01", "2026-10-05/late", "bo", -H, H)],
                   Assignment("hq", "A-01", night, "li.wei", 0, 4 * H))


def roster(db):
    return store.load(db, *WEEK, site="hq")


def test_set_and_clear(site, tmp_path, capsys):
    path, db = site
    s = ("--site", str(path))
    code, out, err = run(capsys, "roster", "set", *s, "--date", "2026-10-05", "--shift", "early", "--seat", "A-01",
                         "--agent", "li.wei", "--name", "Li Wei")
    assert code == 0, err
    assert "li.wei 2026-10-05/early 06:00-14:00: set" in out
    assert roster(db).agent_at("hq", "A-01", utc(2026, 10, 5, 4)) == "li.wei"
    assert store.agents(db)["li.wei"].name == "Li Wei"
    # A seat change at 10:00: li.wei keeps 06:00-10:00.
    code, out, err = run(capsys, "roster", "set", *s, "--date", "2026-10-05", "--shift", "early", "--seat", "A-01",
                         "--agent", "ana", "--from", "10:00")
    assert code == 0, err
    assert "(was li.wei 2026-10-05/early 06:00-14:00)" in out
    r = roster(db)
    assert r.agent_at("hq", "A-01", utc(2026, 10, 5, 7, 59)) == "li.wei"
    assert r.agent_at("hq", "A-01", utc(2026, 10, 5, 8)) == "ana"
    assert store.agents(db)["li.wei"].name == "Li Wei"  # a set without --name keeps the name
    # The same again: nothing changes.
    code, out, _ = run(capsys, "roster", "set", *s, "--date", "2026-10-05", "--shift", "early", "--seat", "A-01",
                       "--agent", "ana", "--from", "10:00")
    assert code == 0 and out.rstrip().endswith(": unchanged") and len(roster(db)) == 2

    code, out, err = run(capsys, "roster", "clear", *s, "--date", "2026-10-05", "--shift", "early", "--seat", "A-01")
    assert code == 0, err
    assert "removed li.wei 2026-10-05/early 06:00-10:00, ana 2026-10-05/early 10:00-14:00" in out
    assert roster(db).agent_at("hq", "A-01", utc(2026, 10, 5, 8)) == UNASSIGNED and len(roster(db)) == 0
    code, out, _ = run(capsys, "roster", "clear", *s, "--date", "2026-10-05", "--shift", "early", "--seat", "A-01")
    assert code == 0 and "nobody was assigned" in out


@pytest.mark.parametrize("args,expected", [
    (("--seat", "A-1"), "unknown seat 'A-1' (did you mean 'A-01'?)"),
    (("--seat", "A-01", "--agent", "li wei"), "agent 'li wei' contains whitespace"),
    (("--seat", "A-01", "--from", "15:00"), "from 15:00 is outside the shift early 06:00-14:00"),
])
def test_set_refuses_bad_input_and_stores_nothing(site, capsys, args, expected):
    path, db = site
    argv = ["roster", "set", "--site", str(path), "--date", "2026-10-05", "--shift", "early", "--agent", "ana"]
    for flag, value in zip(args[::2], args[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, _out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("seatmon roster set: error: ") and expected in err, err
    assert len(roster(db)) == 0


def test_set_refuses_a_time_that_is_not_hh_mm(site, capsys):
    path, _db = site
    with pytest.raises(SystemExit) as exc:
        run(capsys, "roster", "set", "--site", str(path), "--date", "2026-10-05", "--shift", "early",
            "--seat", "A-01", "--agent", "ana", "--from", "9h")
    assert exc.value.code == 2
    assert "expected a local time HH:MM, got '9h'" in capsys.readouterr().err


def test_show_lists_ids_and_names_only_when_asked(site, tmp_path, capsys):
    path, db = site
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(PLAN)
    assert run(capsys, "roster", "import", str(plan_file), "--site", str(path))[0] == 0
    s = ("--site", str(path))
    code, out, err = run(capsys, "roster", "show", *s, "--date", "2026-10-05")
    assert code == 0, err
    assert "li.wei" in out and "Li Wei" not in out and "example.com" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["date", "shift", "seat", "agent", "from", "to"]
    assert lines[2].split() == ["2026-10-05", "early", "A-01", "li.wei", "06:00", "14:00"]
    assert lines[-1].split() == ["2026-10-05", "night", "A-01", "bo", "02:00", "06:00"]

    code, out, _ = run(capsys, "roster", "show", *s, "--from", "2026-10-05", "--to", "2026-10-06",
                       "--agent", "li.wei", "--names", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["shift"], r["seat"], r["name"], r["email"]) for r in rows] == [
        ("early", "A-01", "Li Wei", "li.wei@example.com"), ("night", "A-02", "Li Wei", "li.wei@example.com")]

    code, out, _ = run(capsys, "roster", "show", *s, "--date", "2026-10-05", "--seat", "A-01", "--format", "json")
    doc = json.loads(out)
    assert doc["timezone"] == "Europe/Berlin"
    assert [(a["agent"], a["from"], a["to"]) for a in doc["assignments"]] == [
        ("li.wei", "06:00", "14:00"), ("ana", "22:00", "02:00"), ("bo", "02:00", "06:00")]
    assert "name" not in doc["assignments"][0]
    assert doc["assignments"][1]["end_ms"] == utc(2026, 10, 6, 0)

    # What show writes as CSV imports again as it is: nothing changes.
    code, out, _ = run(capsys, "roster", "show", *s, "--date", "2026-10-05", "--format", "csv", "--names")
    again = tmp_path / "again.csv"
    again.write_text(out)
    code, out, err = run(capsys, "roster", "import", str(again), "--site", str(path))
    assert code == 0, err
    assert "0 added, 0 removed, 5 unchanged" in out and "0 new, 0 updated" in out

    code, out, err = run(capsys, "roster", "show", *s, "--date", "2026-10-07")
    assert code == 0 and out == "" and "nobody assigned at site hq from 2026-10-07 to 2026-10-07" in err


def test_show_is_audited_and_refused_when_the_log_cannot_be_written(site, tmp_path, capsys, audit_log):
    path, db = site
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(PLAN)
    assert run(capsys, "roster", "import", str(plan_file), "--site", str(path))[0] == 0
    code, out, err = run(capsys, "roster", "show", "--site", str(path), "--date", "2026-10-05", "--names")
    assert code == 0, err
    entry = json.loads(audit_log.read_text().splitlines()[-1])
    assert entry["command"] == "roster show" and entry["scope"]["names"] is True and entry["agents_named"] >= 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, out, err = run(capsys, "roster", "show", "--site", str(path), "--date", "2026-10-05",
                         "--audit-log", str(blocked / "audit.jsonl"))
    assert code == 1 and out == "" and "cannot write the audit log" in err


def test_show_needs_dates(site, capsys):
    path, _db = site
    code, _out, err = run(capsys, "roster", "show", "--site", str(path))
    assert code == 2 and "give --date D or --from D [--to D]" in err
