"""Roll-ups (collector/rollup.py): pure, recomputed from every row of a key,
so replays, late rows and several writers end in the same points."""

import random
from datetime import datetime, timezone

from collector import rollup as ru

T0 = int(datetime(2031, 3, 29, 22, 50, tzinfo=timezone.utc).timestamp() * 1000)  # Berlin: DST night


def call(ts, outcome="answered", answer_ms=4000, ring_ms=4000, within=True, seat="S1", shift="2031-03-29/night",
         **extra):
    row = {"time": ts, "site": "hq", "seat": seat, "shift": shift, "outcome": outcome, "ring_ms": ring_ms,
           "within_limit": within, "clock": "ntp"}
    if outcome == "answered":
        row["answer_ms"] = answer_ms
    row.update(extra)
    return row


def test_figures_of_one_interval():
    rows = [call(T0, answer_ms=3000, talk_ms=60000, hung_up_first="caller"),
            call(T0 + 1000, answer_ms=12000, within=False, exceeded="time", hung_up_first="agent"),
            call(T0 + 2000, outcome="abandoned", ring_ms=3000, within=False),
            call(T0 + 3000, outcome="missed", ring_ms=30000, within=False, exceeded="both", clock="rtc")]
    [(key, r)] = ru.rollup_15m(rows, [{"time": T0 + 5, "site": "hq", "seat": "S1", "shift": "2031-03-29/night",
                                       "talk_ms": 9000, "hung_up_first": "agent"}]).items()
    assert key == ("hq", "S1", "2031-03-29/night", ru.interval_start(T0))
    assert (r.calls, r.answered, r.timely, r.late, r.missed, r.abandoned) == (4, 2, 1, 1, 1, 1)
    assert (r.answer_sum, r.answer_max, r.talk_n, r.talk_sum) == (15000, 12000, 1, 60000)
    assert (r.short_n, r.short_sum, r.long_n, r.long_sum) == (1, 3000, 1, 30000)
    assert (r.unsynced, r.exceeded_time, r.exceeded_both, r.exceeded_rings) == (1, 1, 1, 0)
    assert (r.hangup_known, r.agent_first, r.outgoing, r.out_talk_sum) == (3, 2, 1, 9000)
    assert r.hist == {30: 1, 120: 1}


def test_recomputing_is_idempotent_and_order_free():
    rng = random.Random(7)
    rows = [call(T0 + rng.randrange(0, 6 * 3600 * 1000), answer_ms=rng.randrange(500, 20000),
                 seat=rng.choice("AB")) for _ in range(300)]
    first = ru.lines_15m(ru.rollup_15m(rows))
    shuffled = rows[:]
    rng.shuffle(shuffled)
    assert sorted(ru.lines_15m(ru.rollup_15m(shuffled))) == sorted(first)
    days = ru.rollup_day(ru.rollup_15m(rows), "Europe/Berlin")
    total = ru.Rollup()
    for r in days.values():
        total.merge(r)
    assert total.calls == 300 and total.answer_sum == sum(r["answer_ms"] for r in rows)
    stored = ru.Rollup.from_fields(dict(total.as_fields()))
    assert stored == total


def test_night_shift_two_instances_on_one_day_stay_apart():
    zone_day = ru.rollup_day(ru.rollup_15m([
        call(T0 - 21 * 3600 * 1000, shift="2031-03-28/night"),  # 02:50 on the 29th: the night shift of the 28th
        call(T0 - 30 * 60 * 1000, shift="2031-03-29/night")]), "Europe/Berlin")  # 23:20 on the 29th
    lines = ru.lines_day(zone_day, "Europe/Berlin")
    assert len(lines) == 2 and len({line.split(" ")[0] for line in lines}) == 2
    assert any(",lag=1," in line for line in lines) and any(",lag=0," in line for line in lines)


def test_two_labels_of_one_shift_name_in_one_quarter_hour_stay_apart():
    # A 24-hour shift `all`: 00:05 still belongs to yesterday's (overtime),
    # 00:10 to today's. Same seat, shift name and interval: the series must differ.
    start = int(datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc).timestamp() * 1000)
    lines = ru.lines_15m(ru.rollup_15m([call(start + 5 * 60000, shift="2026-11-01/all"),
                                        call(start + 10 * 60000, shift="2026-11-02/all")]))
    assert len(lines) == 2
    assert len({(line.split(" ")[0], line.split(" ")[-1]) for line in lines}) == 2


