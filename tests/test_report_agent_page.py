"""`seatmon report agent`: one agent's month, on a real InfluxDB, checked
against figures worked out by hand; the page names no other agent and opens
in headless Chromium without errors.

2026-11-02, the day shift 08:00-16:00 UTC. li.wei sits at A until 12:00,
then at B; ag-ana7 at B until 12:00, then at A; ag-bo3 at C all day.
li.wei's calls: A 09:00 in time, A 09:10 late (12 s, apology), A 11:59:59
in time; B 12:00:00 in time (first ring at the change: theirs), B 12:30 in
time (they hung up first), B 12:40 missed, B 12:50 abandoned. So 7 calls,
4 in time, 1 late, 1 missed, 1 abandoned: rate 4/7, service level
(abandoned ignored) 4/6, ASA (3+12+8+7+2)/5 = 6.4 s. The site: 13 calls.
Shift ends at 16:00:05: A left on (ag-ana7's: the last at A), B off in
time (li.wei's), C cut (ag-bo3's). October: li.wei 2 calls, 1 in time.
"""

from __future__ import annotations

import json
import re

import pytest

from collector.influx import InfluxV1
from collector.rollstore import store_events
from seatmon.cli import main as cli
from seatmon.roster import store
from seatmon.roster.model import Agent, Assignment
from tests.test_report_html import open_in_chromium
from tests.test_publish import smtp_server  # noqa: F401 (a fixture: a real SMTP server)
from tests.test_reports import Units, ms

SHIFT = "2026-11-02/day"
OTHERS = ("ag-ana7", "ag-bo3", "Ana Lima", "Bo Chen", "ana@example.com", "bo@example.com")


def t(hhmmss: str, d: str = "2026-11-02") -> str:
    return f"{d}T{hhmmss}Z"


def events() -> list[dict]:
    u = Units()
    c = u.call
    ev = [c("A", t("09:00:00"), answer_ms=3000, shift=SHIFT), c("A", t("09:10:00"), answer_ms=12000, shift=SHIFT),
          c("A", t("11:59:59"), answer_ms=8000, shift=SHIFT), c("A", t("13:00:00"), answer_ms=4000, shift=SHIFT),
          c("A", t("13:05:00"), outcome="missed", ring_ms=30000, shift=SHIFT),
          c("B", t("10:00:00"), answer_ms=5000, shift=SHIFT),
          c("B", t("10:05:00"), outcome="abandoned", ring_ms=4000, shift=SHIFT),
          c("B", t("12:00:00"), answer_ms=7000, shift=SHIFT),
          c("B", t("12:30:00"), answer_ms=2000, shift=SHIFT, hung_up_first="agent"),
          c("B", t("12:40:00"), outcome="missed", ring_ms=30000, shift=SHIFT),
          c("B", t("12:50:00"), outcome="abandoned", ring_ms=6000, shift=SHIFT),
          c("C", t("09:00:00"), answer_ms=15000, shift=SHIFT), c("C", t("09:30:00"), answer_ms=3000, shift=SHIFT),
          c("A", t("09:00:00", "2026-10-05"), answer_ms=3000, shift="2026-10-05/day"),
          c("A", t("09:30:00", "2026-10-05"), answer_ms=11000, shift="2026-10-05/day")]
    for seat, equipment, action in (("A", "on", "logged"), ("B", "off", "none"), ("C", "on", "cut")):
        ev.append(u.event("shift_end", seat, t("16:00:05"), SHIFT, equipment=equipment, action=action,
                          idle_ms=600000))
    return ev


def roster() -> list[Assignment]:
    s, m, e = ms(t("08:00:00")), ms(t("12:00:00")), ms(t("16:00:00"))
    return [Assignment("hq", "A", SHIFT, "li.wei", s, m), Assignment("hq", "B", SHIFT, "li.wei", m, e),
            Assignment("hq", "B", SHIFT, "ag-ana7", s, m), Assignment("hq", "A", SHIFT, "ag-ana7", m, e),
            Assignment("hq", "C", SHIFT, "ag-bo3", s, e),
            Assignment("hq", "A", "2026-10-05/day", "li.wei", ms(t("08:00:00", "2026-10-05")),
                       ms(t("16:00:00", "2026-10-05")))]


