"""The virtual desk unit's traffic model and scenario files: what the model
says it generated is what the real firmware journaled."""

import json
import os
import time
import subprocess
import sys

from firmware.flashfs import DirFS
from firmware.journal import Journal
from virtual.units.harness import UnitThread, wait_until
from virtual.units.traffic import Traffic
from virtual.units.unit import VirtualUnit


def journaled(path):
    j = Journal(DirFS(path))
    out = [json.loads(p) for _, p in j.entries(0, 100000)]
    j.fs.close()
    return out


def test_traffic_tally_matches_the_events_journaled(tmp_path):
    # No broker at this address: the journal keeps everything. The fake radio
    # still gives NTP, so events are stamped (and journaled) at once.
    vu = VirtualUnit(str(tmp_path / "u"), "sim", 1, ("127.0.0.1", 9), speed=1500.0, seed=11,
                     traffic={"calls_per_hour": 60.0, "outgoing_per_hour": 20.0, "late_share": 0.2,
                              "unanswered_share": 0.15})
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: sum(vu.traffic.tally[k] for k in ("answered", "unanswered", "outgoing")) >= 60, 60)
    finally:
        run.stop()
    # Stopped: the wires and the journal hold still now.
    tally = dict(vu.traffic.tally, in_progress=vu.traffic.in_progress())
    assert not vu.unit.core._pending
    events = journaled(str(tmp_path / "u" / "journal"))
    calls = [e for e in events if e["kind"] == "call"]
    answered = [e for e in calls if e["outcome"] == "answered"]
    unanswered = [e for e in calls if e["outcome"] in ("missed", "abandoned")]
    outgoing = [e for e in events if e["kind"] == "outgoing"]
    slack = tally["in_progress"]  # the activity under way may have been reported, not yet tallied
    assert tally["answered"] <= len(answered) <= tally["answered"] + slack
    assert tally["unanswered"] <= len(unanswered) <= tally["unanswered"] + slack
    assert tally["outgoing"] <= len(outgoing) <= tally["outgoing"] + slack
    late = [e for e in answered if not e["within_limit"]]
    assert tally["answered_late"] <= len(late) <= tally["answered_late"] + slack
    assert all(e["apology_prompted"] for e in late)
    assert tally["answered_late"] > 0 and tally["unanswered"] > 0 and tally["outgoing"] > 0


