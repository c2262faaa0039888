"""`seatmon collect migrate` and `seatmon collect rollup` against the real
InfluxDB: old-schema points (the `shift` tag) become current ones, nothing is
lost or doubled, an interrupted run is finished by the next, and the roll-ups
of the migrated range match a recomputation from the stored rows."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collector import migrate, rollstore
from collector import rollup as ru
from collector.influx import InfluxError, InfluxV1
from collector.schema import event_line, event_parts
from shared import protocol as p

ROOT = Path(__file__).resolve().parents[1]
T0 = int(datetime(2026, 3, 28, 21, 50, tzinfo=timezone.utc).timestamp() * 1000)  # Berlin: the DST night
H = 3600_000
ALL = ",".join(f'"{m}"' for m in migrate.OLD_KINDS)


def event(seq, ts, kind="call", seat="S1", shift="2026-03-28/night", **extra):
    msg = {"v": 1, "kind": kind, "site": "hq", "unit": "u-" + seat, "seat": seat, "boot": 1, "seq": seq, "ts": ts,
           "clock": "ntp"}
    if shift:
        msg["shift"] = shift
    if kind == "call":
        answered = seq % 3 != 0
        msg.update(outcome="answered" if answered else "missed", rings=2, limit_ms=10000,
                   ring_ms=2000 + seq * 300 if answered else 30000, within_limit=answered and seq % 5 != 0,
                   apology_prompted=False)
        if answered:
            msg.update(answer_ms=2000 + seq * 300, talk_ms=60000 + seq)
        if seq % 5 == 0 and answered:
            msg["exceeded"] = "time"
    elif kind == "outgoing":
        msg.update(talk_ms=1000 * seq, hung_up_first="agent")
    elif kind == "reminder":
        msg.update(pattern="missed", action="start")
    elif kind == "shift_end":
        msg.update(equipment="on", action="reminded", idle_ms=5)
    msg.update(extra)
    return p.validate_event(msg)


def old_line(msg: dict) -> str:
    """The line the collector wrote before the label became a field: the
    label as the tag `shift`, no `shift_name`, no field `shift`."""
    kind, tags, fields, ts = event_parts(msg)
    tags.pop("shift_name", None)
    label = fields.pop("shift", None)
    if label:
        tags["shift"] = label

    def f(v):
        if v is True or v is False:
            return "true" if v else "false"
        if isinstance(v, int):
            return f"{v}i"
        return '"' + str(v).replace('"', '\\"') + '"'

    head = kind + "".join(f",{k}={v}" for k, v in sorted(tags.items()))
    return f"{head} {','.join(f'{k}={f(v)}' for k, v in sorted(fields.items()))} {ts}"


def old_events() -> list[dict]:
    out = []
    seq = 0
    for day, label in ((0, "2026-03-27/night"), (1, "2026-03-28/night"), (1, "2026-03-28/day"), (3, "2026-03-31/day")):
        for i in range(12):
            seq += 1
            kind = ("call", "call", "call", "outgoing", "reminder", "shift_end")[i % 6]
            out.append(event(seq, T0 - 2 * 86400_000 + day * 86400_000 + i * 20 * 60_000, kind=kind,
                             seat=("S1", "S2")[i % 2], shift=label))
    out.append(event(999, T0, kind="call", shift=None))  # unlabelled: no tag, nothing to convert
    return out


def new_events() -> list[dict]:
    return [event(2000 + i, T0 + i * 7 * 60_000, kind=("call", "outgoing")[i % 2], seat="S3",
                  shift="2026-03-28/night") for i in range(10)]


def ids(db: InfluxV1) -> Counter:
    out: Counter = Counter()
    for result in db.query(f'SELECT "seq","unit" FROM {ALL}'):
        for series in result.get("series", []):
            out.update((series["name"], row[2], row[1]) for row in series["values"])
    return out


def tag_keys(db: InfluxV1) -> set[str]:
    return {v[0] for r in db.query(f"SHOW TAG KEYS FROM {ALL}") for s in r.get("series", []) for v in s["values"]}


def assert_roll_ups_exact(db: InfluxV1, tz: str) -> None:
    keys = rollstore.stored_keys(db, 0, 4_000_000_000_000)
    rows = {"call": [], "outgoing": []}
    for m in rows:
        for result in db.query(f"SELECT * FROM {m}"):
            for s in result.get("series", []):
                rows[m] += [{k: v for k, v in zip(s["columns"], vals) if v is not None} for vals in s["values"]]
    fresh = ru.rollup_15m(rows["call"], rows["outgoing"])
    assert {(k[0], k[1], k[3]) for k in fresh} == keys
    stored = {}
    for result in db.query("SELECT * FROM rollup_15m"):
        for s in result.get("series", []):
            for vals in s["values"]:
                row = dict(zip(s["columns"], vals))
                stored[(row["site"], row["seat"], row.get("shift"), row["time"])] = ru.Rollup.from_fields(row)
    assert stored == fresh
    days = ru.rollup_day(fresh, tz)
    got = {}
    for result in db.query(f"SELECT * FROM rollup_day WHERE tz = '{tz}'"):
        for s in result.get("series", []):
            for vals in s["values"]:
                row = dict(zip(s["columns"], vals))
                got[(row["site"], row["seat"], row.get("shift"), row["time"])] = ru.Rollup.from_fields(row)
    assert got == days


@pytest.fixture
def mixed(influxdb, unique_name) -> InfluxV1:
    """A database with old-schema points and current ones side by side."""
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    olds = old_events()
    db.write_lines([old_line(e) for e in olds])
    rollstore.store_events(db, new_events(), "Europe/Berlin")
    return db


def cli(db: InfluxV1, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SEATMON_COLLECT_INFLUX_URL=db.url, SEATMON_COLLECT_INFLUX_DATABASE=db.database,
               SEATMON_COLLECT_ROLLUP_TZ="Europe/Berlin")
    return subprocess.run([sys.executable, "-m", "seatmon.cli", "collect", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_migrate_a_mixed_database(mixed):
    db = mixed
    before = ids(db)
    types_before = {m: migrate.field_types(db, m) for m in ("call", "outgoing", "shift_end")}
    assert "shift" in tag_keys(db)
    r = cli(db, "migrate", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "call: 24 old points in 4 shift label(s) to convert" in r.stdout
    assert "would convert 48 points" in r.stdout and "roll-ups to build from 2026-03-26 to 2026-03-30" in r.stdout
    assert ids(db) == before and "shift" in tag_keys(db)  # dry run: nothing changed
    r = cli(db, "migrate")
    assert r.returncode == 0, r.stderr
    assert "call 2026-03-28/night: 6 points converted" in r.stdout
    assert "migrated: 48 points converted; roll-ups built" in r.stdout
    assert ids(db) == before and max(ids(db).values()) == 1
    assert "shift" not in tag_keys(db) and "shift_name" in tag_keys(db)
    for m, types in types_before.items():
        assert migrate.field_types(db, m) == dict(types, shift="string")
    [series] = db.query("SELECT answer_ms, within_limit, shift FROM call WHERE unit = 'u-S1' AND seq = 1 GROUP BY *"
                        )[0]["series"]
    assert series["tags"]["shift_name"] == "night" and series["tags"]["outcome"] == "answered"
    assert series["values"][0][1:] == [2300, True, "2026-03-27/night"]
    assert_roll_ups_exact(db, "Europe/Berlin")
    # The lines are now what today's collector writes for the same events.
    again = cli(db, "migrate")
    assert again.returncode == 0 and "no old-schema points" in again.stdout and ids(db) == before


def test_an_interrupted_migration_is_finished_by_a_re_run(mixed):
    db = mixed
    before = ids(db)

    class Failing(InfluxV1):
        deletes = 0

        def query(self, q, **kw):
            if q.startswith("DELETE") and "time >=" in q:  # one chunk's delete
                Failing.deletes += 1
                if Failing.deletes == 3:  # new points written, old ones not yet deleted
                    raise InfluxError("connection reset")
            return super().query(q, **kw)

    with pytest.raises(InfluxError):
        migrate.run(Failing(db.url, db.database), "Europe/Berlin", lambda text: None)
    doubled = ids(db)
    assert max(doubled.values()) == 2  # a chunk stands in both forms for now
    assert migrate.pending_ranges(db)  # and its roll-ups are remembered as due
    r = cli(db, "migrate")
    assert r.returncode == 0, r.stderr
    assert ids(db) == before and "shift" not in tag_keys(db)
    assert not migrate.pending_ranges(db)
    assert_roll_ups_exact(db, "Europe/Berlin")


def test_interrupted_after_converting_the_roll_ups_are_still_built(mixed):
    db = mixed

    def no_rollups(*args, **kw):
        raise InfluxError("stopped")

    saved = migrate.rebuild_range
    migrate.rebuild_range = no_rollups
    try:
        with pytest.raises(InfluxError):
            migrate.run(db, "Europe/Berlin", lambda text: None)
    finally:
        migrate.rebuild_range = saved
    assert "shift" not in tag_keys(db)
    r = cli(db, "migrate")
    assert r.returncode == 0 and "no old-schema points" in r.stdout
    assert "roll-ups to build from 2026-03-26 to 2026-03-30" in r.stdout
    assert_roll_ups_exact(db, "Europe/Berlin")


def test_rollup_rebuilds_a_range(influxdb, unique_name):
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    events = [e for e in old_events() if e.get("shift")] + new_events()
    db.write_lines([event_line(e) for e in events])  # stored without roll-ups
    r = cli(db, "rollup", "--from", "2026-03-26", "--to", "2026-03-30", "--tz", "Europe/Berlin")
    assert r.returncode == 0, r.stderr
    assert "roll-ups rebuilt from 2026-03-26 to 2026-03-30 (Europe/Berlin)" in r.stdout
    assert_roll_ups_exact(db, "Europe/Berlin")
    r = cli(db, "rollup", "--from", "2026-03-29", "--to", "2026-03-26")
    assert r.returncode == 2 and r.stderr.strip() == "seatmon collect rollup: --to 2026-03-26 is before --from 2026-03-29"


def test_errors_are_one_line(tmp_path):
    from rig.servers import free_port

    db = InfluxV1(f"http://127.0.0.1:{free_port()}", "nowhere")
    r = cli(db, "migrate")
    assert r.returncode == 1 and r.stderr.startswith("seatmon collect migrate: InfluxDB at http://127.0.0.1:")
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli(db, "rollup", "--from", "2026-03-01")
    assert r.returncode == 2 and "--to" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli(db, "rollup", "--from", "2026-03-01", "--to", "2026-03-02", "--tz", "Mars/Olympus")
    assert r.returncode == 2 and "expected a time zone" in r.stderr