@pytest.fixture
def db(influxdb, unique_name, tmp_path, monkeypatch):
    monkeypatch.setenv("SEATMON_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    store_events(client, events())
    store.write(client, roster(), [Agent("li.wei", "Li Wei", "li@example.com"),
                                   Agent("ag-ana7", "Ana Lima", "ana@example.com"),
                                   Agent("ag-bo3", "Bo Chen", "bo@example.com")])
    return client


def page(db, capsys, *args):
    code = cli(["report", "agent", "--month", "2026-11", "--tz", "UTC", "--influx", db.url, "--db", db.database,
                *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_agents_figures_match_the_hand_figures(db, capsys):
    code, out, err = page(db, capsys, "--agent", "li.wei", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    f = doc["figures"]
    assert (f["calls"], f["answered_in_time"], f["answered_late"], f["missed"], f["abandoned"]) == (7, 4, 1, 1, 1)
    assert f["timeliness_rate"] == pytest.approx(4 / 7) and f["service_level"] == pytest.approx(4 / 6)
    assert f["asa_ms"] == pytest.approx(6400)
    assert (f["hung_up_first"], f["hangup_known"], doc["apologies_prompted"]) == (1, 1, 1)
    assert doc["seats"] == ["A", "B"] and doc["name"] == "Li Wei"
    assert doc["site_figures"]["calls"] == 13
    # The site: 7 in time of 13; shift ends A left on, B off, C cut.
    assert doc["site_figures"]["answered_in_time"] == 7 and doc["site_shift_end_compliance"] == pytest.approx(1 / 3)
    assert [(c["seat"], c["time"][11:19], c["outcome"]) for c in doc["calls_to_review"]] == [
        ("A", "09:10:00", "late"), ("B", "12:40:00", "missed"), ("B", "12:50:00", "abandoned")]
    assert doc["shift_ends"]["list"] == [{"time": "2026-11-02T16:00:05+00:00", "seat": "B", "shift": SHIFT,
                                          "result": "off_in_time"}]
    assert (doc["shift_ends"]["off_in_time"], doc["shift_ends"]["left_on"]) == (1, 0)
    assert [(m["month"], m["calls"], m["answered_in_time"]) for m in doc["trend"]] == [
        ("2026-06", 0, 0), ("2026-07", 0, 0), ("2026-08", 0, 0), ("2026-09", 0, 0), ("2026-10", 2, 1),
        ("2026-11", 7, 4)]


def test_the_page_of_one_agent_names_no_other(db, capsys, tmp_path):
    for agent, own, others in (("li.wei", "Li Wei", OTHERS),
                               ("ag-ana7", "Ana Lima", ("li.wei", "Li Wei", "ag-bo3", "Bo Chen", "li@example.com"))):
        out_file = tmp_path / f"{agent}.html"
        code, _out, err = page(db, capsys, "--agent", agent, "--out", str(out_file))
        assert code == 0, err
        text = out_file.read_text()
        assert own in text
        for other in others:
            assert other not in text, other
        code, out, err = page(db, capsys, "--agent", agent, "--format", "json")
        for other in others:
            assert other not in out, other


def test_the_page_opens_in_chromium_without_errors(db, capsys, tmp_path):
    out_file = tmp_path / "li.html"
    code, _out, err = page(db, capsys, "--agent", "li.wei", "--out", str(out_file))
    assert code == 0, err
    text = out_file.read_text()
    assert "Calls to look at (3" in text and "2026-11-02 09:10:00" in text
    errors, requests, drawn = open_in_chromium(out_file, tmp_path / "li.png")
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests)
    assert [d[0] for d in drawn] == ["trend"] and drawn[0][1] > 0 and drawn[0][2] > 0
    assert drawn[0][3] == 2  # bars for October and November only


def test_pseudonymised_page_shows_a_code_and_no_name(db, capsys):
    code, out, err = page(db, capsys, "--agent", "li.wei", "--pseudonymise")
    assert code == 0, err
    assert "anon-01" in out and "li.wei" not in out and "Li Wei" not in out
    assert not re.search(r"[\w.]+@example\.com", out)


def test_an_agent_without_assignments_gets_nothing_and_each_page_is_audited(db, capsys, tmp_path):
    code, out, err = page(db, capsys, "--agent", "nobody")
    assert code == 4 and out == "" and "at no seat in 2026-11" in err
    assert page(db, capsys, "--agent", "li.wei", "--format", "json")[0] == 0
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["command"], e["scope"]["agent"], e["agents_named"]) for e in lines] == [("report agent", "li.wei", 1)]


def test_publish_mails_each_agent_their_own_page_and_audits_each_mail(db, capsys, tmp_path, smtp_server):
    port, inbox = smtp_server
    code = cli(["report", "publish", "--dir", str(tmp_path / "reports"), "--on", "2026-12-01", "--reports",
                "monthly", "--tz", "UTC", "--influx", db.url, "--db", db.database, "--smtp", f"127.0.0.1:{port}",
                "--mail-from", "seatmon@site.example", "--mail-to", "lead@site.example", "--agent-pages"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "mailed 3 agent(s) their own page" in err
    by_rcpt = {tuple(rcpts): msg for _sender, rcpts, msg in inbox.messages}
    assert sorted(by_rcpt) == [("ana@example.com",), ("bo@example.com",), ("lead@site.example",),
                               ("li@example.com",)]
    assert "monthly 2026-11" in by_rcpt[("lead@site.example",)]["Subject"]  # the supervisors' mail as before
    for address, own, others in (("li@example.com", "Li Wei (li.wei)", OTHERS),
                                 ("bo@example.com", "Bo Chen (ag-bo3)", ("li.wei", "Li Wei", "ag-ana7", "Ana Lima"))):
        msg = by_rcpt[(address,)]
        assert msg["To"] == address and "2026-11" in msg["Subject"]
        (part,) = list(msg.iter_attachments())
        html = part.get_content()
        assert part.get_content_type() == "text/html" and own in html
        for other in others:
            assert other not in html, other
    # The agents' pages stay out of the supervisors' folder.
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["monthly-2026-11.csv", "monthly-2026-11.html"]
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    # The supervisors' monthly page names agents in its agent table: logged first, then each agent's mail.
    assert [(e["scope"]["report"], e["agents_named"]) for e in lines[:1]] == [("monthly", 3)]
    assert sorted((e["command"], e["scope"]["agent"], e["scope"]["mailed_to"]) for e in lines[1:]) == [
        ("report publish", "ag-ana7", "ana@example.com"), ("report publish", "ag-bo3", "bo@example.com"),
        ("report publish", "li.wei", "li@example.com")]


def test_agent_pages_need_a_mail_server_and_the_monthly_report(capsys, tmp_path):
    for extra, words in (([], "--agent-pages needs a mail server"),
                         (["--smtp", "127.0.0.1:25", "--mail-to", "a@b.example", "--reports", "daily"],
                          "goes with the monthly report")):
        code = cli(["report", "publish", "--dir", str(tmp_path), "--agent-pages", "--influx", "http://127.0.0.1:9",
                    *extra])
        err = capsys.readouterr().err
        assert code == 2 and words in err, err
