"""Reports on a real InfluxDB against small hand-built data sets.

Every expected figure below is worked out by hand in the comments (literal
numbers), never by calling report code. Timestamps are written as UTC
literals so the time-zone cases do not lean on the zone code under test.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest

from collector.influx import InfluxV1
from collector.rollstore import store_events
from collector.schema import event_point, gap_point, heartbeat_point, line, status_point
from seatmon.cli import main as cli
from shared import protocol as p
from rig.servers import free_port


def ms(utc: str) -> int:
    return int(datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp() * 1000)


class Units:
    """Builds protocol-valid events with per-unit seq numbers."""

    def __init__(self):
        self.seq = {}

    def event(self, kind, seat, utc, shift=None, site="hq", **fields):
        unit = "u-" + seat
        self.seq[unit] = self.seq.get(unit, 0) + 1
        msg = {"v": 1, "kind": kind, "site": site, "unit": unit, "seat": seat, "boot": 1,
               "seq": self.seq[unit], "ts": ms(utc), "clock": "ntp"}
        if shift:
            msg["shift"] = shift
        msg.update(fields)
        return p.validate_event(msg)

    def call(self, seat, utc, answer_ms=None, outcome=None, ring_ms=None, shift=None, site="hq", **extra):
        if answer_ms is not None:
            return self.event("call", seat, utc, shift, site, outcome="answered", rings=answer_ms // 5000 + 1,
                              ring_ms=answer_ms, answer_ms=answer_ms, within_limit=answer_ms <= 10000,
                              limit_ms=10000, apology_prompted=answer_ms > 10000, **extra)
        return self.event("call", seat, utc, shift, site, outcome=outcome, rings=ring_ms // 5000 + 1,
                          ring_ms=ring_ms, within_limit=False, limit_ms=10000, apology_prompted=False, **extra)


@pytest.fixture
def db(influxdb, unique_name):
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    return client


def write(db, events):
    store_events(db, events)


def report(db, capsys, *args):
    code = cli(["report", *args, "--influx", db.url, "--db", db.database])
    out, err = capsys.readouterr()
    return code, out, err


def report_json(db, capsys, *args):
    code, out, err = report(db, capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


# ---- answers per seat: rate, ASA, median, p90, late, missed -------------------------------

def seat_calls():
    u = Units()
    ev = []
    # Seat A, 2026-11-02 from 09:00Z, one call a minute: 8 in time, 1 late (12 s), 1 missed.
    for i, a in enumerate([2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 12000]):
        ev.append(u.call("A", f"2026-11-02T09:{i:02d}:00Z", answer_ms=a))
    ev.append(u.call("A", "2026-11-02T09:30:00Z", outcome="missed", ring_ms=30000))
    ev.append(u.event("outgoing", "A", "2026-11-02T10:00:00Z", talk_ms=60000))
    ev.append(u.event("outgoing", "A", "2026-11-02T10:05:00Z", talk_ms=60000))
    # Seat B: 1 in time (5 s), 2 late (15 s, 25 s), 1 abandoned (4 s of ringing), 1 missed.
    ev.append(u.call("B", "2026-11-02T11:00:00Z", answer_ms=5000))
    ev.append(u.call("B", "2026-11-02T11:01:00Z", answer_ms=15000))
    ev.append(u.call("B", "2026-11-02T11:02:00Z", answer_ms=25000))
    ev.append(u.call("B", "2026-11-02T11:03:00Z", outcome="abandoned", ring_ms=4000))
    ev.append(u.call("B", "2026-11-02T11:04:00Z", outcome="missed", ring_ms=40000))
    return ev


def test_answers_per_seat_match_hand_figures(db, capsys):
    write(db, seat_calls())
    doc = report_json(db, capsys, "answers", "--from", "2026-11-02", "--to", "2026-11-02", "--tz", "UTC")
    a, b = doc["groups"]
    assert (a["group"], b["group"]) == ("A", "B")
    # A: 10 calls, 8 in time -> rate 8/10; SL 8/(9 answered + 1 missed) = 0.8.
    assert (a["calls"], a["answered"], a["answered_in_time"], a["answered_late"], a["missed"], a["abandoned"],
            a["outgoing"]) == (10, 9, 8, 1, 1, 0, 2)
    assert a["timeliness_rate"] == 0.8 and a["service_level"] == 0.8
    # ASA = (2+3+4+5+6+7+8+9+12) s / 9 = 56 s / 9; median of 9 = 5th = 6 s;
    # p90 = value at rank round(0.9 * 9) = round(8.1) = 8 -> 9 s; max 12 s.
    assert a["asa_ms"] == pytest.approx(56000 / 9)
    assert (a["median_ms"], a["p90_ms"], a["max_ms"]) == (6000, 9000, 12000)
    # B: 5 calls, 1 in time -> 0.2; SL 1/(3 answered + 1 missed) = 0.25; abandoned left out of SL.
    assert (b["calls"], b["answered_in_time"], b["answered_late"], b["missed"], b["abandoned"]) == (5, 1, 2, 1, 1)
    assert b["timeliness_rate"] == 0.2 and b["service_level"] == 0.25
    # ASA 45 s / 3 = 15 s; median 15 s; p90 rank round(2.7) = 3 -> 25 s.
    assert (b["asa_ms"], b["median_ms"], b["p90_ms"], b["max_ms"]) == (15000, 15000, 25000, 25000)
    t = doc["total"]
    # Total: 15 calls, 9 in time -> 0.6; SL 9/(12 + 2) = 9/14; ASA 101 s / 12.
    assert (t["calls"], t["answered"], t["answered_in_time"], t["answered_late"], t["missed"], t["abandoned"],
            t["outgoing"]) == (15, 12, 9, 3, 2, 1, 2)
    assert t["timeliness_rate"] == 0.6 and t["service_level"] == pytest.approx(9 / 14)
    assert t["asa_ms"] == pytest.approx(101000 / 12)
    # 12 answer times 2,3,4,5,5,6,7,8,9,12,15,25 s: median (6+7)/2 = 6.5 s; p90 rank round(10.8) = 11 -> 15 s.
    assert (t["median_ms"], t["p90_ms"], t["max_ms"]) == (6500, 15000, 25000)


def test_seat_filter_table_csv_and_bom(db, capsys, tmp_path):
    write(db, seat_calls())
    code, out, err = report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--seat", "B")
    assert code == 0, err
    assert all(len(row) <= 80 for row in out.splitlines())
    assert "20.0%" in out and "25.0%" in out and "\nA " not in out
    target = tmp_path / "b.csv"
    code, out, err = report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--seat", "B",
                            "--format", "csv", "--bom", "--out", str(target))
    assert code == 0 and out == ""
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["group"] for r in rows] == ["B", "total"]
    assert rows[0]["calls"] == "5" and rows[0]["timeliness_rate"] == "0.2000" and rows[0]["p90_ms"] == "25000"
    assert float(rows[0]["asa_ms"]) == 15000


# ---- shifts (a night shift across midnight) and days in a DST-free zone --------------------

def shanghai_calls():
    u = Units()
    # Asia/Shanghai is UTC+8 all year. Local times -> UTC:
    # 11-10 22:30 late -> 14:30Z; 11-10 23:30 night -> 15:30Z; 11-11 01:15 night -> 11-10 17:15Z;
    # 11-11 06:50 night -> 11-10 22:50Z; 11-11 07:10 day -> 11-10 23:10Z.
    return [
        u.call("A", "2026-11-10T14:30:00Z", answer_ms=3000, shift="2026-11-10/late"),
        u.call("A", "2026-11-10T15:30:00Z", answer_ms=4000, shift="2026-11-10/night"),
        u.call("A", "2026-11-10T17:15:00Z", answer_ms=11000, shift="2026-11-10/night"),
        u.call("A", "2026-11-10T22:50:00Z", outcome="missed", ring_ms=31000, shift="2026-11-10/night"),
        u.call("A", "2026-11-10T23:10:00Z", answer_ms=9000, shift="2026-11-11/day"),
    ]


def test_per_shift_with_night_shift_across_midnight(db, capsys):
    write(db, shanghai_calls())
    doc = report_json(db, capsys, "answers", "--by", "shift", "--from", "2026-11-10", "--to", "2026-11-11",
                      "--tz", "Asia/Shanghai")
    got = {g["group"]: g for g in doc["groups"]}
    assert list(got) == ["2026-11-10/late", "2026-11-10/night", "2026-11-11/day"]
    night = got["2026-11-10/night"]
    # Night: 3 calls over midnight: 4 s in time, 11 s late, 1 missed -> rate 1/3, SL 1/3.
    assert (night["calls"], night["answered_in_time"], night["answered_late"], night["missed"]) == (3, 1, 1, 1)
    assert night["timeliness_rate"] == pytest.approx(1 / 3)
    # ASA (4+11)/2 = 7.5 s; median of 2 = 7.5 s; p90 rank round(1.8) = 2 -> 11 s.
    assert (night["asa_ms"], night["median_ms"], night["p90_ms"]) == (7500, 7500, 11000)


def test_per_day_in_a_dst_free_zone(db, capsys):
    write(db, shanghai_calls())
    doc = report_json(db, capsys, "answers", "--by", "day", "--from", "2026-11-10", "--to", "2026-11-11",
                      "--tz", "Asia/Shanghai")
    # Local days: 11-10 has 22:30 and 23:30 (2 calls, both in time); 11-11 the other 3 (in time: 9 s only).
    assert [(g["group"], g["calls"], g["answered_in_time"]) for g in doc["groups"]] == [
        ("2026-11-10", 2, 2), ("2026-11-11", 3, 1)]
    # The same data in UTC days: all five calls fall on 11-10.
    doc = report_json(db, capsys, "answers", "--by", "day", "--from", "2026-11-10", "--to", "2026-11-11",
                      "--tz", "UTC")
    assert [(g["group"], g["calls"]) for g in doc["groups"]] == [("2026-11-10", 5)]


# ---- days and hours across a DST change (Europe/Berlin, 2026-10-25 03:00 CEST -> 02:00 CET) ----

def berlin_calls():
    u = Units()
    return [
        u.call("A", "2026-10-24T21:30:00Z", answer_ms=2000),  # 10-24 23:30 CEST
        u.call("A", "2026-10-24T22:30:00Z", answer_ms=12000),  # 10-25 00:30 CEST
        u.call("A", "2026-10-25T00:30:00Z", answer_ms=3000),  # 10-25 02:30 CEST (first 02:30)
        u.call("A", "2026-10-25T01:30:00Z", outcome="missed", ring_ms=20000,  # 10-25 02:30 CET (second)
               clock="unsynced"),
        u.call("A", "2026-10-25T22:30:00Z", answer_ms=4000),  # 10-25 23:30 CET
        u.call("A", "2026-10-25T23:30:00Z", answer_ms=5000),  # 10-26 00:30 CET
    ]


def test_per_day_and_hour_across_a_dst_change(db, capsys):
    write(db, berlin_calls())
    doc = report_json(db, capsys, "answers", "--by", "day", "--from", "2026-10-24", "--to", "2026-10-26",
                      "--tz", "Europe/Berlin")
    # 10-25 is a 25-hour day holding 4 calls: 12 s late, 3 s, missed, 4 s -> 2 in time, rate 0.5.
    assert [(g["group"], g["calls"], g["answered_in_time"], g["answered_late"], g["missed"])
            for g in doc["groups"]] == [("2026-10-24", 1, 1, 0, 0), ("2026-10-25", 4, 2, 1, 1),
                                        ("2026-10-26", 1, 1, 0, 0)]
    assert doc["groups"][1]["timeliness_rate"] == 0.5
    doc = report_json(db, capsys, "answers", "--by", "hour", "--from", "2026-10-25", "--to", "2026-10-25",
                      "--tz", "Europe/Berlin")
    # The 02:00 hour happens twice that night; each is its own bucket.
    assert [(g["group"], g["calls"]) for g in doc["groups"]] == [
        ("2026-10-25 00:00 CEST", 1), ("2026-10-25 02:00 CEST", 1), ("2026-10-25 02:00 CET", 1),
        ("2026-10-25 23:00 CET", 1)]
    # In UTC the 10-24 day holds the first two calls.
    doc = report_json(db, capsys, "answers", "--by", "day", "--from", "2026-10-24", "--to", "2026-10-24",
                      "--tz", "UTC")
    assert [(g["group"], g["calls"]) for g in doc["groups"]] == [("2026-10-24", 2)]


def test_monthly_heatmap_rate_over_both_repeated_dst_hours(db, capsys, tmp_path):
    u = Units()
    # 2026-10-25 in Berlin: 02:00-03:00 CEST is 00:00-01:00Z, 02:00-03:00 CET is 01:00-02:00Z.
    # First 02:00 hour: 2 calls, 0 in time (12 s, missed). Second: 4 calls, 2 in time (3 s, 4 s, 15 s, missed).
    write(db, [u.call("A", "2026-10-25T00:10:00Z", answer_ms=12000),
               u.call("A", "2026-10-25T00:20:00Z", outcome="missed", ring_ms=30000),
               u.call("A", "2026-10-25T01:10:00Z", answer_ms=3000),
               u.call("A", "2026-10-25T01:20:00Z", answer_ms=4000),
               u.call("A", "2026-10-25T01:30:00Z", answer_ms=15000),
               u.call("A", "2026-10-25T01:40:00Z", outcome="missed", ring_ms=30000)])
    out = tmp_path / "m.html"
    code, _out, err = report(db, capsys, "monthly", "--month", "2026-10", "--tz", "Europe/Berlin", "--out", str(out))
    assert code == 0, err
    # One heatmap cell for the local 02h: 6 calls, 2 in time -> 33.3 % (the second hour alone is 50.0 %).
    assert "<title>2026-10-25 02h: 6 calls, rate 33.3%</title>" in out.read_text()


# ---- abandonment as call centres count it, service-level treatments ------------------------

def test_abandoned_calls_as_call_centres_count_them(db, capsys):
    write(db, seat_calls())
    args = ("answers", "--from", "2026-11-02", "--tz", "UTC")
    doc = report_json(db, capsys, *args)
    a, b = doc["groups"]
    keys = ("caller_abandoned", "abandoned_short", "abandoned_long", "abandon_rate", "avg_abandon_ms")
    # Every unanswered call is a caller who hung up before answer. Short abandon threshold 5 s (default).
    # A: 1 missed after 30 s of ringing -> 1 long; rate 1/10; ATA 30 s.
    # B: abandoned after 4 s (short), missed after 40 s (long) -> rate 2/5; ATA (4 + 40) / 2 = 22 s.
    assert tuple(a[k] for k in keys) == (1, 0, 1, 0.1, 30000)
    assert tuple(b[k] for k in keys) == (2, 1, 1, 0.4, 22000)
    # Total: 3 of 15 -> 0.2; ATA 74 s / 3.
    assert tuple(doc["total"][k] for k in keys[:4]) == (3, 1, 2, 0.2)
    assert doc["total"]["avg_abandon_ms"] == pytest.approx(74000 / 3)
    assert doc["conventions"] == {"short_abandon_ms": 5000, "abandon_treatment": "ignored"}
    # Threshold 30 s: A's call rang exactly 30 s and is long (short = less than the threshold).
    doc = report_json(db, capsys, *args, "--short-abandon", "30")
    assert [(g["abandoned_short"], g["abandoned_long"]) for g in doc["groups"]] == [(0, 1), (1, 1)]
    doc = report_json(db, capsys, *args, "--short-abandon", "40.5")
    assert [(g["abandoned_short"], g["abandoned_long"]) for g in doc["groups"]] == [(1, 0), (2, 0)]
    # Service level by treatment of B's call abandoned within the limit (A has none: 0.8 throughout):
    # ignored 1 / (5 - 1) = 0.25; negative 1 / 5 = 0.2; positive (1 + 1) / 5 = 0.4.
    # Total: ignored 9 / 14; negative 9 / 15; positive 10 / 15. The timeliness rate never changes.
    for treatment, b_sl, total_sl in (("ignored", 0.25, 9 / 14), ("negative", 0.2, 9 / 15),
                                      ("positive", 0.4, 10 / 15)):
        doc = report_json(db, capsys, *args, "--abandon-treatment", treatment)
        assert [g["service_level"] for g in doc["groups"]] == [0.8, b_sl]
        assert doc["total"]["service_level"] == pytest.approx(total_sl)
        assert [g["timeliness_rate"] for g in doc["groups"]] == [0.8, 0.2] and doc["total"]["timeliness_rate"] == 0.6
    code, out, err = report(db, capsys, *args, "--abandon-treatment", "positive", "--short-abandon", "30")
    assert code == 0 and max(len(r) for r in out.splitlines()) <= 80
    assert "SL = (in time + aband.) / calls (abandoned within the limit: positive)" in out and "at least 30 s" in out
    code, out, err = report(db, capsys, *args, "--format", "csv")
    _row_a, row_b, _total = csv.DictReader(io.StringIO(out))
    assert (row_b["caller_abandoned"], row_b["abandon_rate"], row_b["avg_abandon_ms"]) == ("2", "0.4000", "22000")


@pytest.mark.parametrize("value", ["-1", "soon", "601"])
def test_short_abandon_threshold_is_checked_first(capsys, value):
    code = cli(["report", "answers", "--from", "2026-11-02", "--tz", "UTC", "--short-abandon", value,
                "--influx", f"http://127.0.0.1:{free_port()}"])
    one_line_error(code, *capsys.readouterr(), 2, "--short-abandon", repr(value))
    code = cli(["report", "monthly", "--month", "2026-11", "--out", "x.html", "--tz", "UTC",
                "--abandon-treatment", "neutral", "--influx", f"http://127.0.0.1:{free_port()}"])
    one_line_error(code, *capsys.readouterr(), 2, "--abandon-treatment", "'neutral'")


def test_abandonment_and_unsynced_clocks_across_the_dst_change(db, capsys):
    write(db, berlin_calls())
    args = ("--from", "2026-10-25", "--to", "2026-10-25", "--tz", "Europe/Berlin")
    doc = report_json(db, capsys, "answers", "--by", "hour", *args)
    got = {g["group"]: (g["calls"], g["caller_abandoned"], g["abandoned_long"], g["avg_abandon_ms"], g["unsynced"])
           for g in doc["groups"]}
    # The repeated 02:00 hour: the first (CEST) had one answered call, the second (CET) the call missed
    # after 20 s of ringing, which was also stamped without a synchronised clock.
    assert got["2026-10-25 02:00 CEST"] == (1, 0, 0, None, 0)
    assert got["2026-10-25 02:00 CET"] == (1, 1, 1, 20000, 1)
    doc = report_json(db, capsys, "answers", "--by", "day", *args)
    # The 25-hour day: 4 calls, 1 abandoned (long) -> rate 0.25; 1 unsynced.
    day = doc["groups"][0]
    assert (day["calls"], day["caller_abandoned"], day["abandon_rate"], day["unsynced"]) == (4, 1, 0.25, 1)
    code, out, err = report(db, capsys, "answers", "--by", "day", *args)
    assert "WARNING: 1 of 4 calls were stamped without a synchronised clock" in out


# ---- who hung up first, per seat and shift (a night shift across midnight) -------------------

def hangup_calls():
    u = Units()
    # Asia/Shanghai (UTC+8). Seat A has the disconnect input, seat B does not (no hung_up_first at all).
    night = "2026-11-10/night"
    return [
        u.call("A", "2026-11-10T14:30:00Z", answer_ms=3000, shift="2026-11-10/late", hung_up_first="caller"),
        u.call("A", "2026-11-10T15:30:00Z", answer_ms=4000, shift=night, hung_up_first="agent"),  # 23:30
        u.call("A", "2026-11-10T17:15:00Z", answer_ms=11000, shift=night, hung_up_first="agent",  # 01:15
               clock="unsynced"),
        u.call("A", "2026-11-10T22:50:00Z", outcome="missed", ring_ms=31000, shift=night),  # 06:50
        u.event("outgoing", "A", "2026-11-10T18:00:00Z", night, talk_ms=60000, hung_up_first="agent"),
        u.call("A", "2026-11-10T23:10:00Z", answer_ms=9000, shift="2026-11-11/day", hung_up_first="caller"),
        u.call("B", "2026-11-10T16:00:00Z", answer_ms=5000, shift=night),  # 00:00
        u.call("B", "2026-11-10T19:00:00Z", outcome="abandoned", ring_ms=3000, shift=night),  # 03:00
    ]


def test_hung_up_first_per_seat_and_shift(db, capsys):
    write(db, hangup_calls())
    args = ("--from", "2026-11-10", "--to", "2026-11-11", "--tz", "Asia/Shanghai")
    doc = report_json(db, capsys, "answers", "--by", "shift-seat", *args)
    keys = ("hung_up_first", "hangup_known", "unsynced", "calls", "caller_abandoned", "abandoned_short",
            "avg_abandon_ms")
    got = {g["group"]: tuple(g[k] for k in keys) for g in doc["groups"]}
    assert list(got) == ["2026-11-10/late A", "2026-11-10/night A", "2026-11-10/night B", "2026-11-11/day A"]
    # Night A, across midnight: the agent ended 2 incoming calls and 1 outgoing call first, of 3 known;
    # the 01:15 call was stamped unsynced; the missed call is a long abandon after 31 s.
    assert got["2026-11-10/night A"] == (3, 3, 1, 3, 1, 0, 31000)
    # Night B: no disconnect input -> null, not 0; its abandon after 3 s is short.
    assert got["2026-11-10/night B"] == (None, 0, 0, 2, 1, 1, 3000)
    assert got["2026-11-10/late A"][:2] == (0, 1) and got["2026-11-11/day A"][:2] == (0, 1)
    assert (doc["total"]["hung_up_first"], doc["total"]["hangup_known"], doc["total"]["unsynced"]) == (3, 5, 1)
    doc = report_json(db, capsys, "answers", "--by", "seat", *args)
    assert [(g["group"], g["hung_up_first"]) for g in doc["groups"]] == [("A", 3), ("B", None)]
    code, out, err = report(db, capsys, "answers", "--by", "seat", *args)
    assert code == 0 and max(len(r) for r in out.splitlines()) <= 80
    row_b = next(r for r in out.splitlines() if r.startswith("B ") and "n/a" in r)
    assert row_b.split()[-2:] == ["n/a", "0"]
    assert "disconnect input not installed (no data): B" in out
    code, out, err = report(db, capsys, "answers", "--by", "seat", *args, "--format", "csv")
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows["A"]["hung_up_first"], rows["B"]["hung_up_first"], rows["B"]["hangup_known"]) == ("3", "", "0")
    code, out, err = report(db, capsys, "answers", "--by", "seat", *args, "--format", "html")
    # The warning counts incoming calls: 7 (the outgoing call is not one of them).
    assert "<td>n/a</td>" in out and "not installed (no data): B" in out and "WARNING: 1 of 7 calls" in out


def test_monthly_page_shows_abandonment_hangups_and_unsynced_clocks(db, capsys, tmp_path):
    write(db, hangup_calls())
    out = tmp_path / "m.html"
    code, _out, err = report(db, capsys, "monthly", "--month", "2026-11", "--tz", "Asia/Shanghai", "--out", str(out))
    assert code == 0, err
    page = out.read_text()
    # November holds the 7 incoming calls of hangup_calls(): 2 caller abandons (B's 3 s short, A's 31 s long)
    # -> 2/7 = 28.6 %, ATA 17.0 s; the agent hung up first on 3 of 5 calls with a disconnect signal.
    for tile in ("caller abandoned, all<b>2</b>", "short / long abandons<b>1 / 1</b>",
                 "abandon rate / ATA<b>28.6% / 17.0 s</b>",
                 "agent hung up first<b>3 of 5</b>", "unsynced clock<b>1 calls</b>"):
        assert tile in page
    assert "1 of 7 calls were stamped without a synchronised clock" in page
    assert "disconnect input is not installed (no data): B." in page
    # The month's HTML by-seat table: B's "agent 1st" cell says n/a, A's says 3.
    assert "<td>n/a</td><td>0</td></tr>" in page and "<td>3</td><td>1</td></tr>" in page


def test_per_site(db, capsys):
    u = Units()
    write(db, [u.call("A", "2026-11-02T09:00:00Z", answer_ms=3000, site="hq"),
               u.call("B", "2026-11-02T09:00:00Z", answer_ms=13000, site="west"),
               u.call("C", "2026-11-02T09:00:00Z", answer_ms=4000, site="west")])
    doc = report_json(db, capsys, "answers", "--by", "site", "--from", "2026-11-02", "--tz", "UTC")
    assert [(g["group"], g["calls"], g["answered_in_time"]) for g in doc["groups"]] == [("hq", 1, 1), ("west", 2, 1)]
    doc = report_json(db, capsys, "answers", "--site", "west", "--from", "2026-11-02", "--tz", "UTC")
    assert [g["group"] for g in doc["groups"]] == ["B", "C"]


# ---- safety --------------------------------------------------------------------------------

def test_safety_worst_offenders_first(db, capsys):
    u = Units()

    def end(seat, utc, shift, equipment, action, **extra):
        return u.event("shift_end", seat, utc, shift, equipment=equipment, action=action, idle_ms=60000, **extra)

    write(db, [
        end("A", "2026-11-02T06:00:00Z", "2026-11-01/night", "off", "none"),
        end("A", "2026-11-02T14:00:00Z", "2026-11-02/day", "on", "cut"),
        end("A", "2026-11-02T22:00:00Z", "2026-11-02/late", "on", "reminded", off_after_ms=120000),
        end("B", "2026-11-02T06:00:00Z", "2026-11-01/night", "off", "none"),
        end("B", "2026-11-02T14:00:00Z", "2026-11-02/day", "off", "none"),
        end("B", "2026-11-02T22:00:00Z", "2026-11-02/late", "off", "postponed", overtime_ms=900000),
        end("C", "2026-11-02T14:00:00Z", "2026-11-02/day", "on", "logged"),
    ])
    doc = report_json(db, capsys, "safety", "--from", "2026-11-02", "--tz", "UTC")
    rows = [(g["group"], g["shift_ends"], g["off_in_time"], g["left_on"], g["logged"], g["reminded"], g["cut"],
             g["postponed"]) for g in doc["groups"]]
    # A left equipment on twice (one cut), C once (logged, 0 off); B never: its postponed end was found off
    # after the granted overtime, which complies.
    assert rows == [("A", 3, 1, 2, 0, 1, 1, 0), ("C", 1, 0, 1, 1, 0, 0, 0), ("B", 3, 2, 0, 0, 0, 0, 1)]
    # B: (2 off + 1 postponed) / 3 checked = 1.0; A: 1 / 3.
    assert doc["groups"][2]["overtime_ms"] == 900000 and doc["groups"][2]["compliance"] == 1.0
    assert doc["groups"][0]["compliance"] == pytest.approx(1 / 3)
    assert (doc["total"]["shift_ends"], doc["total"]["left_on"], doc["total"]["postponed"]) == (7, 3, 1)
    doc = report_json(db, capsys, "safety", "--by", "shift-seat", "--from", "2026-11-02", "--tz", "UTC")
    assert doc["groups"][0]["group"] in ("2026-11-02/day A", "2026-11-02/late A")
    assert len(doc["groups"]) == 7


def dst_day_shift_ends():
    """Shift ends around 2026-10-25 in Berlin (CEST -> CET at 03:00; local = UTC + 1 after it).
    The night shift 2026-10-24/night crosses midnight and the DST change and ends at 07:00 CET = 06:00Z."""
    u = Units()

    def end(seat, utc, shift, equipment, action, **extra):
        return u.event("shift_end", seat, utc, shift, equipment=equipment, action=action, idle_ms=60000, **extra)

    def selftest(seat, utc, shift):
        return u.event("selftest", seat, utc, shift, ok=True, checks={}, faults=[])

    return [
        # D: two handovers (the next shift's self-test carries the same time), one with the power off,
        # one with it on; then the late shift switched off in time (its self-test is 30 s earlier: no match).
        end("D", "2026-10-25T06:00:00Z", "2026-10-24/night", "off", "none"),
        selftest("D", "2026-10-25T06:00:00Z", "2026-10-25/day"),
        end("D", "2026-10-25T14:00:00Z", "2026-10-25/day", "on", "none"),
        selftest("D", "2026-10-25T14:00:00Z", "2026-10-25/late"),
        selftest("D", "2026-10-25T22:04:30Z", "2026-10-25/night"),
        end("D", "2026-10-25T22:05:00Z", "2026-10-25/late", "off", "none"),
        # E: an unreadable power sensor, an end found off after granted overtime, and a real left-on.
        end("E", "2026-10-25T06:05:00Z", "2026-10-24/night", "unknown", "logged"),
        end("E", "2026-10-25T14:35:00Z", "2026-10-25/day", "off", "postponed", overtime_ms=1800000),
        end("E", "2026-10-25T22:05:00Z", "2026-10-25/late", "on", "logged"),
    ]


def test_safety_handovers_postponed_and_unreadable_sensors_on_the_dst_day(db, capsys):
    write(db, dst_day_shift_ends())
    args = ("--from", "2026-10-25", "--tz", "Europe/Berlin")
    doc = report_json(db, capsys, "safety", *args)
    keys = ("group", "shift_ends", "off_in_time", "postponed", "left_on", "logged", "sensor_unreadable",
            "handovers", "compliance")
    # E: 1 left on (logged), 1 postponed, 1 unreadable -> off % = 1 / (1 + 1) = 0.5, worst first.
    # D: 1 off in time, 2 handovers (one with the power off) -> off % = 1 / 1.
    assert [tuple(g[k] for k in keys) for g in doc["groups"]] == [
        ("E", 3, 0, 1, 1, 1, 1, 0, 0.5), ("D", 3, 1, 0, 0, 0, 0, 2, 1.0)]
    assert doc["total"]["overtime_ms"] == 1800000
    # All six ends fall on the local 25-hour day 2026-10-25 (the last at 23:05 CET).
    doc = report_json(db, capsys, "safety", "--by", "day", *args)
    assert [tuple(g[k] for k in keys) for g in doc["groups"]] == [
        ("2026-10-25", 6, 1, 1, 1, 1, 1, 2, 2 / 3)]
    # The night shift that crossed midnight and the DST change: D's handover with the power off, E's sensor.
    doc = report_json(db, capsys, "safety", "--by", "shift", *args)
    night = next(g for g in doc["groups"] if g["group"] == "2026-10-24/night")
    assert tuple(night[k] for k in keys[1:]) == (2, 0, 0, 0, 0, 1, 1, None)
    code, out, err = report(db, capsys, "safety", "--by", "shift-seat", *args)
    assert code == 0 and max(len(r) for r in out.splitlines()) <= 80 and "unread" in out and "hand" in out


def test_safety_reads_data_stored_with_the_old_left_on_flag(db, capsys):
    # Before the fix the collector stored left_on=1 for every action but none (postponed, unreadable
    # sensor too). The report derives the outcome from `action` and `equipment`, so such data reads right.
    text = [line(event_point(e)) for e in dst_day_shift_ends()]
    old = [t.replace("left_on=0i", "left_on=1i") if 'action="postponed"' in t or 'equipment="unknown"' in t
           else t for t in text]
    assert old != text
    db.write_lines(old)
    doc = report_json(db, capsys, "safety", "--from", "2026-10-25", "--tz", "Europe/Berlin")
    assert [(g["group"], g["left_on"], g["postponed"], g["sensor_unreadable"]) for g in doc["groups"]] == [
        ("E", 1, 1, 1), ("D", 0, 0, 0)]


def test_safety_reads_data_stored_before_the_shift_label_became_a_field(db, capsys):
    # The night shift's ends stored the old way (label as a tag `shift`), the others as today: the
    # same hand figures as test_safety_handovers_postponed_and_unreadable_sensors_on_the_dst_day.
    from seatmon.report.oldschema import old_event_line

    events = dst_day_shift_ends()
    db.write_lines([old_event_line(e) for e in events if e.get("shift", "").endswith("/night")])
    write(db, [e for e in events if not e.get("shift", "").endswith("/night")])
    args = ("--from", "2026-10-25", "--tz", "Europe/Berlin")
    keys = ("group", "shift_ends", "off_in_time", "postponed", "left_on", "logged", "sensor_unreadable",
            "handovers", "compliance")
    doc = report_json(db, capsys, "safety", *args)
    assert [tuple(g[k] for k in keys) for g in doc["groups"]] == [
        ("E", 3, 0, 1, 1, 1, 1, 0, 0.5), ("D", 3, 1, 0, 0, 0, 0, 2, 1.0)]
    doc = report_json(db, capsys, "safety", "--by", "shift", *args)
    night = next(g for g in doc["groups"] if g["group"] == "2026-10-24/night")
    assert tuple(night[k] for k in keys[1:]) == (2, 0, 0, 0, 0, 1, 1, None)
    assert sorted(g["group"] for g in doc["groups"]) == ["2026-10-24/night", "2026-10-25/day", "2026-10-25/late"]


# ---- units ---------------------------------------------------------------------------------

def test_units_offline_gaps_skew_backlog_faults(db, capsys):
    u = Units()
    t0 = ms("2026-11-02T08:00:00Z")
    lines = []
    for unit, seat, fw in (("u-A", "A", "0.1.0"), ("u-B", "B", "0.1.1")):
        lines.append(line(status_point({"v": 1, "site": "hq", "unit": unit, "state": "online", "ts": t0, "boot": 1,
                                        "fw": fw, "seat": seat}, t0)))
    # u-B goes offline at 12:00Z (a Last Will has no ts: stored at receive time).
    lines.append(line(status_point({"v": 1, "site": "hq", "unit": "u-B", "state": "offline"},
                                   ms("2026-11-02T12:00:00Z"))))
    for hour, skew_a, depth_b in ((9, 120, 0), (10, -3000, 40), (11, 80, 7)):
        ts = ms(f"2026-11-02T{hour:02d}:00:00Z")
        for unit, skew, depth in (("u-A", skew_a, 0), ("u-B", 10, depth_b)):
            hb = {"v": 1, "site": "hq", "unit": unit, "boot": 1, "ts": ts, "uptime_s": 1, "heap_free": 1,
                  "journal_depth": depth, "dropped": 0, "acked": 1}
            lines.append(line(heartbeat_point(hb, ts + skew)))
    lines.append(line(gap_point("hq", "u-A", 5, 7, ms("2026-11-02T10:30:00Z"))))
    lines.append(line(gap_point("hq", "u-A", 20, 20, ms("2026-11-02T11:30:00Z"))))
    db.write_lines(lines)
    write(db, [u.event("selftest", "A", "2026-11-02T13:00:00Z", ok=False, checks={"ring": "stuck"},
                       faults=["ring_stuck"]),
               u.event("selftest", "B", "2026-11-02T07:00:00Z", ok=True, checks={}, faults=[]),
               u.call("A", "2026-11-02T13:30:00Z", answer_ms=3000)])
    doc = report_json(db, capsys, "units", "--from", "2026-11-02", "--tz", "UTC")
    assert doc["offline"] == 1 and doc["firmware"] == {"0.1.0": 1, "0.1.1": 1}
    b, a = doc["units"]  # offline first
    assert (b["unit"], b["offline"], b["state_since_ms"]) == ("u-B", True, ms("2026-11-02T12:00:00Z"))
    assert b["last_seen_ms"] == ms("2026-11-02T12:00:00Z") and b["journal_max"] == 40 and b["journal_last"] == 7
    assert (a["unit"], a["seat"], a["state"], a["lost_events"]) == ("u-A", "A", "online", 4)  # 3 + 1 lost
    assert a["last_seen_ms"] == ms("2026-11-02T13:30:00Z")  # its last event, after the last heartbeat
    assert (a["skew_last_ms"], a["skew_worst_ms"]) == (80, -3000)
    assert (a["selftests"], a["selftest_faults"], a["last_faults"]) == (1, 1, "ring_stuck")
    code, out, err = report(db, capsys, "units", "--from", "2026-11-02", "--tz", "UTC")
    assert code == 0 and "OFFLINE u-B (seat B) since 11-02 12:00" in out
    assert all(len(row) <= 80 for row in out.splitlines())


def test_units_read_events_stored_with_the_old_shift_tag(db, capsys):
    # u-A's events stored before the shift label became a field, u-B's after: both seen, with their seats.
    from seatmon.report.oldschema import old_event_line

    u = Units()
    db.write_lines([old_event_line(u.event("selftest", "A", "2026-11-02T06:00:00Z", "2026-11-02/day", ok=False,
                                           checks={"ring": "stuck"}, faults=["ring_stuck"])),
                    old_event_line(u.call("A", "2026-11-02T09:00:00Z", answer_ms=3000, shift="2026-11-02/day"))])
    write(db, [u.call("B", "2026-11-02T10:00:00Z", answer_ms=3000, shift="2026-11-02/day")])
    doc = report_json(db, capsys, "units", "--from", "2026-11-02", "--tz", "UTC")
    rows = {x["unit"]: x for x in doc["units"]}
    assert (rows["u-A"]["seat"], rows["u-A"]["last_seen_ms"]) == ("A", ms("2026-11-02T09:00:00Z"))
    assert (rows["u-A"]["selftests"], rows["u-A"]["selftest_faults"], rows["u-A"]["last_faults"]) == (1, 1,
                                                                                                      "ring_stuck")
    assert (rows["u-B"]["seat"], rows["u-B"]["last_seen_ms"]) == ("B", ms("2026-11-02T10:00:00Z"))


# ---- errors and empty ranges ---------------------------------------------------------------

def one_line_error(code, out, err, expected_code, *needles):
    assert code == expected_code and out == ""
    lines = [x for x in err.splitlines() if "note:" not in x]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]


def test_clear_errors(db, capsys):
    write(db, seat_calls())
    one_line_error(*report(db, capsys, "answers", "--from", "2026-11-05", "--to", "2026-11-01", "--tz", "UTC"),
                   2, "bad date range", "2026-11-05")
    one_line_error(*report(db, capsys, "answers", "--from", "2026-11-31", "--tz", "UTC"), 2, "--from", "YYYY-MM-DD")
    one_line_error(*report(db, capsys, "answers", "--from", "2026-11-02", "--seat", "Z-9", "--tz", "UTC"),
                   2, "unknown seat 'Z-9'")
    one_line_error(*report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "Mars/Olympus"),
                   2, "--tz: unknown time zone")
    code = cli(["report", "answers", "--from", "2026-11-02", "--tz", "UTC",
                "--influx", f"http://127.0.0.1:{free_port()}", "--db", "x"])
    one_line_error(code, *capsys.readouterr(), 1, "unreachable")
    code = cli(["report", "answers", "--from", "2026-11-02", "--tz", "UTC", "--influx", db.url, "--db", "nope_db"])
    one_line_error(code, *capsys.readouterr(), 1, "database 'nope_db' not found")


@pytest.mark.parametrize("args, needles", [
    (("answers", "--from", "2026-13-01"), ("--from", "'2026-13-01'", "YYYY-MM-DD")),
    (("answers", "--from", "2026-11-02", "--to", "2026-11-31"), ("--to", "'2026-11-31'")),
    (("safety", "--from", "2026-11-05", "--to", "2026-11-01"), ("bad date range", "--from 2026-11-05")),
    (("units", "--from", "2026-11-02", "--tz", "Europe/Berlim"), ("--tz", "'Europe/Berlim'")),
    (("monthly", "--month", "2026-13", "--out", "m.html"), ("--month", "'2026-13'")),
    (("monthly", "--month", "2026-11", "--out", "m.txt"), ("--out FILE.html",)),
    (("monthly", "--month", "2026-11", "--out", "m.html", "--tz", "Mars/Olympus"), ("--tz", "Mars/Olympus")),
    (("answers", "--from", "2026-11-02", "--timeout", "0"), ("--timeout", "'0'")),
    (("answers", "--from", "2026-11-02", "--timeout", "soon"), ("--timeout", "'soon'")),
    (("answers", "--from", "2026-11-02", "--seat", "A 01"), ("--seat", "'A 01'")),
    (("safety", "--from", "2026-11-02", "--site", "h/q"), ("--site", "'h/q'")),
])
def test_options_are_checked_before_influxdb_is_contacted(capsys, tmp_path, monkeypatch, args, needles):
    # Nothing listens on this port: an error about InfluxDB would mean it was asked first.
    monkeypatch.chdir(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    if "--tz" not in args:
        args = args + ("--tz", "UTC")
    code = cli(["report", *args, "--influx", dead, "--db", "x"])
    one_line_error(code, *capsys.readouterr(), 2, *needles)
    assert "InfluxDB" not in capsys.readouterr().err and not (tmp_path / "m.html").exists()


def test_bad_influx_url_and_zone_from_the_environment(capsys, monkeypatch):
    # host:port without a scheme means http://host:port (seatmon/options.py): here nothing answers.
    port = free_port()
    code = cli(["report", "answers", "--from", "2026-11-02", "--tz", "UTC", "--influx", f"127.0.0.1:{port}"])
    one_line_error(code, *capsys.readouterr(), 1, f"http://127.0.0.1:{port}")
    with pytest.raises(SystemExit) as exit_:
        cli(["report", "answers", "--from", "2026-11-02", "--tz", "UTC", "--influx", "ftp://127.0.0.1:8086"])
    out, err = capsys.readouterr()
    one_line_error(exit_.value.code, out, err, 2, "--influx", "'ftp://127.0.0.1:8086'")
    monkeypatch.setenv("SEATMON_TZ", "Europe/Berlim")
    code = cli(["report", "answers", "--from", "2026-11-02", "--influx", f"http://127.0.0.1:{free_port()}"])
    one_line_error(code, *capsys.readouterr(), 2, "SEATMON_TZ", "'Europe/Berlim'")


def test_empty_range_says_so(db, capsys):
    write(db, seat_calls())
    for kind in ("answers", "safety", "units"):
        code, out, err = report(db, capsys, kind, "--from", "2025-01-01", "--to", "2025-01-31", "--tz", "UTC")
        assert code == 4 and out == "" and "nothing to report" in err and "2025-01-01 to 2025-01-31" in err


def test_zone_defaults_to_utc_and_says_so(db, capsys, monkeypatch):
    write(db, seat_calls())
    monkeypatch.delenv("SEATMON_TZ", raising=False)
    code, out, err = report(db, capsys, "answers", "--from", "2026-11-02", "--format", "json")
    assert code == 0 and "times are in UTC" in err and json.loads(out)["tz"] == "UTC"
    monkeypatch.setenv("SEATMON_TZ", "Asia/Shanghai")
    monkeypatch.setenv("SEATMON_INFLUX_URL", db.url)
    monkeypatch.setenv("SEATMON_INFLUX_DB", db.database)
    assert cli(["report", "answers", "--from", "2026-11-02", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["tz"] == "Asia/Shanghai" and err == ""


def test_html_format_of_a_single_report(db, capsys):
    write(db, seat_calls())
    code, out, err = report(db, capsys, "answers", "--from", "2026-11-02", "--tz", "UTC", "--format", "html")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and "<table>" in out and "<td>80.0%</td>" in out
    assert "<script" not in out


def test_tables_fit_80_columns_without_cutting_labels(db, capsys):
    u = Units()
    write(db, berlin_calls() + [
        u.event("shift_end", "A-01", "2026-10-25T05:00:00Z", "2026-10-24/night", equipment="on", action="cut",
                idle_ms=60000)])
    for args in (("answers", "--by", "hour"), ("answers", "--by", "day"), ("safety", "--by", "shift-seat"),
                 ("units",)):
        code, out, err = report(db, capsys, *args, "--from", "2026-10-24", "--to", "2026-10-26", "--tz",
                                "Europe/Berlin", "--site", "hq")
        assert code == 0, err
        assert max(len(row) for row in out.splitlines()) <= 80, out
    assert "2026-10-24/night A-01 " in out or "u-A-01" in out
    code, out, err = report(db, capsys, "answers", "--by", "hour", "--from", "2026-10-25", "--tz", "Europe/Berlin")
    assert "2026-10-25 02:00 CEST " in out and "2026-10-25 02:00 CET " in out
    code, out, err = report(db, capsys, "safety", "--by", "shift-seat", "--from", "2026-10-25", "--tz", "Europe/Berlin")
    assert "2026-10-24/night A-01 " in out


def test_handovers_and_unreadable_sensors_do_not_count_against_a_seat():
    from seatmon.report.safety import SafetyRow

    # 6 shift ends: 2 switched off in time, 1 left on (cut), 2 handovers, 1 unreadable sensor.
    row = SafetyRow("S-001", shift_ends=6, off_in_time=2, cut=1, handovers=2, sensor_unreadable=1)
    assert row.left_on == 1 and row.compliance == 2 / 3
    assert SafetyRow("S-002", shift_ends=3, handovers=3).compliance is None  # nothing was checked


def test_which_limit_each_late_call_went_past(db, capsys):
    """The split of late and unanswered calls by the limit that decided, as
    the units store it (`exceeded`); calls from units that did not send it
    count in no column, and a call in time in none."""
    u = Units()
    ev = [
        u.call("A", "2026-11-03T09:00:00Z", answer_ms=6000, limit_rings=3),  # in time
        u.call("A", "2026-11-03T09:01:00Z", answer_ms=10500, limit_rings=3, exceeded="time"),
        u.event("call", "A", "2026-11-03T09:02:00Z", outcome="answered", rings=4, ring_ms=9400, answer_ms=9400,
                within_limit=False, limit_ms=10000, limit_rings=3, exceeded="rings",  # UK: 4th ring at 9 s
                apology_prompted=True),
        u.call("B", "2026-11-03T09:03:00Z", answer_ms=15500, limit_rings=3, exceeded="both"),
        u.call("B", "2026-11-03T09:04:00Z", outcome="missed", ring_ms=31000, limit_rings=3, exceeded="both"),
        u.call("B", "2026-11-03T09:05:00Z", answer_ms=12000),  # an older unit: no limit_rings, no exceeded
    ]
    write(db, ev)
    doc = report_json(db, capsys, "answers", "--from", "2026-11-03", "--tz", "UTC")
    a, b = doc["groups"]
    assert (a["exceeded_time"], a["exceeded_rings"], a["exceeded_both"]) == (1, 1, 0)
    assert (b["exceeded_time"], b["exceeded_rings"], b["exceeded_both"]) == (0, 0, 2)
    t = doc["total"]
    assert (t["exceeded_time"], t["exceeded_rings"], t["exceeded_both"]) == (1, 1, 2)
    code, out, _ = report(db, capsys, "answers", "--from", "2026-11-03", "--tz", "UTC")
    assert code == 0 and "limit gone past (late or unanswered): 10 s only 1, rings only 1, both 2" in out