def test_scenario_file_drives_the_units(tmp_path, mqtt_broker, unique_name):
    scenario = {"units": {"*": {"answered": [[1000, 13500, 20000], [30000, 33000, 40000]],
                                "rings": [[50000, 5]], "outgoing": [[80000, 90000]]}}}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    data = tmp_path / "units"
    r = subprocess.run([sys.executable, "-m", "virtual.units.cli", "--units", "2", "--site", unique_name,
                        "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}", "--speed", "25",
                        "--duration", "5", "--procs", "1", "--scenario", str(path), "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["units"] == 2 and summary["tally"]["journaled"] >= 8
    for unit_dir in sorted(os.listdir(data)):
        events = journaled(str(data / unit_dir / "journal"))
        calls = [e for e in events if e["kind"] == "call"]
        assert [c["outcome"] for c in calls] == ["answered", "answered", "missed"]
        late, on_time = calls[0], calls[1]
        assert not late["within_limit"] and late["apology_prompted"] and late["rings"] == 3
        assert abs(late["answer_ms"] - 12500) <= 10
        assert on_time["within_limit"] and abs(on_time["answer_ms"] - 3000) <= 10
        assert [e["kind"] for e in events].count("outgoing") == 1


def test_bad_scenario_file_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"units": {\n  "*": {"answered": [1, 2,]}\n}}')
    r = subprocess.run([sys.executable, "-m", "virtual.units.cli", "--units", "1", "--site", "s",
                        "--broker", "127.0.0.1:9", "--scenario", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "bad.json: line 2" in r.stderr


def test_shift_end_with_equipment_left_on_at_some_seats(tmp_path):
    # Seat 1 leaves its equipment on, seat 2 switches off before the end
    # (shift_end_mode "remind"; NTP from the fake radio, no broker needed).
    units = []
    for i, left_on in ((1, 1.0), (2, 0.0)):
        vu = VirtualUnit(str(tmp_path / ("u%d" % i)), "sim", i, ("127.0.0.1", 9), speed=300.0, seed=2,
                         traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0, "shift_end_ms": 120000,
                                  "left_on": left_on})
        units.append((vu, UnitThread(vu)))
    try:
        on, off = units[0][0], units[1][0]
        assert wait_until(lambda: off.unit.journal.next_seq > 2 and on.unit.core.phase == "reminding", 60)
        live = json.loads(on.unit.live_payload())
        assert live["left_on"] and live["pattern"] == "shift_end"
    finally:
        for vu, run in units:
            run.stop()
    assert on.traffic.tally["shift_end_left_on"] == 1 and off.traffic.tally["shift_end_off"] == 1
    ends = [e for e in journaled(str(tmp_path / "u2" / "journal")) if e["kind"] == "shift_end"]
    assert [(e["equipment"], e["action"]) for e in ends] == [("off", "none")]
    assert any(e["kind"] == "selftest" for e in journaled(str(tmp_path / "u1" / "journal")))


def test_no_call_starts_after_the_shift_end():
    # The agents go home: calls under way run to their end, none starts later
    # (a call ringing after the schedule's end belongs to no shift).
    traffic = Traffic(3, 0, calls_per_hour=600.0, outgoing_per_hour=200.0, shift_end_ms=600000)
    starts = set()
    for t in range(0, 1800000, 100):
        traffic.level("ring", t)
        if traffic.plan is not None:
            starts.add(traffic.plan[0])
    assert starts and max(starts) < 600000
    assert max(starts) > 500000  # busy until then
    assert traffic.plan is None  # and everything under way has ended


def test_the_seats_stop_at_the_minute_the_schedule_names(tmp_path):
    vu = VirtualUnit(str(tmp_path / "u"), "sim", 1, ("127.0.0.1", 9), speed=60.0, seed=1,
                     traffic={"shift_end_ms": 3000000, "shift_change_ms": 1500000})
    conf = json.loads((tmp_path / "u" / "config.json").read_text())
    end = vu.start_ms + vu.traffic.shift_end_ms
    assert end % 60000 == 0
    assert conf["shifts"]["mon"][-1][2] == time.strftime("%H:%M", time.gmtime(end // 1000))
    vu.unit.journal.fs.close()


def test_agents_acknowledge_missed_calls_with_the_button_before_the_shift_end():
    # Without it every seat of a demo floor showed MISSED CALL after a few hours.
    traffic = Traffic(5, 0, calls_per_hour=20.0, outgoing_per_hour=0.0, unanswered_share=0.5,
                      shift_end_ms=6 * 3600000)
    missed_ends, presses, pressed = [], [], False
    for t in range(0, 7 * 3600000, 100):
        traffic.level("ring", t)
        if (traffic.plan is not None and traffic.kind == ("unanswered",)
                and (not missed_ends or missed_ends[-1] < traffic.plan[0])):
            missed_ends.append(traffic.plan[1])
        now_pressed = traffic.level("button", t) == 0
        if now_pressed and not pressed:
            presses.append(t)
        pressed = now_pressed
    # Most reminders end with a press within 10 minutes (one press acknowledges every call missed before it).
    acked = [e for e in missed_ends if any(e + 12000 <= p <= e + 12000 + 600000 for p in presses)]
    assert len(missed_ends) > 20 and len(acked) >= 0.7 * len(missed_ends)
    assert all(any(end + 12000 <= p for end in missed_ends) for p in presses)
    assert max(presses) < 6 * 3600000  # at the shift end the button would postpone it instead


def test_the_simulated_shifts_start_and_change_at_a_rosters_times():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from virtual.units.unit import default_config

    seven = int(datetime(2026, 12, 7, 7, 4, 31, tzinfo=ZoneInfo("Europe/Berlin")).timestamp() * 1000)
    conf = default_config("demo", 1, shift_end_ms=16 * 3600000 + 17 * 60000, now_ms=seven,
                          shift_change_ms=8 * 3600000 + 7 * 60000, tz="Europe/Berlin")
    assert conf["shifts"]["mon"] == [["early", "06:00", "15:00"], ["late", "15:00", "23:21"]]