def test_first_and_last_row_times_merge_as_min_and_max():
    a = ru.rollup_15m([call(T0 + 60000), call(T0 + 120000)], [call(T0 + 30000, outcome="outgoing")])
    b = ru.rollup_15m([call(T0 + 900000 + 5000)])
    [ra], [rb] = a.values(), b.values()
    assert (ra.first_ms, ra.last_ms) == (T0 + 30000, T0 + 120000)
    day = ru.Rollup()
    day.merge(ru.Rollup.from_fields(ra.as_fields()))
    day.merge(rb)
    assert (day.first_ms, day.last_ms) == (T0 + 30000, T0 + 905000)
    # A point stored before these fields existed: the times of a whole holding it are unknown (0).
    old = {k: v for k, v in ra.as_fields().items() if k not in ("first_ms", "last_ms")}
    assert ru.Rollup.from_fields(old).first_ms == 0
    mixed = ru.Rollup()
    mixed.merge(rb)
    mixed.merge(ru.Rollup.from_fields(old))
    assert (mixed.first_ms, mixed.last_ms, mixed.calls) == (0, 0, 3)


def test_histogram_percentiles_within_half_a_bin():
    rng = random.Random(3)
    values = [int(rng.lognormvariate(8.5, 0.6)) for _ in range(5001)]
    hist = {}
    for v in values:
        hist[ru.hist_bin(v)] = hist.get(ru.hist_bin(v), 0) + 1
    hist = ru.hist_decode(ru.hist_encode(hist))
    for pct in (50, 90, 99):
        assert abs(ru.hist_percentile(hist, pct) - ru.exact_percentile(values, pct)) <= ru.HIST_BIN_MS // 2
    assert abs(ru.hist_median(hist) - ru.exact_median(values)) <= ru.HIST_BIN_MS // 2


def test_exact_order_statistics_match_influxdb():
    # The hand-computed cases of tests/test_reports.py.
    nine = [2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 12000]
    assert (ru.exact_median(nine), ru.exact_percentile(nine, 90)) == (6000, 9000)
    twelve = [2, 3, 4, 5, 5, 6, 7, 8, 9, 12, 15, 25]
    assert (ru.exact_median(twelve), ru.exact_percentile(twelve, 90)) == (6.5, 15)
    assert ru.exact_percentile([4, 11], 90) == 11 and ru.exact_median([]) is None


def _event(seq, ts, seat="S1", outcome="answered", answer_ms=4000, shift="2031-03-29/night"):
    from shared import protocol as p

    msg = {"v": 1, "kind": "call", "site": "hq", "unit": "u-" + seat, "seat": seat, "boot": 1, "seq": seq,
           "ts": ts, "clock": "ntp", "shift": shift, "outcome": outcome, "rings": 2, "limit_ms": 10000,
           "ring_ms": answer_ms if outcome == "answered" else 12000,
           "within_limit": outcome == "answered" and answer_ms <= 10000,
           "apology_prompted": False}
    if outcome == "answered":
        msg["answer_ms"] = answer_ms
    return p.validate_event(msg)


def test_stored_roll_ups_survive_replays_and_late_events(influxdb, unique_name):
    from collector.influx import InfluxV1
    from collector.rollstore import store_events

    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    first = [_event(1, T0 - 3600_000, answer_ms=3000), _event(2, T0 - 3500_000, outcome="missed"),
             _event(1, T0 - 3400_000, seat="S2", answer_ms=11000)]
    store_events(db, first, "Europe/Berlin")
    store_events(db, first[:2], "Europe/Berlin")  # redelivered: changes nothing
    store_events(db, [_event(3, T0 - 3590_000, answer_ms=5000)], "Europe/Berlin")  # late, same interval

    def day_sums():
        rows = db.query("SELECT sum(calls), sum(answered), sum(answer_sum) FROM rollup_day GROUP BY seat")
        return {s["tags"]["seat"]: s["values"][0][1:] for s in rows[0]["series"]}

    assert day_sums() == {"S1": [3, 2, 8000], "S2": [1, 1, 11000]}
    q = "SELECT calls, answer_hist, shift FROM rollup_15m WHERE seat = 'S1'"
    [series] = db.query(q)[0]["series"]
    assert [v[1:] for v in series["values"]] == [[3, "30:1,50:1", "2031-03-29/night"]]


def test_neighbouring_intervals_are_read_in_one_window():
    from collector.rollstore import _windows

    q = ru.INTERVAL_MS
    keys = {("hq", "A", 0), ("hq", "B", q), ("hq", "A", 2 * q),  # contiguous: one window, both seats
            ("hq", "A", 2 * q + 2 * 3600_000),  # more than an hour later: a new window
            ("b", "A", 0)}
    keys |= {("day", "X", i * q) for i in range(100)}  # 25 hours: split at a day
    assert _windows(keys) == {("hq", 0, 3 * q): {"A", "B"}, ("hq", 2 * q + 7200_000, 3 * q + 7200_000): {"A"},
                              ("b", 0, q): {"A"}, ("day", 0, 96 * q): {"X"}, ("day", 96 * q, 100 * q): {"X"}}
