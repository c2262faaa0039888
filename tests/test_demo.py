"""`seatmon demo` end to end: real servers, collector, virtual units running the
real firmware, reports, and the demo's own check that every generated event
was stored exactly once. Also: Ctrl-C stops everything and leaves nothing running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    res = subprocess.run(
        [sys.executable, "-m", "seatmon.cli", "demo", "--units", "6", "--duration", "40s",
         "--data-dir", str(tmp_path / "demo")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "demo passed: every generated event was stored exactly once" in out
    assert "Answers by shift" in out and "Shift-end safety" in out
    assert "MISMATCH" not in out
    assert list((tmp_path / "demo").glob("report-*.html"))


def test_demo_ctrl_c_leaves_nothing_running(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "seatmon.cli", "demo", "--units", "2", "--duration", "10m",
         "--data-dir", str(tmp_path / "demo")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    started = []
    while time.monotonic() < deadline:
        started = _descendants(demo.pid)
        if len(started) >= 4:  # mosquitto, influxd, collector, units
            break
        time.sleep(0.5)
    assert len(started) >= 4, started
    time.sleep(3)
    started = _descendants(demo.pid)
    demo.send_signal(signal.SIGINT)
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 130, out
    assert "interrupted, stopping everything" in out
    time.sleep(1)
    assert [p for p in started if _alive(p)] == [], out
