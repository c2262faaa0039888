"""`seatmon demo` end to end: real servers, collector, virtual units running the
real firmware, reports, and the demo's own check that every generated event
was stored exactly once. Also: Ctrl-C stops everything and leaves nothing running."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seatmon.demo import Plan, Watch, broker_config, local_zone, progress_line, read_floor
from virtual.units.fakes import world_ms

ROOT = Path(__file__).resolve().parent.parent


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children_of(todo.pop())
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_demo_runs_and_checks_itself(tmp_path):
    # With a broker outage injected: the progress shows it while it happens.
    # The board's port is taken: the demo serves the board on a free one.
    # The floor runs in Shanghai: the units announce it, the reports use it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "seatmon.cli", "demo", "--units", "6", "--duration", "40s",
             "--data-dir", str(tmp_path / "demo"), "--broker-outage", "12s+6s", "--board-port", str(busy),
             "--tz", "Asia/Shanghai"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
            # an installation's site file in the environment does not leak into the demo's own site
            env=dict(os.environ, SEATMON_SITE=str(ROOT / "deploy/site.example.toml")))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "demo passed: every generated event was stored exactly once" in out
    assert "Answers by shift" in out and "Shift-end safety" in out
    assert "MISMATCH" not in out
    pages = list((tmp_path / "demo").glob("report-*.html"))
    assert pages and "dates and hours in Asia/Shanghai." in pages[0].read_text()
    assert "times are in UTC" not in res.stderr and "in Asia/Shanghai" in out
    # No artefact of the compressed clock or of the shutdown order.
    assert "6 units, 0 offline now, 0 events lost" in out
    shifts = out[out.index("Answers by shift"):out.index("Shift-end safety")]
    assert "(none)" not in shifts  # no call rings outside a shift
    # The live line: simulated time, phase, time left, units online; the outage as it happens.
    assert "early shift" in out and "units online   6/6" in out and "left" in out
    warned = out[out.index("injected fault: the broker stops"):out.index("injected fault over")]
    assert "6 of 6 units lost the broker" in warned or "lost the broker" in out[out.index("injected fault over"):]
    assert "all 6 units are back on the broker" in out
    # seatmon web serves the wallboard, behind one login per role; the agent account sees its own month only.
    url = re.search(r"the wallboard: http://127\.0\.0\.1:(\d+)/board/demo/", out)
    assert url and int(url.group(1)) != busy
    assert re.search(rf"seatmon web: http://127\.0\.0\.1:{url.group(1)}/", out)
    assert all(re.search(rf"^    {role}\s+\S{{16}}  \({role}\)$", out, re.M) for role in
               ("head", "leader", "agent", "technician"))
    board_log = (tmp_path / "demo" / "web.log").read_text()
    assert "connected to 127.0.0.1" in board_log
    assert re.search(r"seatmon web: agent ag-0001 sees their month \(\d+ calls\) and is refused ag-0007's \(403\)", out)
    audit = [json.loads(line) for line in (tmp_path / "demo" / "audit.jsonl").read_text().splitlines()]
    assert {e["user"] for e in audit} == {"agent"} and any(e["scope"].get("refused") for e in audit)
    # The desk units on virtual boards (real MicroPython, provisioned through TLS
    # and their accounts): their calls in their own section, every board with calls.
    boards = out[out.index("== Desk units on virtual boards"):out.index("== Self-check")]
    assert "Answers by seat" in boards and "VB-01" in boards and "VB-02" in boards
    assert "boards provisioned      2  of 2, with calls stored: 2    ok" in boards
    assert "desk units on virtual boards: ok" in out
    # Its servers stop with it: it says how to reach the kept data again.
    assert f"`seatmon demo serve --data-dir {tmp_path / 'demo'}` serves it" in out
    assert (tmp_path / "demo" / "kept.json").exists()


def test_plan_puts_the_floor_just_before_now_and_ends_calls_before_the_run_does():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    plan = Plan(600, 120.0, margin_s=30)
    for real_start in (1_800_000_000.0, 1_800_030_000.0, 1_800_060_000.0):
        real, world = plan.epoch(real_start, "Europe/Berlin")
        # At the real end (+ margin) the world's clock reads no later than the real time: nothing in the future.
        end = world_ms((real, world), 120.0, real + 630)
        assert end <= (real + 630) * 1000 and end > (real + 630 - 86400) * 1000
        # The day starts as a roster's does: the units at 07:00 local (their early shift from 06:00),
        # not at whatever the real time minus the run gives (a Sunday's 22:46).
        started = datetime.fromtimestamp(world_ms((real, world), 120.0, real) / 1000, ZoneInfo("Europe/Berlin"))
        assert (started.hour, started.minute, started.second) == (7, 0, 0)
    assert 0 < plan.change_s < plan.end_s < plan.sim_s
    assert plan.sim_s - plan.end_s >= 1200  # reminders (15 simulated minutes) run out before the end
    assert [plan.phase(t) for t in (0, plan.change_s, plan.end_s, plan.sim_s)] == [
        "early shift", "late shift", "shift-end checks", "draining"]


def test_watch_warns_once_per_change():
    w = Watch(4)
    assert w.update(0, None, 0.0, True) == []  # nothing known yet
    assert w.update(1, 2, 0.0, True) == []  # still connecting at start
    assert w.update(2, 4, 0.0, True) == []
    [lost] = w.update(3, 1, 0.0, True)
    assert lost.startswith("3 of 4 units lost the broker")
    assert w.update(4, 1, 0.0, True) == []  # said once
    assert w.update(5, 0, 0.0, True)[0].startswith("4 of 4 units lost")  # more of them
    assert w.update(15, 4, 0.0, True) == ["all 4 units are back on the broker after 12 s"]
    [behind] = w.update(16, 4, 3.0, True)
    assert "3.0 s behind real time" in behind
    assert w.update(17, 4, 5.0, True) == []
    assert w.update(18, 4, 0.1, True) == ["the simulation has caught up with real time"]
    assert w.update(19, 4, 0.0, False) == ["the demo lost its connection to the broker"]


def test_progress_line_has_time_phase_time_left_calls_and_units():
    line = progress_line(1_795_795_200_000, "late shift", 83, 120, 96, 2, 7, 39, 40, 400, 3)
    assert line.startswith("Fri 16:00 UTC late shift")
    assert " 1m23s left" in line and "calls   120 in time  80.0 %" in line and "units online  39/40" in line
    line = progress_line(1_795_795_200_000, "late shift", 83, 120, 96, 2, 7, 39, 40, 400, 3, "Asia/Shanghai")
    assert line.startswith("Sat 00:00 Asia/Shanghai late shift")  # UTC+8


def test_the_demo_runs_in_this_machines_zone(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    assert local_zone({}, etc) == "UTC"  # nothing names one
    os.symlink("/usr/share/zoneinfo/Europe/Berlin", etc / "localtime")
    assert local_zone({}, etc) == "Europe/Berlin"
    (etc / "timezone").write_text("Asia/Shanghai\n")
    assert local_zone({}, etc) == "Asia/Shanghai"
    assert local_zone({"TZ": ":America/New_York"}, etc) == "America/New_York"
    assert local_zone({"TZ": "Mars/Olympus"}, etc) == "Asia/Shanghai"  # not a zone: the next source


def test_demo_ctrl_c_leaves_nothing_running(tmp_path):
    # Ctrl-C as a terminal sends it: to the whole foreground process group,
    # once the floor runs (its first live line), with a board provisioning.
    demo = subprocess.Popen(
        [sys.executable, "-m", "seatmon.cli", "demo", "--units", "2", "--boards", "1", "--duration", "10m",
         "--no-browser", "--data-dir", str(tmp_path / "demo")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0)
    lines = []
    try:
        for line in demo.stdout:  # no clock here: the demo says when the floor runs
            lines.append(line)
            if "units online" in line:
                break
        started = _descendants(demo.pid)
        assert len(started) >= 5, "".join(lines)  # mosquitto, influxd, two collectors, board, units, a board
        os.killpg(demo.pid, signal.SIGINT)
        stopping = time.monotonic()
        out, _ = demo.communicate(timeout=120)
        took = time.monotonic() - stopping
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    out = "".join(lines) + out
    assert demo.returncode == 130, out
    assert "interrupted, stopping everything" in out and out.rstrip().endswith("seatmon demo: stopped"), out
    assert "failed" not in out, out  # the units were stopped, not broken
    assert [p for p in started if _alive(p)] == [], out
    print(f"stopped {len(started)} processes in {took:.1f} s")


def test_floor_readings_from_the_simulators_status_files(tmp_path):
    status = tmp_path / "units-status.json"
    assert read_floor(status, now=100.0) == (None, 0.0)
    (tmp_path / "units-status.json.0").write_text('{"units": 3, "connected": 3, "lag_ms": 120, "real_s": 99.5}')
    (tmp_path / "units-status.json.1").write_text('{"units": 3, "connected": 1, "lag_ms": 80, "real_s": 95.0}')
    (tmp_path / "units-status.json.1.tmp").write_text('{"units": 3')  # being written
    connected, lag = read_floor(status, now=100.0)
    assert connected == 4
    assert lag == 4.0  # worker 1 has not written for 5 s: it is that far behind


def test_the_boards_get_their_sites_tls_listener_accounts_and_acl_the_floor_stays_anonymous(tmp_path):
    from virtual.desks import board_units
    from virtual.labsite import loopback_site

    site = loopback_site(tmp_path, 18883, site_id="demo-boards", units=board_units(3))
    assert [(u["id"], u["hardware"]) for u in site.units] == [("vb-01", "rev-a"), ("vb-02", "rev-b"),
                                                               ("vb-03", "rev-a")]
    conf = broker_config(tmp_path / "data", 11883, tmp_path / "broker").splitlines()
    assert conf[0] == "per_listener_settings true"
    floor, boards = conf.index("listener 11883 127.0.0.1"), conf.index("listener 18883 127.0.0.1")
    assert floor < boards and conf[floor + 1] == "allow_anonymous true"
    tls = conf[boards:]
    assert "allow_anonymous false" in tls and "tls_version tlsv1.2" in tls
    assert f"password_file {tmp_path / 'broker' / 'passwd'}" in tls and f"acl_file {tmp_path / 'broker' / 'acl'}" in tls
    assert "user vb-03" in (tmp_path / "broker" / "acl").read_text()
    assert "listener 18883" not in "\n".join(broker_config(tmp_path / "data", 11883, None).splitlines())


def test_demo_serve_brings_a_finished_runs_data_back_and_prints_commands_that_reach_it(tmp_path):
    from collector.influx import InfluxV1
    from seatmon import demo
    from rig.servers import InfluxDB

    run_dir = tmp_path / "demo"
    with InfluxDB(run_dir / "influxdb") as influx:  # a run's database, its servers stopped since
        InfluxV1(influx.url, demo.DATABASE).create_database()
        InfluxV1(influx.url, demo.BOARD_DATABASE).create_database()
    demo._keep(run_dir, "2026-12-07", "2026-12-07", "UTC", run_dir / "report-2026-12.html",
               ("2026-12-07", "2026-12-08"))
    serve = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "demo", "serve", "--data-dir", str(run_dir)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in serve.stdout:
            lines.append(line)
            if "the desk units on virtual boards" in line:
                break
        commands = [line.split("#")[0].split() for line in lines if line.strip().startswith("seatmon report")]
        assert len(commands) == 4, "".join(lines)  # answers, safety, units; the boards' answers
        for command in commands:
            res = subprocess.run([sys.executable, "-m", "seatmon.cli", *command[1:]], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
            # reached: 0, or 4 for "no calls" in this empty database; never 1 (unreachable)
            assert res.returncode in (0, 4) and "unreachable" not in res.stderr, res.stdout + res.stderr
        assert any("its broker: 127.0.0.1:" in line for line in lines), "".join(lines)
    finally:
        serve.send_signal(signal.SIGINT)
        out, _ = serve.communicate(timeout=30)
    assert serve.returncode == 0 and "stopped" in out, out


def test_demo_serve_without_a_run_says_what_to_do(tmp_path):
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "demo", "serve", "--data-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "run `seatmon demo` first" in res.stderr and "Traceback" not in res.stderr
