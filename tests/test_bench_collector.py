"""The collector benchmark's counting: distinct events, duplicates and losses
apart (bench/bench_collector.py), with the real C clients and broker."""

from __future__ import annotations

import json

from bench.bench_collector import broker_ceiling, tally, write_payloads


def payload(unit: str, seq: int) -> bytes:
    return json.dumps({"unit": unit, "boot": 1, "seq": seq}).encode()


def test_tally_counts_distinct_events_and_keeps_duplicates_and_losses_apart():
    expected = {("u-1", 1, 1), ("u-1", 1, 2), ("u-1", 1, 3)}
    arrivals = [(1.0, payload("u-1", 1)), (2.0, payload("u-1", 2)), (3.0, b"bench-subscribed"),
                (4.0, payload("u-1", 1)), (5.0, payload("u-1", 2)), (6.0, payload("u-9", 1))]
    got = tally(arrivals, expected)
    # Six messages, five of them events: two distinct expected ones, two resent, one from elsewhere.
    assert got == {"received": 5, "distinct": 2, "duplicates": 2, "lost": 1, "unexpected": 1, "last_new_at": 2.0}


def test_c_client_ceiling_run_counts_every_distinct_event(mqtt_broker, tmp_path, unique_name):
    jobs, expected = write_payloads(tmp_path / "payloads", unique_name, 2, 300)
    run = broker_ceiling(mqtt_broker, tmp_path, jobs, expected, 0, site=unique_name)
    assert (run["distinct"], run["duplicates"], run["lost"], run["unexpected"]) == (600, 0, 0, 0)
    assert run["exit_codes"] == [0] and run["errors"] == []


def test_c_client_ceiling_run_reports_what_never_arrived(mqtt_broker, tmp_path, unique_name):
    jobs, expected = write_payloads(tmp_path / "payloads", unique_name, 1, 50)
    never_sent = {(f"u-{n:04d}", 1, 1) for n in range(2, 5)}
    run = broker_ceiling(mqtt_broker, tmp_path, jobs, expected | never_sent, 0, site=unique_name)
    assert (run["distinct"], run["lost"]) == (50, 3)
