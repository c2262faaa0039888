"""The soak (bench/soak.py): its roster over the change of the clocks, its
seeded fault schedule, the units' traffic on a roster, and two tiny runs on
real servers: one that passes, one with a planted defect that fails naming
its cause."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench import soak, soak_faults
from virtual.units.traffic import Traffic
from virtual.units.unit import roster_config, shift_windows

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")


def _ms(*args) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp() * 1000)


def test_the_rosters_night_shift_over_the_change_of_the_clocks_lasts_nine_hours():
    conf = roster_config("soak", 3, soak.ROSTER["night"], _ms(2026, 10, 23, 12), soak.TZ)
    windows = shift_windows(conf, _ms(2026, 10, 23, 12), _ms(2026, 10, 26, 12))
    assert [(e - s) / 3600000 for s, e in windows] == [8.0, 9.0]  # Friday's night, Saturday's (no Sunday night)
    assert windows[1] == (_ms(2026, 10, 24, 22), int(datetime(2026, 10, 25, 5, tzinfo=ZoneInfo("UTC")).timestamp() * 1000))


def test_the_week_holds_a_dst_change_and_every_shift_group_works_in_it():
    start = int(soak.WEEK_START.timestamp() * 1000)
    end = start + int(soak.WEEK_HOURS * 3600000)
    offsets = {soak.WEEK_START.utcoffset(), datetime.fromtimestamp(end / 1000, BERLIN).utcoffset()}
    assert len(offsets) == 2
    for group in soak.GROUPS:
        conf = roster_config("soak", 1, soak.ROSTER[group], start, soak.TZ)
        assert len(shift_windows(conf, start, end)) == 6, group  # six shifts a week; Sunday off


def test_traffic_on_a_roster_starts_calls_only_inside_shifts_and_counts_each_start_and_end():
    windows = [(3600000, 3 * 3600000), (5 * 3600000, 6 * 3600000)]
    t = Traffic(7, 0, calls_per_hour=30, outgoing_per_hour=10, windows=windows, left_on=0.0)
    starts, power_off = [], []
    for tick in range(0, 7 * 3600000, 1000):
        before = t.plan
        t.level("ring", tick)
        if t.plan is not None and t.plan is not before:
            starts.append(tick)
        if not t.level("power", tick):
            power_off.append(tick)
    assert starts and all(any(s <= at < e for s, e in windows) for at in starts)
    assert t.tally["selftest"] == 2 and t.tally["shift_end_off"] == 2 and t.tally["shift_end_left_on"] == 0
    # Off before each shift's end, on again ten minutes before the next one.
    assert any(3 * 3600000 - 300000 <= at < 3 * 3600000 for at in power_off)
    assert not any(5 * 3600000 - 600000 <= at < 6 * 3600000 - 300000 for at in power_off)


def test_the_fault_schedule_is_seeded_and_never_overlaps_one_resource():
    a = soak_faults.schedule(random.Random(3), 600, 14, 40, 4, 2)
    assert a == soak_faults.schedule(random.Random(3), 600, 14, 40, 4, 2)
    assert a != soak_faults.schedule(random.Random(4), 600, 14, 40, 4, 2)
    assert {f["kind"] for f in a} >= {"broker-sigkill", "influx-sigstop", "collector-sigkill", "poison",
                                      "collector-restart-influx-down", "board-powercut-ntp-down"}
    held: dict[str, list[tuple[float, float]]] = {}
    for f in a:
        for r in soak_faults.KINDS[f["kind"]][0]:
            key = f"{r}:{f['target']}" if r in ("collector", "board") else r
            assert all(f["at"] >= e or f["at"] + f["length"] <= s for s, e in held.get(key, [])), (f, held[key])
            held.setdefault(key, []).append((f["at"], f["at"] + f["length"]))
    # Faults on different resources do overlap: that is the point.
    spans = sorted((f["at"], f["at"] + f["length"]) for f in a)
    assert any(b[0] < a_[1] for a_, b in zip(spans, spans[1:]))


def _soak(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bench.soak", "--short", "--units", "2", "--boards", "0", "--hours", "4",
           "--faults", "2", "--seed", "5", "--data-dir", str(tmp_path / "soak"), *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_tiny_soak_passes_and_accounts_for_every_event(tmp_path):
    run = _soak(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert summary["ok"] and not summary["failures"]
    assert all(row["ok"] for row in summary["accounting"])
    assert sum(row["generated"] for row in summary["accounting"]) > 0
    assert all(r["ok"] for r in summary["reports"].values())
    assert {f["kind"] for f in summary["faults"]} >= {"poison", "broker-sigkill"}
    page = (tmp_path / "soak" / "soak.html").read_text()
    assert "<svg" in page and "http" not in page.split("</title>", 1)[1]  # no external assets


@pytest.mark.slow
def test_a_collector_that_forgets_to_acknowledge_quarantined_events_fails_the_soak_naming_the_unit(tmp_path):
    run = _soak(tmp_path, "--plant", "collector-forgets-quarantine-ack")
    assert run.returncode == 1, run.stderr[-3000:]
    assert "FAILED: u-0666 (the poison unit): acknowledged to seq 4, its top is 30; seq 5 never acknowledged" \
        in run.stderr, run.stderr[-3000:]
