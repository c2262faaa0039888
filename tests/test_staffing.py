"""Busy, idle and staffing (`seatmon report staffing`) on a real InfluxDB.

The Erlang C figures are worked out by hand in the comments (literal numbers),
and a generated month is checked against an independent computation from the
generated events themselves, with a textbook Erlang C written out here.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector import rollstore
from collector.influx import InfluxV1
from seatmon.cli import main as cli
from seatmon.report.query import make_scope
from seatmon.report.staffing import Target, erlang_c_seats
from tests.test_reports import Units, ms, report, write
from rig.gendata import Plan, events, load

# ---- Erlang C by hand ----------------------------------------------------------------------

# 20 calls in 10 minutes, 60 s each: load A = 20 x 1 min / 10 min = 2 Erlangs.
# C(N, A) = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A))
# N = 3: A^3/3! * 3/1 = 8/6 * 3 = 4; sum = 1 + 2 + 2 = 5; C = 4 / 9 = 0.444444
#        SL(20 s) = 1 - C * exp(-(N - A) * 20/60) = 1 - 4/9 * exp(-1/3) = 1 - 0.444444 * 0.716531 = 0.681542
# N = 4: A^4/4! * 4/2 = 16/24 * 2 = 4/3; sum = 1 + 2 + 2 + 8/6 = 19/3; C = (4/3) / (23/3) = 4/23 = 0.173913
#        SL(20 s) = 1 - 4/23 * exp(-2/3) = 1 - 0.173913 * 0.513417 = 0.910711
# So 90 % within 20 s needs 4 seats, 65 % needs 3, 95 % more than 4.


def test_erlang_c_library_matches_hand_computation():
    from pyworkforce.queuing import ErlangC
    ec = ErlangC(transactions=20, aht=1, asa=20 / 60, interval=10)
    assert ec.intensity == pytest.approx(2.0)
    assert ec.waiting_probability(3) == pytest.approx(4 / 9, abs=1e-9)
    assert ec.service_level(3) == pytest.approx(0.681542, abs=1e-6)
    assert ec.waiting_probability(4) == pytest.approx(4 / 23, abs=1e-9)
    assert ec.service_level(4) == pytest.approx(0.910711, abs=1e-6)
    assert erlang_c_seats(20, 60_000, 600_000, Target(0.9, 20_000)) == 4
    assert erlang_c_seats(20, 60_000, 600_000, Target(0.65, 20_000)) == 3
    assert erlang_c_seats(20, 60_000, 600_000, Target(0.95, 20_000)) == 5
    # At most 40 % occupancy: A / N <= 0.4 -> N >= 5.
    assert erlang_c_seats(20, 60_000, 600_000, Target(0.65, 20_000, 0.4)) == 5
    assert erlang_c_seats(0, None, 600_000, Target()) == 0


# ---- the DST day and a night shift across midnight, by hand ---------------------------------

def dst_day():
    """Europe/Berlin, Sunday 2026-10-25: 02:00-03:00 happens twice (CEST
    00:00Z-01:00Z, then CET 01:00Z-02:00Z); the local day runs 2026-10-24
    22:00Z to 2026-10-25 23:00Z (25 h)."""
    u = Units()
    n24, day, n25 = "2026-10-24/night", "2026-10-25/day", "2026-10-25/night"
    ok = dict(ok=True, checks={"hook": "ok", "ring": "ok"}, faults=[])
    off = dict(equipment="off", action="none", idle_ms=60000)
    return [
        # night shift from the 24th 23:00 CEST (21:00Z): A-01 to 07:00 CET (06:00Z), A-02 leaves at 03:30Z
        u.event("selftest", "A-01", "2026-10-24T21:00:00Z", n24, **ok),
        u.event("selftest", "A-02", "2026-10-24T21:00:00Z", n24, **ok),
        u.call("A-01", "2026-10-25T00:10:00Z", 4000, shift=n24, talk_ms=600000),  # 02:10 CEST
        u.call("A-02", "2026-10-25T00:20:00Z", 6000, shift=n24, talk_ms=300000),
        u.call("A-01", "2026-10-25T00:40:00Z", outcome="missed", ring_ms=30000, shift=n24),
        u.call("A-01", "2026-10-25T01:05:00Z", 3000, shift=n24, talk_ms=900000),  # 02:05 CET
        u.event("outgoing", "A-02", "2026-10-25T01:30:00Z", n24, talk_ms=120000),
        u.event("shift_end", "A-02", "2026-10-25T03:30:00Z", n24, **off),
        u.event("shift_end", "A-01", "2026-10-25T06:00:00Z", n24, **off),
        # day shift 07:00-15:00 CET (06:00Z-14:00Z), one call
        u.event("selftest", "A-01", "2026-10-25T06:00:00Z", day, **ok),
        u.call("A-01", "2026-10-25T06:30:00Z", 2000, shift=day, talk_ms=60000),
        u.event("shift_end", "A-01", "2026-10-25T14:00:00Z", day, **off),
        # the next night shift starts 23:00 CET (22:00Z) and ends after the range
        u.event("selftest", "A-01", "2026-10-25T22:00:00Z", n25, **ok),
        u.call("A-01", "2026-10-25T22:30:00Z", 5000, shift=n25, talk_ms=240000),
        u.event("shift_end", "A-01", "2026-10-26T06:00:00Z", n25, **off),
    ]


@pytest.fixture
def db(influxdb, unique_name):
    client = InfluxV1(influxdb.url, unique_name)
    client.create_database()
    return client


def staffing_json(db, capsys, *args):
    code, out, err = report(db, capsys, "staffing", "--format", "json", "--tz", "Europe/Berlin", *args)
    assert code == 0, err
    return json.loads(out)


def test_dst_day_intervals_by_hand(db, capsys):
    write(db, dst_day())
    doc = staffing_json(db, capsys, "--from", "2026-10-25", "--interval", "60")
    rows = {g["group"]: g for g in doc["groups"]}
    # 02:00 CEST: 3 calls offered, 2 answered, talk 600 + 300 s = 900 s, AHT 450 s; seats
    # staffed the whole hour: 2 h. busy 0.25 h, idle 1.75 h, occupancy 0.125.
    # Erlang C: A = 3 x 450 / 3600 = 0.375. N = 1: C = A = 0.375, SL(10 s) = 1 - 0.375 * exp(-0.625 * 10/450)
    # = 1 - 0.375 * 0.986207 = 0.630172 < 0.9. N = 2: A^2/2 * 2/1.625 = 0.086538; C = 0.086538 / (1.375 +
    # 0.086538) = 0.059211; SL = 1 - 0.059211 * exp(-1.625 * 10/450) = 1 - 0.059211 * 0.964533 = 0.942889: 2.
    cest = rows["2026-10-25 02:00 CEST"]
    assert (cest["offered"], cest["answered"], cest["outgoing"], cest["talk_ms"]) == (3, 2, 0, 900000)
    assert (cest["aht_ms"], cest["staffed_ms"], cest["busy_ms"], cest["idle_ms"]) == (450000, 7200000, 900000,
                                                                                      6300000)
    assert cest["occupancy"] == pytest.approx(0.125)
    assert cest["load_erlangs"] == pytest.approx(0.375)
    assert (cest["seats_staffed"], cest["seats_needed"], cest["shortfall"]) == (2.0, 2, 0.0)
    # 02:00 CET: 1 call, talk 900 s, A = 0.25. N = 1: SL = 1 - 0.25 * exp(-0.75 * 10/900) = 0.752075; N = 2:
    # A^2/2 * 2/1.75 = 0.035714; C = 0.035714 / 1.285714 = 0.027778; SL = 1 - 0.027778 * exp(-1.75 * 10/900)
    # = 0.972757: 2 seats, plus the outgoing call's 120 s, one whole seat: 3 needed, 2 staffed, 1 short.
    cet = rows["2026-10-25 02:00 CET"]
    assert (cet["offered"], cet["outgoing"], cet["busy_ms"], cet["staffed_ms"]) == (1, 1, 1020000, 7200000)
    assert (cet["seats_needed"], cet["shortfall"]) == (3, 1.0)
    # A-02 left at 03:30Z (04:30 CET): A-01's hour and half an hour of A-02's in that interval.
    assert rows["2026-10-25 04:00 CET"]["staffed_ms"] == 5400000
    assert rows["2026-10-25 04:00 CET"]["seats_needed"] == 0
    # The day: 25 hours. Staffed: A-01 night 22:00Z-06:00Z 8 h, A-02 22:00Z-03:30Z 5.5 h, A-01 day 8 h,
    # A-01 next night 22:00Z-23:00Z 1 h: 22.5 h = 81 000 000 ms, 0.9 seats over 25 h. 6 offered, 5 answered,
    # talk 600 + 300 + 900 + 60 + 240 s = 2100 s, outgoing 120 s.
    t = doc["total"]
    assert (t["offered"], t["answered"], t["outgoing"], t["talk_ms"], t["outgoing_ms"]) == (6, 5, 1, 2100000, 120000)
    assert (t["length_ms"], t["staffed_ms"], t["idle_ms"]) == (90000000, 81000000, 81000000 - 2220000)
    assert t["seats_staffed"] == pytest.approx(0.9) and t["seats_needed"] == 3 and t["shortfall"] == 1.0
    assert len(doc["groups"]) == 17  # 22:00Z-14:00Z and 22:00Z-23:00Z: nobody staffed 14:00Z-22:00Z
    day = staffing_json(db, capsys, "--from", "2026-10-25", "--interval", "15", "--by", "day")["groups"]
    assert [g["group"] for g in day] == ["2026-10-25"] and day[0]["length_ms"] == 90000000
    for key in ("offered", "answered", "outgoing", "talk_ms", "outgoing_ms", "staffed_ms", "idle_ms"):
        assert day[0][key] == t[key] == sum(g[key] for g in doc["groups"]), key


def test_night_shift_across_midnight_by_hand(db, capsys):
    write(db, dst_day())
    doc = staffing_json(db, capsys, "--from", "2026-10-25", "--interval", "60", "--by", "shift")
    rows = {g["group"]: g for g in doc["groups"]}
    assert list(rows) == ["2026-10-24/night", "2026-10-25/day", "2026-10-25/night"]
    # The night shift that started on the 24th, inside the 25th: 22:00Z-06:00Z (8 h, across midnight and the
    # repeated hour), A-01 8 h + A-02 5.5 h = 13.5 h staffed; 4 offered, 3 answered, talk 1800 s, AHT 600 s;
    # its busiest hour (02:00 CET) needs 3 seats with 2 staffed.
    n = rows["2026-10-24/night"]
    assert (n["start_ms"], n["length_ms"], n["staffed_ms"]) == (ms("2026-10-24T22:00:00Z"), 28800000, 48600000)
    assert (n["offered"], n["answered"], n["talk_ms"], n["aht_ms"], n["outgoing_ms"]) == (4, 3, 1800000, 600000,
                                                                                        120000)
    assert n["seats_staffed"] == pytest.approx(13.5 / 8) and n["seats_needed"] == 3 and n["shortfall"] == 1.0
    # Day shift: one call of 60 s in the 06:00Z hour: A = 1/60; N = 1: SL = 1 - (1/60) * exp(-(59/60) * 10/60)
    # = 1 - 0.016667 * 0.848834 = 0.985853: 1 seat.
    d = rows["2026-10-25/day"]
    assert (d["length_ms"], d["staffed_ms"], d["seats_needed"], d["shortfall"]) == (28800000, 28800000, 1, 0.0)
    # The next night shift, cut at the end of the range: 1 h.
    assert rows["2026-10-25/night"]["staffed_ms"] == 3600000 and rows["2026-10-25/night"]["seats_needed"] == 1
    # The shifts' sums are the day's (every call here carries a shift label).
    t = doc["total"]
    for key in ("offered", "answered", "outgoing", "talk_ms", "staffed_ms"):
        assert sum(g[key] for g in doc["groups"]) == t[key], key


def test_data_stored_with_the_old_shift_tag_reads_the_same(db, capsys):
    # The DST day stored as the collector stored it before the label became a field (no roll-ups):
    # the previous statements read it, with the same figures as above, and say so once.
    from seatmon.report.oldschema import old_event_line

    db.write_lines([old_event_line(e) for e in dst_day()])
    code, out, err = report(db, capsys, "staffing", "--format", "json", "--tz", "Europe/Berlin", "--from",
                            "2026-10-25", "--interval", "60", "--by", "shift")
    assert code == 0 and err.count("seatmon collect migrate") == 1
    rows = {g["group"]: g for g in json.loads(out)["groups"]}
    assert list(rows) == ["2026-10-24/night", "2026-10-25/day", "2026-10-25/night"]
    n = rows["2026-10-24/night"]
    assert (n["start_ms"], n["length_ms"], n["staffed_ms"]) == (ms("2026-10-24T22:00:00Z"), 28800000, 48600000)
    assert (n["offered"], n["answered"], n["talk_ms"], n["outgoing_ms"], n["seats_needed"]) == (
        4, 3, 1800000, 120000, 3)
    t = json.loads(out)["total"]
    assert (t["offered"], t["answered"], t["outgoing"], t["talk_ms"], t["staffed_ms"]) == (6, 5, 1, 2100000,
                                                                                        81000000)


def test_spans_reach_calls_outside_the_shift_checks_and_two_labels_in_one_quarter_hour(db):
    # A-01 took a call before its shift-start self-test and made one after its shift-end check; A-02 has
    # calls only; A-03 works a 24-hour shift `all`, so yesterday's and today's labels meet within one
    # quarter hour (00:00-00:15Z). Each span runs from the label's first to its last event.
    from seatmon.report.staffing import read

    u = Units()
    day, y_all, t_all = "2026-11-02/day", "2026-11-01/all", "2026-11-02/all"
    ok = dict(ok=True, checks={}, faults=[])
    write(db, [
        u.call("A-01", "2026-11-02T06:58:00Z", 3000, shift=day, talk_ms=1000),
        u.event("selftest", "A-01", "2026-11-02T07:00:30Z", day, **ok),
        u.call("A-01", "2026-11-02T08:00:00Z", 3000, shift=day, talk_ms=1000),
        u.event("shift_end", "A-01", "2026-11-02T15:00:00Z", day, equipment="off", action="none", idle_ms=1),
        u.event("outgoing", "A-01", "2026-11-02T15:05:00Z", day, talk_ms=1000),
        u.call("A-02", "2026-11-02T09:10:00Z", 3000, shift=day, talk_ms=1000),
        u.call("A-02", "2026-11-02T11:20:00Z", outcome="missed", ring_ms=30000, shift=day),
        u.call("A-03", "2026-11-01T00:20:00Z", 3000, shift=y_all, talk_ms=1000),
        u.call("A-03", "2026-11-02T00:05:00Z", 3000, shift=y_all, talk_ms=1000),
        u.call("A-03", "2026-11-02T00:10:00Z", 3000, shift=t_all, talk_ms=1000),
        u.call("A-03", "2026-11-02T23:50:00Z", 3000, shift=t_all, talk_ms=1000),
    ])
    scope = make_scope("2026-11-02", "2026-11-02", "UTC")
    assert read(db, scope, 15, False).seat_spans == {
        ("hq", "A-01", day): [ms("2026-11-02T06:58:00Z"), ms("2026-11-02T15:05:00Z")],
        ("hq", "A-02", day): [ms("2026-11-02T09:10:00Z"), ms("2026-11-02T11:20:00Z")],
        ("hq", "A-03", y_all): [ms("2026-11-01T00:20:00Z"), ms("2026-11-02T00:05:00Z")],
        ("hq", "A-03", t_all): [ms("2026-11-02T00:10:00Z"), ms("2026-11-02T23:50:00Z")]}
    # Roll-ups stored before they kept their first and last call times: day
    # ones (the spans come from the 15-minute ones' times), then both (from
    # the self-tests, shift-end checks and edge statements): the same.
    import re

    from collector import rollup as ru

    want = read(db, scope, 15, False)
    rows = db.query("SELECT * FROM rollup_15m")[0]["series"][0]
    r15 = {}
    for values in rows["values"]:
        row = dict(zip(rows["columns"], values))
        r15[(row["site"], row["seat"], row["shift"], row["time"])] = ru.Rollup.from_fields(row)
    old_lines = [re.sub(r",first_ms=\d+i,last_ms=\d+i", "", line)
                 for line in ru.lines_day(ru.rollup_day(r15, "UTC"), "UTC")]
    assert old_lines and all("first_ms" not in line for line in old_lines)
    db.query("DROP MEASUREMENT rollup_day", method="POST")
    db.write_lines(old_lines)
    got = read(db, scope, 15, False)
    assert (got.seat_spans, got.at, got.per_shift) == (want.seat_spans, want.at, want.per_shift)
    old_15m = [re.sub(r",first_ms=\d+i,last_ms=\d+i", "", line) for line in ru.lines_15m(r15)]
    assert old_15m and all("first_ms" not in line for line in old_15m)
    db.query("DROP MEASUREMENT rollup_15m", method="POST")
    db.write_lines(old_15m)
    got = read(db, scope, 15, False)
    assert (got.seat_spans, got.at, got.per_shift) == (want.seat_spans, want.at, want.per_shift)


def test_formats_and_bad_options(db, capsys):
    write(db, dst_day())
    code, out, err = report(db, capsys, "staffing", "--from", "2026-10-25", "--tz", "Europe/Berlin")
    assert code == 0, err
    assert all(len(x) <= 80 for x in out.splitlines())
    assert "needed" in out and "2026-10-25 02:00 CEST" in out and "2026-10-25 02:30 CET" in out
    code, out, err = report(db, capsys, "staffing", "--from", "2026-10-25", "--tz", "Europe/Berlin", "--format",
                            "csv", "--interval", "60")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[-1]["group"] == "total" and rows[-1]["offered"] == "6" and rows[-1]["staffed_ms"] == "81000000"
    assert rows[0]["start_ms"] == "2026-10-25 00:00:00"
    code, out, err = report(db, capsys, "staffing", "--from", "2026-10-25", "--tz", "Europe/Berlin", "--format",
                            "html", "--by", "shift")
    assert code == 0 and 'data-chart="staffing"' in out and "2026-10-24/night" in out
    code, out, err = report(db, capsys, "staffing", "--from", "2026-10-25", "--tz", "Europe/Berlin", "--format",
                            "html")
    # The whole interval label, never cut to 16 characters as on the terminal.
    assert code == 0 and "<td>2026-10-25 02:30 CET</td>" in out and "<td>2026-10-25 02:30 CEST</td>" in out
    for bad, what in ((["--interval", "20"], "--interval '20'"), (["--target", "100"], "--target '100'"),
                      (["--within", "x"], "--within 'x'"), (["--max-occupancy", "0"], "--max-occupancy '0'")):
        # checked before any server is contacted
        code = cli(["report", "staffing", "--from", "2026-10-25", "--tz", "UTC", "--influx", "http://127.0.0.1:9",
                    *bad])
        assert code == 2 and what in capsys.readouterr().err
    code, _out, err = report(db, capsys, "staffing", "--from", "2026-12-01", "--tz", "Europe/Berlin")
    assert code == 4 and "nothing to report" in err


# ---- a generated month with known talk times, against its own events ------------------------

PLAN = Plan(start=date(2026, 10, 1), days=31, seats=4, calls_per_seat_day=30, outgoing_per_seat_day=4,
            tz="Europe/Berlin", seed=11, heartbeat_hours=12, talk_ms=150000, outgoing_talk_ms=60000)
SPAN_KINDS = ("call", "outgoing", "selftest", "shift_end")


def textbook_seats(calls: int, aht_s: float, length_s: float, target: float, within_s: float) -> int:
    """Erlang C from its formula (Erlang B recursion), independent of the report."""
    if not calls:
        return 0
    a = calls * aht_s / length_s
    n = math.floor(a) + 1
    while True:
        b = 1.0
        for k in range(1, n + 1):
            b = a * b / (k + a * b)  # Erlang B
        c = n * b / (n - a * (1 - b))  # Erlang C
        if 1 - c * math.exp(-(n - a) * within_s / aht_s) >= target:
            return n
        n += 1


def hand_month(plan: Plan, step_ms: int):
    """Per interval start: [offered, answered, talk, outgoing ms, staffed ms] from the events."""
    tz = ZoneInfo(plan.tz)
    start = int(datetime.combine(plan.start, time(0), tz).timestamp() * 1000)
    end = int(datetime.combine(plan.start + timedelta(days=plan.days), time(0), tz).timestamp() * 1000)
    buckets: dict[int, list[int]] = {}
    spans: dict[tuple, list[int]] = {}
    for e in events(plan):
        if e["kind"] in SPAN_KINDS:
            s = spans.setdefault((e["seat"], e["shift"]), [e["ts"], e["ts"]])
            s[0], s[1] = min(s[0], e["ts"]), max(s[1], e["ts"])
        if not start <= e["ts"] < end:  # the last night's shift end, after the month
            continue
        b = buckets.setdefault(start + (e["ts"] - start) // step_ms * step_ms, [0, 0, 0, 0, 0])
        if e["kind"] == "call":
            b[0] += 1
            if e["outcome"] == "answered":
                b[1] += 1
                b[2] += e["talk_ms"]
        elif e["kind"] == "outgoing":
            b[3] += e["talk_ms"]
    for s0, s1 in spans.values():
        s0, s1 = max(s0, start), min(s1, end)
        for t in range(start, end, step_ms):
            if min(s1, t + step_ms) > max(s0, t):
                buckets.setdefault(t, [0, 0, 0, 0, 0])[4] += min(s1, t + step_ms) - max(s0, t)
    return buckets


@pytest.fixture(scope="module")
def month_db(influxdb):
    db = InfluxV1(influxdb.url, "t_staffing_month")
    db.query(f'DROP DATABASE "{db.database}"', method="POST")
    load(db, PLAN)
    # The roll-ups of the generated events, as the collector keeps them.
    rollstore.rebuild(db, ms("2026-09-30T00:00:00Z"), ms("2026-11-02T00:00:00Z"), PLAN.tz)
    return db


@pytest.mark.parametrize("minutes", [60, 30])
def test_generated_month_matches_hand_computation(month_db, capsys, minutes):
    doc = staffing_json(month_db, capsys, "--from", "2026-10-01", "--to", "2026-10-31", "--interval", str(minutes),
                        "--target", "80", "--within", "20")
    hand = hand_month(PLAN, minutes * 60000)
    got = {g["start_ms"]: g for g in doc["groups"]}
    assert sorted(got) == sorted(k for k, v in hand.items() if any(v))
    step = minutes * 60000
    for start, (offered, answered, talk, out_ms, staffed) in hand.items():
        g = got[start]
        assert (g["offered"], g["answered"], g["talk_ms"], g["outgoing_ms"], g["staffed_ms"]) == (
            offered, answered, talk, out_ms, staffed), g["group"]
        # Every answered call talks 150 s: the AHT is known wherever a call was answered.
        aht = 150 if answered else (doc["total"]["aht_ms"] / 1000)
        need = textbook_seats(offered, aht, step / 1000, 0.8, 20) + math.ceil(out_ms / step)
        assert g["seats_needed"] == need, g["group"]
    assert doc["total"]["aht_ms"] == 150000
    assert max(g["seats_needed"] for g in doc["groups"]) >= 2  # the busy hours need more than one seat
    # The interval report's sums equal the days', and the days' the month's.
    days = staffing_json(month_db, capsys, "--from", "2026-10-01", "--to", "2026-10-31", "--interval", str(minutes),
                         "--by", "day", "--target", "80", "--within", "20")
    assert len(days["groups"]) == 31
    for d in days["groups"]:
        inside = [g for g in doc["groups"] if g["group"].startswith(d["group"])]
        for key in ("offered", "answered", "talk_ms", "outgoing_ms", "staffed_ms", "idle_ms"):
            assert d[key] == sum(g[key] for g in inside), (d["group"], key)
        assert d["seats_needed"] == max(g["seats_needed"] for g in inside)
    dst = next(d for d in days["groups"] if d["group"] == "2026-10-25")
    assert dst["length_ms"] == 25 * 3600000
    for key in ("offered", "talk_ms", "staffed_ms"):
        assert sum(d[key] for d in days["groups"]) == doc["total"][key] == days["total"][key]
