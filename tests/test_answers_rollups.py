"""The answers report read from the roll-ups: histogram percentiles within
their stated resolution, the same figures from day and 15-minute roll-ups,
redelivery changing nothing, and data of the old schema still read.

Hand figures as in tests/test_reports.py (seat_calls): seat A answers in
2, 3, 4, 5, 6, 7, 8, 9, 12 s; seat B in 5, 15, 25 s.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from collector.influx import InfluxV1
from collector.rollstore import rebuild, store_events
from seatmon.cli import main as cli
from seatmon.report import answers as answers_mod
from seatmon.report.query import make_scope
from tests.test_reports import Units, ms, seat_calls
from rig.gendata import Plan, load


@pytest.fixture
def db(influxdb, unique_name):
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    return client


def report(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def test_generated_rollups_equal_the_collectors(influxdb, unique_name):
    """gendata computes roll-ups from its events; the collector's rebuild
    computes them from the stored rows: the same points (over a DST change)."""
    plan = Plan(start=date(2026, 10, 24), days=3, seats=2, calls_per_seat_day=30, tz="Europe/Berlin", seed=5)
    made, rebuilt = InfluxV1(influxdb.url, unique_name + "_a"), InfluxV1(influxdb.url, unique_name + "_b")
    load(made, plan)
    load(rebuilt, plan, rollups=False)
    rebuild(rebuilt, ms("2026-10-23T00:00:00Z"), ms("2026-10-28T00:00:00Z"), plan.tz)
    for measurement in ("rollup_15m", "rollup_day"):
        q = f"SELECT * FROM {measurement} GROUP BY *"
        a, b = made.query(q)[0]["series"], rebuilt.query(q)[0]["series"]
        assert sum(len(x["values"]) for x in a) > 0
        assert sorted(map(json.dumps, a)) == sorted(map(json.dumps, b)), measurement


def test_exact_percentiles_carry_no_resolution(db, capsys):
    store_events(db, seat_calls())
    doc = json.loads(report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--format", "json")[0])
    assert [g["percentile_resolution_ms"] for g in doc["groups"]] == [0, 0]
    assert doc["total"]["percentile_resolution_ms"] == 0


def test_above_exact_max_percentiles_come_from_histograms_within_50_ms(db, capsys, monkeypatch):
    store_events(db, seat_calls())
    monkeypatch.setattr(answers_mod, "EXACT_MAX", 5)  # 12 answered calls: above it
    doc = json.loads(report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--format", "json")[0])
    a, b = doc["groups"]
    t = doc["total"]
    # Exact: A median 6 s, p90 9 s; B median 15 s, p90 25 s; total median 6.5 s, p90 15 s.
    for g, median, p90 in ((a, 6000, 9000), (b, 15000, 25000), (t, 6500, 15000)):
        assert g["percentile_resolution_ms"] == 50
        assert abs(g["median_ms"] - median) <= 50 and abs(g["p90_ms"] - p90) <= 50
    # Counts, ASA and max stay exact: A 56 s / 9, max 12 s; total max 25 s.
    assert (a["answered"], a["asa_ms"], a["max_ms"]) == (9, 56000 / 9, 12000)
    assert t["max_ms"] == 25000
    out, _err = report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC")
    assert "±0.05" in out and "within 50 ms of the exact figure" in out
    csv_out, _err = report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--format", "csv")
    head, *rows = csv_out.splitlines()
    col = head.split(",").index("percentile_resolution_ms")
    assert [r.split(",")[col] for r in rows] == ["50", "50", "50"]


def test_same_figures_from_day_and_15_minute_rollups(db, capsys):
    # Day roll-ups made in Berlin; Paris keeps the same offsets but is another
    # zone name, so its report reads the 15-minute roll-ups.
    u = Units()
    events = seat_calls() + [u.call("C", "2026-11-02T23:30:00Z", answer_ms=7000, shift="2026-11-02/night"),
                             u.call("C", "2026-11-03T00:30:00Z", outcome="abandoned", ring_ms=6000,
                                    shift="2026-11-02/night")]
    store_events(db, events, tz="Europe/Berlin")
    berlin = make_scope("2026-11-01", "2026-11-04", "Europe/Berlin")
    paris = make_scope("2026-11-01", "2026-11-04", "Europe/Paris")
    assert answers_mod.day_rollups_in(db, berlin) and not answers_mod.day_rollups_in(db, paris)
    for by in ("seat", "day", "shift", "shift-seat", "site"):
        docs = []
        for zone in ("Europe/Berlin", "Europe/Paris"):
            out, _err = report(db, capsys, "answers", "--by", by, "--from", "2026-11-01", "--to", "2026-11-04",
                               "--tz", zone, "--format", "json")
            doc = json.loads(out)
            docs.append((doc["groups"], doc["total"]))
        assert docs[0] == docs[1], by
    # Seat A 10 calls, B 5, C 2 (a night shift over local midnight).
    assert docs[0][1]["calls"] == 17


def test_a_site_whose_days_are_kept_in_another_zone_is_read_from_15_minute_rollups(db, capsys):
    u = Units()
    store_events(db, seat_calls(), tz="Europe/Berlin")  # site hq: day roll-ups in Berlin
    store_events(db, [u.call("X", "2026-11-02T10:00:00Z", answer_ms=3000, site="branch")], tz="UTC")
    berlin = make_scope("2026-11-02", "2026-11-02", "Europe/Berlin")
    assert not answers_mod.day_rollups_in(db, berlin)
    assert answers_mod.day_rollups_in(db, make_scope("2026-11-02", "2026-11-02", "Europe/Berlin", site="hq"))
    out, _err = report(db, capsys, "answers", "--by", "site", "--from", "2026-11-02", "--tz", "Europe/Berlin",
                       "--format", "json")
    assert [(g["group"], g["calls"]) for g in json.loads(out)["groups"]] == [("branch", 1), ("hq", 15)]


def test_hours_of_a_half_hour_zone(db, capsys):
    u = Units()
    # Asia/Kolkata is UTC+5:30: 09:10Z is 14:40, 09:40Z is 15:10, 09:50Z is 15:20.
    store_events(db, [u.call("A", "2026-11-02T09:10:00Z", answer_ms=3000),
                      u.call("A", "2026-11-02T09:40:00Z", answer_ms=4000),
                      u.call("A", "2026-11-02T09:50:00Z", outcome="missed", ring_ms=30000)])
    out, _err = report(db, capsys, "answers", "--by", "hour", "--from", "2026-11-02", "--tz", "Asia/Kolkata",
                       "--format", "json")
    assert [(g["group"], g["calls"], g["answered_in_time"]) for g in json.loads(out)["groups"]] == [
        ("2026-11-02 14:00 IST", 1, 1), ("2026-11-02 15:00 IST", 2, 1)]


def test_a_redelivered_event_changes_nothing(db, capsys):
    events = seat_calls()
    store_events(db, events)
    first = report(db, capsys, "answers", "--by", "hour", "--from", "2026-11-02", "--tz", "UTC", "--format", "json")
    store_events(db, events[3:7])  # delivered again (QoS1 redelivery, a second collector)
    store_events(db, [events[-1]])
    again = report(db, capsys, "answers", "--by", "hour", "--from", "2026-11-02", "--tz", "UTC", "--format", "json")
    assert first == again
    assert json.loads(first[0])["total"]["calls"] == 15  # A 10, B 5


def test_two_labels_of_one_shift_name_in_one_quarter_hour_both_count(db, capsys):
    # A 24-hour shift `all`: the call at 00:05 is yesterday's shift in
    # overtime, the one at 00:10 today's; one seat, one quarter hour.
    u = Units()
    store_events(db, [u.call("A", "2026-11-02T00:05:00Z", answer_ms=3000, shift="2026-11-01/all"),
                      u.call("A", "2026-11-02T00:10:00Z", answer_ms=12000, shift="2026-11-02/all")])
    [series] = db.query("SELECT count(calls) FROM rollup_15m")[0]["series"]
    assert series["values"][0][1] == 2
    for by, want in (("hour", [("2026-11-02 00:00 UTC", 2, 1)]),
                     ("shift", [("2026-11-01/all", 1, 1), ("2026-11-02/all", 1, 0)]),
                     ("seat", [("A", 2, 1)])):
        out, _err = report(db, capsys, "answers", "--by", by, "--from", "2026-11-02", "--tz", "UTC",
                           "--format", "json")
        assert [(g["group"], g["calls"], g["answered_in_time"]) for g in json.loads(out)["groups"]] == want, by
    # The monthly page's hour grid, summed by InfluxDB over the 15-minute roll-ups.
    grid = answers_mod.hour_grid(db, make_scope("2026-11-02", "2026-11-02", "UTC"))
    assert [(g.group, g.calls, g.answered_in_time) for g in grid.groups] == [("2026-11-02 00:00 UTC", 2, 1)]


def test_the_histogram_gives_the_distribution_exactly():
    # 100 ms bins: 1 950 ms is bin 19 (0-2 s), 2 000 ms bin 20 (2-4 s), 31 000 ms the open bin.
    hist = {19: 2, 20: 1, 310: 4, 600: 1}
    bins = answers_mod.bins_from_hist(hist)
    assert bins[0] == (0, 2000, 2) and bins[1] == (2000, 4000, 1) and bins[-1] == (30000, None, 5)
    assert sum(n for _lo, _hi, n in bins) == 8


def test_old_schema_data_is_read_the_old_way_with_a_note(db, capsys, tmp_path):
    # As stored before the shift label became a field: `shift` a tag, no roll-ups.
    t = ms("2026-11-02T09:00:00Z")
    db.write_lines([
        f'call,outcome=answered,seat=A,shift=2026-11-02/day,site=hq,unit=u-A answer_ms=4000i,ring_ms=4000i,'
        f'timely=1i,late=0i,answered=1i,missed=0i,abandoned=0i,clock="ntp",within_limit=true {t}',
        f'call,outcome=answered,seat=A,shift=2026-11-02/day,site=hq,unit=u-A answer_ms=12000i,ring_ms=12000i,'
        f'timely=0i,late=1i,answered=1i,missed=0i,abandoned=0i,clock="ntp",within_limit=false {t + 60000}'])
    out, err = report(db, capsys, "answers", "--by", "shift", "--from", "2026-11-02", "--tz", "UTC",
                      "--format", "json")
    assert "seatmon collect migrate" in err
    doc = json.loads(out)
    g = doc["groups"][0]
    # 2 calls, 1 in time; median (4+12)/2 = 8 s, exact.
    assert (g["group"], g["calls"], g["answered_in_time"], g["median_ms"]) == ("2026-11-02/day", 2, 1, 8000)
    page = tmp_path / "m.html"
    _out, err = report(db, capsys, "monthly", "--month", "2026-11", "--tz", "UTC", "--out", str(page))
    assert "seatmon collect migrate" in err
    assert "2 calls rang; 50.0% were answered within the limit" in page.read_text()


def test_a_report_notes_roll_ups_still_pending_for_its_range(db, capsys):
    """Collectors say in InfluxDB which intervals still wait for a refresh
    (collector.rollup.pending_line); a report whose range holds some says
    its figures may still change."""
    from collector import rollup as ru

    store_events(db, seat_calls())
    args = ("answers", "--from", "2026-11-02", "--tz", "UTC")
    assert "pending" not in report(db, capsys, *args)[1]
    nine = ms("2026-11-02T09:00:00Z")
    db.write_lines([ru.pending_line("collector-a", 3, nine, nine + 2 * ru.INTERVAL_MS, nine + 5000)])
    err = report(db, capsys, *args)[1]
    assert ("note: roll-ups of 3 interval(s) from 2026-11-02 09:00 to 09:30 UTC are still pending at collector "
            "collector-a (as of 2026-11-02 09:00 UTC): figures may still change; run the report again shortly") in err
    # Its latest word counts: the keys of another day wait now, then none.
    db.write_lines([ru.pending_line("collector-a", 1, nine + 7 * 86400_000, nine + 7 * 86400_000 + ru.INTERVAL_MS,
                                    nine + 6000)])
    assert "pending" not in report(db, capsys, *args)[1]
    db.write_lines([ru.pending_line("collector-a", 0, 0, 0, nine + 7000)])
    assert "pending" not in report(db, capsys, *args)[1]
