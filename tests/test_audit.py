"""The audit log of report runs that name agents (seatmon/audit.py), its
place, `seatmon audit show`, and the per-report pseudonyms."""

from __future__ import annotations

import getpass
import json
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

import pytest

from seatmon import audit
from seatmon.cli import main as cli
from seatmon.pseudonym import Pseudonyms
from seatmon.roster.model import UNASSIGNED


def test_record_appends_one_json_line_with_who_what_when_and_scope(tmp_path):
    path = tmp_path / "sub" / "audit.jsonl"
    audit.record("report calls", {"site": "hq", "from": "2026-11-01", "agent": "li.wei"}, 1,
                 argv=["report", "calls", "--agent", "li.wei"], path=path)
    audit.record("report answers", {"site": "hq", "by": "agent"}, 12, argv=["report", "answers"], path=path)
    first, second = [json.loads(x) for x in path.read_text().splitlines()]
    assert first["user"] == getpass.getuser() and first["command"] == "report calls"
    assert first["argv"] == ["report", "calls", "--agent", "li.wei"] and first["agents_named"] == 1
    assert first["scope"] == {"site": "hq", "from": "2026-11-01", "agent": "li.wei"}
    assert abs(datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).timestamp()
               - datetime.now(timezone.utc).timestamp()) < 60
    assert second["agents_named"] == 12
    assert (path.stat().st_mode & 0o777) == 0o600  # it says who looked at whom


def test_where_the_log_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("SEATMON_AUDIT_LOG", str(tmp_path / "env.jsonl"))
    assert audit.log_path(tmp_path / "opt.jsonl") == tmp_path / "opt.jsonl"  # the option wins
    assert audit.log_path() == tmp_path / "env.jsonl"
    monkeypatch.delenv("SEATMON_AUDIT_LOG")
    monkeypatch.setattr(audit, "SYSTEM_DIR", tmp_path / "var-lib-seatmon")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert audit.log_path() == tmp_path / "state" / "seatmon" / "audit.jsonl"  # no system folder
    (tmp_path / "var-lib-seatmon").mkdir()
    assert audit.log_path() == tmp_path / "var-lib-seatmon" / "audit.jsonl"


def test_a_log_that_cannot_be_written_is_an_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(audit.AuditError, match="cannot write the audit log"):
        audit.record("report calls", {}, 1, path=blocker / "audit.jsonl")


def _append(args):
    path, i = args
    audit.record("report calls", {"n": i, "pad": "x" * 300}, 1, argv=[], path=path)


def test_runs_at_the_same_time_never_interleave_their_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_append, [(path, i) for i in range(200)]))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(e["scope"]["n"] for e in lines) == list(range(200))


def show(capsys, *args):
    code = cli(["audit", "show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_show_reads_and_filters_the_log(tmp_path, capsys):
    path = tmp_path / "audit.jsonl"
    entries = [audit.entry("report calls", {"site": "hq", "agent": "li.wei"}, 1, ["report", "calls"],
                           datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc), "lead"),
               audit.entry("report agent", {"site": "hq", "agent": "ana"}, 1, ["report", "agent"],
                           datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc), "qa")]
    entries.append(audit.entry("report answers", "site hq 2026-11 by agent", 14, ["report", "answers"],
                               datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc), "qa"))
    path.write_text("".join(json.dumps(e) + "\n" for e in entries) + "not json\n")
    code, out, err = show(capsys, "--audit-log", str(path), "--format", "json")
    assert code == 0 and json.loads(out) == entries and "1 line(s)" in err
    code, out, _err = show(capsys, "--audit-log", str(path), "--since", "2026-12-01", "--format", "json")
    assert [e["user"] for e in json.loads(out)] == ["qa", "qa"]
    code, out, _err = show(capsys, "--audit-log", str(path), "--user", "qa")
    assert code == 0 and "site hq 2026-11 by agent" in out  # a scope given as text
    code, out, _err = show(capsys, "--audit-log", str(path), "--user", "lead")
    assert code == 0 and "2026-11-30T23:00:00Z" in out and "agent=li.wei" in out and "ana" not in out
    code, _out, err = show(capsys, "--audit-log", str(path), "--since", "12/01")
    assert code == 2 and "--since '12/01' is not a date" in err
    code, _out, err = show(capsys, "--audit-log", str(tmp_path / "none.jsonl"))
    assert code == 4 and "no audit log" in err


def test_audit_show_reads_the_environments_log(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEATMON_AUDIT_LOG", str(tmp_path / "env.jsonl"))
    audit.record("report agent", {"agent": "li.wei"}, 1, argv=["report", "agent"])
    code, out, _err = show(capsys, "--format", "json")
    assert code == 0 and json.loads(out)[0]["scope"] == {"agent": "li.wei"}


def test_pseudonyms_are_stable_in_a_report_and_start_afresh_in_the_next():
    p = Pseudonyms()
    assert [p(a) for a in ("li.wei", "ana", "li.wei", UNASSIGNED, "bo")] == [
        "anon-01", "anon-02", "anon-01", UNASSIGNED, "anon-03"]
    q = Pseudonyms()
    assert q("bo") == "anon-01"  # another report: codes say nothing about the ids


def test_without_xdg_state_home_the_log_is_under_the_users_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SEATMON_AUDIT_LOG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(audit, "SYSTEM_DIR", tmp_path / "absent")
    assert audit.log_path() == tmp_path / ".local" / "state" / "seatmon" / "audit.jsonl"
    assert os.fspath(audit.log_path()).startswith(str(tmp_path))
