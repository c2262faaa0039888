"""Daily and weekly reports, and the scheduled run: the command
deploy/seatmon-reports.service runs, against the rig's InfluxDB and a real
SMTP server (aiosmtpd on a loopback port), never a mock.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import os
import shlex
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from collector import rollstore
from collector.influx import InfluxV1
from seatmon.cli import main as cli
from seatmon.report.publish import due
from rig.gendata import Plan, load
from rig.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVICE, TIMER = ROOT / "deploy/seatmon-reports.service", ROOT / "deploy/seatmon-reports.timer"
# Two weeks in Berlin up to Sunday 2026-11-01: ISO week 44 is Monday 10-26 to Sunday 11-01.
PLAN = Plan(start=date(2026, 10, 19), days=14, seats=4, calls_per_seat_day=20, outgoing_per_seat_day=3,
            tz="Europe/Berlin", seed=5, heartbeat_hours=12)


@pytest.fixture(scope="module")
def two_weeks(influxdb):
    db = InfluxV1(influxdb.url, "t_publish")
    db.query(f'DROP DATABASE "{db.database}"', method="POST")
    load(db, PLAN)
    # The roll-ups of the generated events, as the collector keeps them.
    rollstore.rebuild(db, 1792360800000, 1793574000000, PLAN.tz)  # 2026-10-18T22:00Z .. 2026-11-01T23:00Z
    return db


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def test_due_dates():
    # Monday 2026-11-02: yesterday's daily, last week's weekly. Sunday 2026-11-01: daily and last month's monthly.
    assert due(date(2026, 11, 2), ("daily", "weekly", "monthly")) == [("daily", date(2026, 11, 1)),
                                                                       ("weekly", date(2026, 10, 26))]
    assert due(date(2026, 11, 1), ("daily", "weekly", "monthly")) == [("daily", date(2026, 10, 31)),
                                                                       ("monthly", date(2026, 10, 1))]
    assert due(date(2026, 11, 4), ("weekly", "monthly")) == []


def run(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database, "--tz", "Europe/Berlin"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def two_weeks_old(influxdb):
    """The same two weeks stored as the collector stored them before the shift label became a field."""
    from seatmon.report.oldschema import old_event_line
    from rig import gendata

    db = InfluxV1(influxdb.url, "t_publish_old")
    db.query(f'DROP DATABASE "{db.database}"', method="POST")
    db.create_database()
    db.write_lines([item if isinstance(item, str) else old_event_line(item)
                    for item in gendata._generate(PLAN, True)])
    return db


def test_daily_and_weekly_csv_match_answers_and_staffing(two_weeks, capsys):
    check_daily_and_weekly(two_weeks, capsys)


def test_daily_and_weekly_of_data_stored_with_the_old_shift_tag(two_weeks_old, two_weeks, capsys):
    check_daily_and_weekly(two_weeks_old, capsys)
    # Page for page the same figures as the same days stored today.
    for args in (("daily", "--day", "2026-10-25"), ("weekly", "--week", "2026-W44")):
        code, old, err = run(two_weeks_old, capsys, *args, "--format", "csv")
        assert code == 0 and "seatmon collect migrate" in err
        code, new, _ = run(two_weeks, capsys, *args, "--format", "csv")
        assert old == new, args


def check_daily_and_weekly(two_weeks, capsys):
    code, out, err = run(two_weeks, capsys, "daily", "--day", "2026-10-25", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    # The DST day: the shifts that ran in it, the night shift of the 24th across midnight first.
    assert [r["group"] for r in rows][:2] == ["2026-10-24/night", "2026-10-25/day"] and rows[-1]["group"] == "total"
    code, out2, _ = run(two_weeks, capsys, "answers", "--by", "shift", "--from", "2026-10-25", "--format", "csv")
    answers = {r["group"]: r for r in csv.DictReader(io.StringIO(out2))}
    code, out3, _ = run(two_weeks, capsys, "staffing", "--by", "shift", "--from", "2026-10-25", "--interval", "60",
                        "--format", "csv")
    staffing = {r["group"]: r for r in csv.DictReader(io.StringIO(out3))}
    for r in rows:
        assert r["calls"] == answers[r["group"]]["calls"] and r["timeliness_rate"] == answers[r["group"]][
            "timeliness_rate"]
        for key in ("talk_ms", "staffed_ms", "occupancy", "seats_needed", "length_ms"):
            assert r[key] == staffing[r["group"]][key], (r["group"], key)
    assert rows[-1]["length_ms"] == str(25 * 3600000)
    code, out, err = run(two_weeks, capsys, "weekly", "--week", "2026-W44", "--format", "csv", "--bom")
    assert code == 0 and out.startswith("\ufeffgroup,")
    rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    assert [r["group"] for r in rows[:-1]] == [f"2026-{d}" for d in ("10-26", "10-27", "10-28", "10-29", "10-30",
                                                                    "10-31", "11-01")]
    assert int(rows[-1]["calls"]) == 7 * 4 * 20 == sum(int(r["calls"]) for r in rows[:-1])
    assert int(rows[-1]["staffed_ms"]) == sum(int(r["staffed_ms"]) for r in rows[:-1])


def test_period_options_checked_before_influxdb(capsys, tmp_path):
    x = str(tmp_path / "x")
    for args, what in ((["daily", "--day", "2026-02-30"], "--day '2026-02-30'"),
                       (["weekly", "--week", "2026-W54"], "--week '2026-W54'"),
                       (["weekly", "--target", "0"], "--target '0'"),
                       (["publish", "--dir", x, "--mail-to", "a@b.c"], "--mail-to needs a mail server"),
                       (["publish", "--dir", x, "--smtp", "h:99999", "--mail-to", "a@b.c"], "--smtp 'h:99999'"),
                       (["publish", "--dir", x, "--smtp", "h", "--mail-to", "nobody"], "'nobody'"),
                       (["publish", "--dir", x, "--reports", "hourly"], "--reports 'hourly'"),
                       (["publish", "--dir", __file__], "is not a folder")):
        code = cli(["report", *args, "--tz", "UTC", "--influx", "http://127.0.0.1:9"])
        assert code == 2 and what in capsys.readouterr().err, args


def timer_command() -> list[str]:
    """The service's ExecStart, with this checkout's Python for the installed command."""
    line = next(x for x in SERVICE.read_text().splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.split("=", 1)[1])
    assert argv[0].endswith("/bin/seatmon")
    return [sys.executable, "-m", "seatmon.cli", *argv[1:]]


def test_timer_run_writes_and_mails_the_reports(two_weeks, smtp_server, tmp_path):
    port, inbox = smtp_server
    argv = timer_command()
    folder = tmp_path / "reports"
    argv[argv.index("--dir") + 1] = str(folder)
    env = {**os.environ, "SEATMON_INFLUX_URL": two_weeks.url, "SEATMON_INFLUX_DB": two_weeks.database,
           "SEATMON_TZ": "Europe/Berlin", "SEATMON_SMTP": f"127.0.0.1:{port}",
           "SEATMON_MAIL_FROM": "seatmon@site.example", "SEATMON_MAIL_TO": "lead@site.example,qa@site.example"}
    # The test's own clock: Monday 2026-11-02, when the daily and the weekly report are due.
    r = subprocess.run(argv + ["--on", "2026-11-02"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["daily-2026-11-01.csv", "daily-2026-11-01.html", "weekly-2026-W44.csv",
                     "weekly-2026-W44.html"]
    assert len(inbox.messages) == 1
    sender, rcpts, msg = inbox.messages[0]
    assert sender == "seatmon@site.example" and rcpts == ["lead@site.example", "qa@site.example"]
    assert "daily 2026-11-01" in msg["Subject"] and "weekly 2026-W44" in msg["Subject"]
    attached = {part.get_filename(): part for part in msg.iter_attachments()}
    assert sorted(attached) == names
    html = attached["daily-2026-11-01.html"]
    assert html.get_content_type() == "text/html"
    assert html.get_content() == (folder / "daily-2026-11-01.html").read_text()
    assert "seatmon daily report: day 2026-11-01" in html.get_content()
    body = msg.get_body(("plain",)).get_content()
    assert "daily 2026-11-01: 80 calls" in body and "weekly 2026-W44: 560 calls" in body


def test_timer_run_with_the_mail_server_down_keeps_the_files(two_weeks, tmp_path, capsys):
    folder = tmp_path / "reports"
    code, _out, err = run(two_weeks, capsys, "publish", "--dir", str(folder), "--on", "2026-10-28", "--smtp",
                          f"127.0.0.1:{free_port()}", "--mail-to", "lead@site.example", "--timeout", "10")
    assert code == 1 and "not sent" in err and "the files are written" in err
    assert sorted(p.name for p in folder.iterdir()) == ["daily-2026-10-27.csv", "daily-2026-10-27.html"]
    # Sunday 2026-11-01: the monthly report of October (no weekly report on a Sunday), page and table.
    code, _out, err = run(two_weeks, capsys, "publish", "--dir", str(folder), "--on", "2026-11-01", "--reports",
                          "weekly,monthly")
    assert code == 0, err
    assert "seatmon monthly report: October 2026" in (folder / "monthly-2026-10.html").read_text()
    rows = list(csv.DictReader(io.StringIO((folder / "monthly-2026-10.csv").read_text())))
    assert [r["group"] for r in rows] == [f"2026-10-{d}" for d in range(19, 32)] + ["total"]
    assert rows[-1]["calls"] == str(13 * 4 * 20)
        # Nothing due had calls: exit 4, nothing written.
    code, _out, err = run(two_weeks, capsys, "publish", "--dir", str(folder), "--on", "2026-12-10")
    assert code == 4 and "nothing written" in err


def test_systemd_units_are_valid():
    service, timer = SERVICE.read_text(), TIMER.read_text()
    for option in ("Type=oneshot", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=seatmon/reports",
                   "EnvironmentFile=-/etc/seatmon/reports.env", "SuccessExitStatus=4"):
        assert option in service
    assert "Unit=seatmon-reports.service" in timer and "Persistent=true" in timer
    assert "smtp" not in service.split("[Service]")[1].split("ExecStart")[0].lower()  # no host in the unit
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(SERVICE), str(TIMER)], capture_output=True, text=True)
        problems = [x for x in (r.stdout + r.stderr).splitlines() if "is not executable" not in x and x]
        assert not problems, problems
