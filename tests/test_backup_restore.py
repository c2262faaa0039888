"""The backup/restore drill of docs/operators.md, on a real InfluxDB: back up
the seatmon database, wipe the server, restore, and the monthly report comes
out identical."""

import shutil
import subprocess
import time
from datetime import date

from collector.influx import InfluxError, InfluxV1
from seatmon.report.monthly import monthly
from seatmon.report.query import month_scope
from rig.gendata import Plan, load
from rig.servers import find_binary

PLAN = Plan(start=date(2026, 10, 1), days=31, seats=4, calls_per_seat_day=12, outgoing_per_seat_day=2,
            tz="Europe/Berlin", seed=11)


def count_calls(db: InfluxV1) -> int | None:
    try:
        series = db.query("SELECT count(ring_ms) FROM call")[0].get("series")
    except InfluxError:  # database or shards not there (yet)
        return None
    return series[0]["values"][0][1] if series else 0


def influxd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_binary("influxd"), *args], capture_output=True, text=True, timeout=120)


def test_backup_wipe_restore_gives_the_same_monthly_report(influxdb_factory, tmp_path):
    server = influxdb_factory()
    db = InfluxV1(server.url, "seatmon")
    db.create_database()
    stored = load(db, PLAN)
    scope = month_scope("2026-10", PLAN.tz)
    before = monthly(db, scope)
    assert before and stored > 0
    points = count_calls(db)

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
    while time.monotonic() < deadline and count_calls(restored) != points:
        time.sleep(0.2)
    assert count_calls(restored) == points
    after = monthly(restored, scope)
    assert after == before
