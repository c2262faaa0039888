"""The backup/restore drill of docs/operators.md, on a real InfluxDB: back up
the seatmon database, wipe the server, restore, and the monthly report comes
out identical, and so does the roster (who sat where, the agents' names)."""

import shutil
import subprocess
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector.influx import InfluxError, InfluxV1
from seatmon.report.monthly import monthly
from seatmon.report.query import month_scope
from rig.gendata import Plan, load
from rig.servers import find_binary
from seatmon.roster import store as roster_store
from seatmon.roster.model import Agent, Assignment

PLAN = Plan(start=date(2026, 10, 1), days=31, seats=4, calls_per_seat_day=12, outgoing_per_seat_day=2,
            tz="Europe/Berlin", seed=11)


def count_calls(db: InfluxV1, q: str = "SELECT count(ring_ms) FROM call") -> int | None:
    try:
        series = db.query(q)[0].get("series")
    except InfluxError:  # database or shards not there (yet)
        return None
    return series[0]["values"][0][1] if series else 0


def count_all(db: InfluxV1) -> tuple:
    """Calls, roster assignments and agents (the agents' points lie in 1970's shard)."""
    return (count_calls(db), count_calls(db, "SELECT count(agent) FROM roster"),
            count_calls(db, "SELECT count(name) FROM roster_agent"))


H = 3600 * 1000


def local_ms(*args) -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(PLAN.tz)).timestamp() * 1000)


OCTOBER = (local_ms(2026, 10, 1), local_ms(2026, 11, 1))


def seed_roster(db: InfluxV1) -> None:
    """A month's roster of the plan's seats: one agent per seat and day shift,
    a seat change in one, names and e-mails for some."""
    rows = []
    for d in range(31):
        for i in range(PLAN.seats):
            start = local_ms(2026, 10, d + 1, 6)
            label = f"2026-10-{d + 1:02d}/day"
            if i == 0 and d == 9:  # a seat change at noon
                rows += [Assignment(PLAN.site, PLAN.seat(i), label, "ana", start, start + 6 * H),
                         Assignment(PLAN.site, PLAN.seat(i), label, "bo", start + 6 * H, start + 9 * H)]
            else:
                rows.append(Assignment(PLAN.site, PLAN.seat(i), label, f"agent{(i + d) % 6}", start, start + 9 * H))
    agents = [Agent("ana", "Ana Silva", "ana@example.com"), Agent("bo", "Bo Chen")]
    roster_store.write(db, rows, agents + [Agent(f"agent{k}", f"Agent {k}") for k in range(6)])


def influxd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_binary("influxd"), *args], capture_output=True, text=True, timeout=120)


def test_backup_wipe_restore_gives_the_same_monthly_report(influxdb_factory, tmp_path):
    server = influxdb_factory()
    db = InfluxV1(server.url, "seatmon")
    db.create_database()
    stored = load(db, PLAN)
    seed_roster(db)
    scope = month_scope("2026-10", PLAN.tz)
    before = monthly(db, scope)
    assert before and stored > 0
    roster_before = roster_store.load(db, *OCTOBER).assignments
    agents_before = roster_store.agents(db)
    assert len(roster_before) == 31 * PLAN.seats + 1 and len(agents_before) == 8
    points = count_all(db)

    backup = tmp_path / "backup"
    res = influxd("backup", "-portable", "-database", "seatmon", "-host", f"127.0.0.1:{server.bind_port}", str(backup))
    assert res.returncode == 0, res.stderr

    # Wipe: stop the server and remove everything it had, as after losing the disk.
    server.stop()
    shutil.rmtree(server.data_dir)
    server.start()
    empty = InfluxV1(server.url, "seatmon")
    assert "seatmon" not in str(empty.query("SHOW DATABASES"))

    res = influxd("restore", "-portable", "-db", "seatmon", "-host", f"127.0.0.1:{server.bind_port}", str(backup))
    assert res.returncode == 0, res.stderr
    restored = InfluxV1(server.url, "seatmon")
    # The server loads the restored shards on its own; wait until they answer in full.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and count_all(restored) != points:
        time.sleep(0.2)
    assert count_all(restored) == points
    after = monthly(restored, scope)
    assert after == before
    assert roster_store.load(restored, *OCTOBER).assignments == roster_before
    assert roster_store.agents(restored) == agents_before
