"""The backup/restore drill of docs/operators.md, on a real InfluxDB: back up
the seatmon database, wipe the server, restore, and the monthly report comes
out identical."""

import shutil
import subprocess
from datetime import date

from collector.influx import InfluxV1
from seatmon.report.monthly import monthly
from seatmon.report.query import month_scope
from tools.gendata import Plan, load
from tools.servers import find_binary

PLAN = Plan(start=date(2026, 10, 1), days=31, seats=4, calls_per_seat_day=12, outgoing_per_seat_day=2,
            tz="Europe/Berlin", seed=11)


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
    after = monthly(InfluxV1(server.url, "seatmon"), scope)
    assert after == before
