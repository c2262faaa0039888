"""`seatmon roster import`: the shift plan as CSV checked against the site
file (seats, shifts per date, spans in UTC across midnight and DST), every
bad row named by its line with nothing stored, re-import changing nothing,
and a corrected file replacing the shifts it names. On a real InfluxDB."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from collector.influx import InfluxV1
from seatmon.cli import main
from seatmon.roster import importer, store
from seatmon.roster.model import UNASSIGNED, Agent, Assignment
from seatmon.roster.plan import Plan
from tools import inventory

H = 3600 * 1000

# A site on Berlin time: three shifts on weekdays, day and night at weekends,
# a short Christmas Eve, and seat B-01 whose unit has its own Monday.
SITE = """\
[site]
id = "hq"
timezone = "Europe/Berlin"

[shifts]
mon = [["early", "06:00", "14:00"], ["late", "14:00", "22:00"], ["night", "22:00", "06:00"]]
tue = [["early", "06:00", "14:00"], ["late", "14:00", "22:00"], ["night", "22:00", "06:00"]]
wed = [["early", "06:00", "14:00"], ["late", "14:00", "22:00"], ["night", "22:00", "06:00"]]
thu = [["early", "06:00", "14:00"], ["late", "14:00", "22:00"], ["night", "22:00", "06:00"]]
fri = [["early", "06:00", "14:00"], ["late", "14:00", "22:00"], ["night", "22:00", "06:00"]]
sat = [["day", "08:00", "20:00"], ["night", "22:00", "06:00"]]
sun = [["day", "08:00", "20:00"], ["night", "22:00", "06:00"]]

[overrides]
"2026-12-24" = [["short", "08:00", "14:00"]]

[hardware.rev-a]
board = "esp32"
pins = { ring = 34, hook = 35, power = 32, button = 33, led = 2 }

[[units]]
id = "u-0001"
seat = "A-01"
hardware = "rev-a"

[[units]]
id = "u-0002"
seat = "A-02"
hardware = "rev-a"

[[units]]
id = "u-0003"
seat = "B-01"
hardware = "rev-a"
shifts = { mon = [["early", "07:00", "15:00"]] }
"""


def utc(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
def plan(tmp_path) -> Plan:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    data, index = inventory.parse(path, SITE)
    inventory.check(path, data, index, units=False)
    return Plan.from_site(data)


def parse(plan: Plan, text: str) -> importer.Checked:
    return importer.parse(importer.decode(text.encode(), "plan.csv"), plan)


def problems(plan: Plan, text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(importer.RosterFileError) as exc:
        parse(plan, text)
    return exc.value.problems


HEADER = "date,shift,seat,agent,name,email,from,to\n"


# ---- pure: the spans -------------------------------------------------------------

def test_whole_shifts_and_a_seat_change_become_utc_spans(plan):
    got = parse(plan, HEADER
                + "2026-10-05,early,A-01,li.wei,Li Wei,li.wei@example.com,,\n"   # Monday, CEST (UTC+2)
                + "2026-10-05,night,A-01,ana,,,22:00,02:00\n"                     # across midnight
                + "2026-10-05,night,A-01,bo,,,02:00,\n"
                + "2026-10-05,early,B-01,ana,,,,\n")                              # B-01's own Monday
    a = {(r.assignment.seat, r.assignment.agent): r.assignment for r in got.rows}
    assert (a["A-01", "li.wei"].start_ms, a["A-01", "li.wei"].end_ms) == (utc(2026, 10, 5, 4), utc(2026, 10, 5, 12))
    assert a["A-01", "li.wei"].shift == "2026-10-05/early"
    assert (a["A-01", "ana"].start_ms, a["A-01", "ana"].end_ms) == (utc(2026, 10, 5, 20), utc(2026, 10, 6, 0))
    assert (a["A-01", "bo"].start_ms, a["A-01", "bo"].end_ms) == (utc(2026, 10, 6, 0), utc(2026, 10, 6, 4))
    assert a["A-01", "bo"].shift == "2026-10-05/night"  # labelled by the date it starts on
    assert (a["B-01", "ana"].start_ms, a["B-01", "ana"].end_ms) == (utc(2026, 10, 5, 5), utc(2026, 10, 5, 13))
    assert got.agents["li.wei"] == Agent("li.wei", "Li Wei", "li.wei@example.com")
    assert got.agents["ana"] == Agent("ana")
    assert set(got.labels) == {"2026-10-05/early", "2026-10-05/night"}


def test_night_shifts_across_the_clock_changes(plan):
    got = parse(plan, HEADER
                + "2026-10-24,night,A-01,ana,,,,\n"          # clocks go back at 03:00 CEST on the 25th
                + "2026-10-24,night,A-02,bo,,,,02:30\n"       # the repeated hour: its first occurrence
                + "2026-10-24,night,A-02,li.wei,,,02:30,\n"
                + "2026-03-28,night,A-01,ana,,,,\n")          # clocks go forward at 02:00 CET on the 29th
    a = {(r.assignment.seat, r.assignment.agent, r.assignment.day): r.assignment for r in got.rows}
    autumn = a["A-01", "ana", "2026-10-24"]
    assert (autumn.start_ms, autumn.end_ms) == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 5))  # 9 hours
    assert a["A-02", "bo", "2026-10-24"].end_ms == utc(2026, 10, 25, 0, 30)
    assert a["A-02", "li.wei", "2026-10-24"].start_ms == utc(2026, 10, 25, 0, 30)
    spring = a["A-01", "ana", "2026-03-28"]
    assert (spring.start_ms, spring.end_ms) == (utc(2026, 3, 28, 21), utc(2026, 3, 29, 4))  # 7 hours


# ---- pure: every bad row named by its line -----------------------------------------

BAD = [
    ("2026-10-05,early,A-1,li.wei,,,,", "unknown seat 'A-1' (did you mean 'A-01'?)"),
    ("2026-10-05,erly,A-01,li.wei,,,,", "unknown shift 'erly' (did you mean 'early'?)"),
    ("2026-10-5,early,A-01,li.wei,,,,", "date '2026-10-5' is not a date YYYY-MM-DD"),
    ("2026-02-30,early,A-01,li.wei,,,,", "date '2026-02-30' is not a date YYYY-MM-DD"),
    ("2026-10-04,early,A-01,li.wei,,,,", "no shift 'early' on 2026-10-04 (Sun) at seat A-01 (outside the plan)"),
    ("2026-12-24,early,A-01,li.wei,,,,", "that day's shifts: short 08:00-14:00"),
    ("2026-10-05,early,A-01,li.wei,,,05:00,", "from 05:00 is outside the shift early 06:00-14:00"),
    ("2026-10-05,night,A-01,li.wei,,,,07:00", "to 07:00 is outside the shift night 22:00-06:00"),
    ("2026-10-05,early,A-01,li.wei,,,10:00,09:00", "from 10:00 is not before to 09:00"),
    ("2026-10-05,early,A-01,li.wei,,,9:00,", "from '9:00' is not a time HH:MM"),
    ('2026-10-05,early,A-01,"li,wei",,,,', "agent 'li,wei' contains a comma"),
    ("2026-10-05,early,A-01,li wei,,,,", "agent 'li wei' contains whitespace"),
    ("2026-10-05,early,A-01,li\x07wei,,,,", "contains a control character (U+0007)"),
    ("2026-10-05,early,A-01,李伟,,,,", "an agent id is 1-64 characters from A-Z a-z 0-9 . _ @ -"),
    ("2026-10-05,early,A-01,li.wei,,not-a-mail,,", "email 'not-a-mail' is not an e-mail address"),
    ("2026-10-05,early,A-01,li.wei,,,,,", "9 values, the header has 8 (a comma inside a value?"),
    ("2026-10-05,,A-01,,,,,", "no shift, agent: every row needs date, shift, seat, agent"),
]


@pytest.mark.parametrize("row,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_a_bad_row_is_named_by_its_line_with_the_fix(plan, row, expected):
    text = HEADER + "2026-10-05,late,A-01,ana,,,,\n" + row + "\n"
    found = problems(plan, text)
    assert len(found) == 1 and found[0][0] == 3, found
    assert expected in found[0][1]


def test_duplicates_overlaps_and_two_names_are_refused(plan):
    found = problems(plan, HEADER
                     + "2026-10-05,early,A-01,li.wei,Li Wei,,,\n"
                     + "2026-10-05,early,A-01,li.wei,Li Wei,,,\n"           # line 3: duplicate of 2
                     + "2026-10-05,late,A-01,ana,,,,\n"
                     + "2026-10-05,late,A-01,bo,,,,\n"                      # line 5: same seat and shift
                     + "2026-10-05,night,A-02,ana,,,22:00,03:00\n"
                     + "2026-10-05,night,A-02,bo,,,02:00,06:00\n"           # line 7: overlaps line 6
                     + "2026-10-06,early,A-02,li.wei,Wei Li,,,\n")          # line 8: another name
    assert [n for n, _t in found] == [3, 5, 7, 8]
    assert "duplicate of line 2" in found[0][1]
    assert "seat A-01 has two agents for 2026-10-05/late (ana on line 4, bo)" in found[1][1]
    assert "seat A-02 overlaps line 6: ana 2026-10-05/night 22:00-03:00 and bo 2026-10-05/night 02:00-06:00" \
        in found[2][1]
    assert "agent 'li.wei' has name 'Wei Li' here but 'Li Wei' on line 2" in found[3][1]


def test_a_row_overlapping_a_stored_assignment_of_another_shift_is_refused(plan):
    # A site whose shifts overlap: a stored 10:00-18:00 "mid" shift at A-01 the file does not replace.
    checked = parse(plan, HEADER + "2026-10-05,early,A-01,li.wei,,,,\n2026-10-05,early,A-02,ana,,,,\n")
    mid = Assignment("hq", "A-01", "2026-10-05/mid", "bo", utc(2026, 10, 5, 8), utc(2026, 10, 5, 16))
    assert importer.stored_overlaps(checked.rows, [mid], plan) == [
        (2, "seat A-01 overlaps the stored bo 2026-10-05/mid 10:00-18:00: clear that first (seatmon roster clear) "
            "or put its shift in this file")]


def test_every_bad_line_is_reported_up_to_a_limit(plan):
    rows = "".join(f"2026-10-05,early,X-{i:02d},ana,,,,\n" for i in range(importer.MAX_ERRORS + 7))
    with pytest.raises(importer.RosterFileError) as exc:
        parse(plan, HEADER + rows)
    assert len(exc.value.problems) == importer.MAX_ERRORS and exc.value.more == 7
    assert [n for n, _t in exc.value.problems[:3]] == [2, 3, 4]


def test_header_problems(plan):
    assert "no column agent" in problems(plan, "date,shift,seat\n2026-10-05,early,A-01\n")[0][1]
    assert "unknown column 'sheet' (did you mean 'shift'?)" in problems(plan, "date,sheet,seat,agent\n")[0][1]
    assert "separated by ';'" in problems(plan, "date;shift;seat;agent\n2026-10-05;early;A-01;ana\n")[0][1]
    assert "empty" in problems(plan, "")[0][1]


def test_encodings(plan):
    text = "date,shift,seat,agent,name\n2026-10-05,early,A-01,li.wei,李伟\n"
    assert parse(plan, "\ufeff" + text).agents["li.wei"].name == "李伟"  # UTF-8 with a BOM
    crlf = parse(plan, "\ufeff" + text.replace("\n", "\r\n"))  # as spreadsheets on Windows save it
    assert crlf.agents["li.wei"].name == "李伟" and crlf.rows[0].line == 2
    gb = text.encode("gb18030")
    with pytest.raises(importer.RosterFileError) as exc:
        importer.decode(gb, "plan.csv")
    line, why = exc.value.problems[0]
    assert line == 2
    assert "reads as GB18030" in why and "iconv -f GB18030 -t UTF-8 plan.csv > plan-utf8.csv" in why
    assert "--encoding gb18030" in why
    assert importer.decode(gb, "plan.csv", "gb18030") == text
    with pytest.raises(importer.RosterFileError, match="UTF-16"):
        importer.decode(text.encode("utf-16"), "plan.csv")


# ---- the command on a real InfluxDB ------------------------------------------------

@pytest.fixture
def site(tmp_path, influxdb, unique_name):
    path = tmp_path / "site.toml"
    path.write_text(SITE + f'\n[influx]\nurl = "{influxdb.url}"\ndatabase = "{unique_name}"\n')
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    return path, db


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


PLAN = (HEADER
        + "2026-10-05,early,A-01,li.wei,Li Wei,li.wei@example.com,,\n"
        + "2026-10-05,early,A-02,ana,Ana Silva,,,\n"
        + "2026-10-05,night,A-01,ana,,,22:00,02:00\n"
        + "2026-10-05,night,A-01,bo,Bo Chen,,02:00,06:00\n"
        + "2026-10-05,night,A-02,li.wei,,,,\n")

WEEK = (utc(2026, 10, 4), utc(2026, 10, 12))


def stored(db):
    found = store.load(db, *WEEK, site="hq").assignments
    return sorted((a.shift, a.seat, a.agent, a.start_ms, a.end_ms) for a in found)


def test_import_stores_the_plan_and_the_same_file_again_changes_nothing(site, tmp_path, capsys):
    path, db = site
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(PLAN)
    code, out, err = run(capsys, "roster", "import", str(plan_file), "--site", str(path))
    assert code == 0, err
    assert "5 added, 0 removed, 0 unchanged" in out and "agents: 3 new, 0 updated" in out
    roster = store.load(db, *WEEK, site="hq")
    assert len(roster) == 5
    assert roster.agent_at("hq", "A-01", utc(2026, 10, 5, 23, 59)) == "ana"
    assert roster.agent_at("hq", "A-01", utc(2026, 10, 6, 0)) == "bo"
    assert roster.agent_at("hq", "A-02", utc(2026, 10, 5, 12)) == UNASSIGNED  # the early shift has ended
    assert store.agents(db)["li.wei"] == Agent("li.wei", "Li Wei", "li.wei@example.com")
    before = stored(db)

    code, out, err = run(capsys, "roster", "import", str(plan_file), "--site", str(path))
    assert code == 0, err
    assert "0 added, 0 removed, 5 unchanged" in out and "agents: 0 new, 0 updated" in out
    assert stored(db) == before


def test_a_corrected_file_replaces_the_shifts_it_names(site, tmp_path, capsys):
    path, db = site
    first = tmp_path / "plan.csv"
    first.write_text(PLAN + "2026-10-06,early,A-01,ana,,,,\n")
    assert run(capsys, "roster", "import", str(first), "--site", str(path))[0] == 0
    # The correction names 2026-10-05/early only: A-02 is dropped from it, A-01 changes agent.
    fix = tmp_path / "fix.csv"
    fix.write_text("date,shift,seat,agent\n2026-10-05,early,A-01,bo\n")
    code, out, err = run(capsys, "roster", "import", str(fix), "--site", str(path))
    assert code == 0, err
    assert "1 added, 2 removed, 0 unchanged" in out
    roster = store.load(db, *WEEK, site="hq")
    assert roster.agent_at("hq", "A-01", utc(2026, 10, 5, 6)) == "bo"
    assert roster.agent_at("hq", "A-02", utc(2026, 10, 5, 6)) == UNASSIGNED
    assert roster.agent_at("hq", "A-01", utc(2026, 10, 6, 1)) == "bo"  # the night shift: not in the fix, kept
    assert roster.agent_at("hq", "A-01", utc(2026, 10, 6, 6)) == "ana"  # the next day: kept
    assert len(roster) == 5


@pytest.mark.parametrize("row", [b[0] for b in BAD[:6]] + ["2026-10-05,early,A-01,li.wei,,,,"])
def test_a_bad_file_stores_nothing(site, tmp_path, capsys, row):
    path, db = site
    bad = tmp_path / "bad.csv"
    bad.write_text(PLAN + row + "\n")
    code, out, err = run(capsys, "roster", "import", str(bad), "--site", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"seatmon roster import: {bad} line 7: "), err
    assert lines[-1] == f"seatmon roster import: {bad}: 1 problem; nothing stored"
    assert stored(db) == [] and store.agents(db) == {}


def test_a_gb18030_file_is_refused_with_the_command_that_converts_it(site, tmp_path, capsys):
    path, db = site
    gb = tmp_path / "plan.csv"
    gb.write_bytes("date,shift,seat,agent,name\n2026-10-05,early,A-01,li.wei,李伟\n".encode("gb18030"))
    code, _out, err = run(capsys, "roster", "import", str(gb), "--site", str(path))
    assert code == 2
    assert f"seatmon roster import: {gb} line 2: the file is not UTF-8 but reads as GB18030" in err
    assert f"iconv -f GB18030 -t UTF-8 {gb} > {tmp_path / 'plan-utf8.csv'}" in err
    assert stored(db) == []
    code, _out, err = run(capsys, "roster", "import", str(gb), "--site", str(path), "--encoding", "gb18030")
    assert code == 0, err
    assert store.agents(db)["li.wei"].name == "李伟"


def test_dry_run_says_what_would_change_and_stores_nothing(site, tmp_path, capsys):
    path, db = site
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text(PLAN)
    code, out, _err = run(capsys, "roster", "import", str(plan_file), "--site", str(path), "--dry-run")
    assert code == 0 and "would be 5 added" in out and "nothing stored" in out
    assert stored(db) == []


def test_night_shifts_across_clock_changes_are_stored_with_their_true_utc_spans(site, tmp_path, capsys):
    path, db = site
    plan_file = tmp_path / "plan.csv"
    plan_file.write_text("date,shift,seat,agent,from,to\n"
                         "2026-10-24,night,A-01,ana,,\n"               # 22:00 CEST - 06:00 CET: 9 hours
                         "2026-10-24,night,A-02,bo,,02:30\n"           # the first 02:30 (CEST)
                         "2026-10-24,night,A-02,li.wei,02:30,\n"
                         "2026-03-28,night,A-01,ana,,\n")              # 22:00 CET - 06:00 CEST: 7 hours
    code, out, err = run(capsys, "roster", "import", str(plan_file), "--site", str(path))
    assert code == 0 and "4 added" in out, err
    autumn = store.load(db, utc(2026, 10, 24), utc(2026, 10, 26), site="hq")
    assert sorted((a.seat, a.agent, a.start_ms, a.end_ms) for a in autumn.assignments) == [
        ("A-01", "ana", utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)),
        ("A-02", "bo", utc(2026, 10, 24, 20), utc(2026, 10, 25, 0, 30)),
        ("A-02", "li.wei", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 5))]
    assert {a.shift for a in autumn.assignments} == {"2026-10-24/night"}
    assert autumn.agent_at("hq", "A-01", utc(2026, 10, 25, 4, 59)) == "ana"  # 05:59 CET
    assert autumn.agent_at("hq", "A-02", utc(2026, 10, 25, 1)) == "li.wei"   # the second 02:00 (CET)
    spring = store.load(db, utc(2026, 3, 28), utc(2026, 3, 30), site="hq").assignments
    assert [(a.start_ms, a.end_ms) for a in spring] == [(utc(2026, 3, 28, 21), utc(2026, 3, 29, 4))]
