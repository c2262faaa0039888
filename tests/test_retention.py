"""`seatmon data retention` on a real InfluxDB: roster assignments older than
the site's retention period and the agents nothing refers to any more are
removed; the events and roll-ups stay, so a seat's figures are identical."""

from __future__ import annotations

from datetime import date

import pytest

from collector.influx import InfluxV1
from rig.gendata import Plan as DataPlan
from rig.gendata import load as load_data
from seatmon import sitefile
from seatmon.report.answers import answers
from seatmon.report.query import month_scope
from seatmon.retention import cutoff_day
from seatmon.roster import store
from seatmon.roster.model import UNASSIGNED, Agent, Assignment
from tests.test_roster_import import run, utc

TZ = "Europe/Berlin"
DATA = DataPlan(start=date(2026, 9, 1), days=61, seats=2, calls_per_seat_day=6, outgoing_per_seat_day=1, tz=TZ,
                seed=5)
SEAT = DATA.seat(0)


@pytest.mark.parametrize("today,months,first_kept", [
    (date(2026, 11, 15), 1, date(2026, 10, 1)),
    (date(2026, 1, 31), 24, date(2024, 1, 1)),
    (date(2026, 3, 1), 14, date(2025, 1, 1)),
    (date(2026, 12, 31), 12, date(2025, 12, 1)),
])
def test_the_current_month_and_n_before_it_are_kept(today, months, first_kept):
    assert cutoff_day(today, months) == first_kept


def test_the_site_file_sets_the_period(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[site]\nid = "hq"\ntimezone = "Europe/Berlin"\n\n[privacy]\nroster_months = 0\n')
    with pytest.raises(sitefile.SiteFileError, match=r"site.toml:6: privacy.roster_months: expected a number of "
                                                     r"months, 1 or more, got 0"):
        sitefile.load(path)
    path.write_text('[site]\nid = "hq"\ntimezone = "Europe/Berlin"\n\n[privacy]\nroster_month = 24\n')
    with pytest.raises(sitefile.SiteFileError, match="unknown key .did you mean 'roster_months'"):
        sitefile.load(path)


def test_retention_removes_old_assignments_and_agents_and_keeps_the_seat_figures(influxdb, unique_name, tmp_path,
                                                                                 capsys):
    db = InfluxV1(influxdb.url, unique_name)
    load_data(db, DATA)  # September and October: calls and their roll-ups
    september = [  # ana and old.timer in September; a night shift that ends in October (its later part too)
        Assignment("hq", SEAT, "2026-09-14/day", "ana", utc(2026, 9, 14, 6), utc(2026, 9, 14, 18)),
        Assignment("hq", DATA.seat(1), "2026-09-14/day", "old.timer", utc(2026, 9, 14, 6), utc(2026, 9, 14, 18)),
        Assignment("hq", SEAT, "2026-09-30/night", "old.timer", utc(2026, 9, 30, 20), utc(2026, 9, 30, 23)),
        Assignment("hq", SEAT, "2026-09-30/night", "night.owl", utc(2026, 9, 30, 23), utc(2026, 10, 1, 4)),
    ]
    october = [Assignment("hq", SEAT, "2026-10-01/day", "ana", utc(2026, 10, 1, 6), utc(2026, 10, 1, 18))]
    elsewhere = [Assignment("branch", "B-01", "2026-09-14/day", "night.owl", utc(2026, 9, 14, 6),
                            utc(2026, 9, 14, 18))]
    store.write(db, september + october + elsewhere,
                [Agent("ana", "Ana Silva", "ana@example.com"), Agent("old.timer", "Old Timer"),
                 Agent("night.owl", "Night Owl")])
    scope = month_scope("2026-09", TZ, "hq")
    seat_figures = answers(db, scope, "seat").as_dict()
    assert seat_figures["groups"][0]["group"] == SEAT and seat_figures["total"]["calls"] > 0
    assert store.load(db, utc(2026, 9, 14), utc(2026, 9, 15), site="hq").agent_at("hq", SEAT, utc(2026, 9, 14, 7)) \
        == "ana"

    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nid = "hq"\ntimezone = "{TZ}"\n\n[privacy]\nroster_months = 1\n\n'
                    f'[influx]\nurl = "{influxdb.url}"\ndatabase = "{unique_name}"\n')
    code, out, err = run(capsys, "data", "retention", "--site", str(path), "--on", "2026-11-15", "--dry-run")
    assert code == 0, err
    assert "keeping the shifts from 2026-10-01 on (2026-11 and 1 month before it): would remove 4 assignments " \
           "and 1 agent" in out
    assert len(store.load(db, utc(2026, 9, 1), utc(2026, 11, 1)).assignments) == 6

    code, out, err = run(capsys, "data", "retention", "--site", str(path), "--on", "2026-11-15")
    assert code == 0, err
    assert "removed 4 assignments and 1 agent; events and roll-ups untouched" in out
    left = store.load(db, utc(2026, 9, 1), utc(2026, 11, 1))
    assert sorted(left.assignments, key=lambda a: a.site) == elsewhere + october
    assert left.agent_at("hq", SEAT, utc(2026, 9, 14, 7)) == UNASSIGNED
    assert left.agent_at("hq", SEAT, utc(2026, 10, 1, 2)) == UNASSIGNED  # the night's later part went too
    assert set(store.agents(db)) == {"ana", "night.owl"}  # night.owl still sits at the branch
    assert answers(db, scope, "seat").as_dict() == seat_figures

    code, out, _ = run(capsys, "data", "retention", "--site", str(path), "--on", "2026-11-15")
    assert code == 0 and "removed 0 assignments and 0 agents" in out


def test_retention_needs_a_period(tmp_path, capsys):
    path = tmp_path / "site.toml"
    path.write_text('[site]\nid = "hq"\ntimezone = "Europe/Berlin"\n')
    code, _out, err = run(capsys, "data", "retention", "--site", str(path))
    assert code == 2 and "give --months N or set [privacy] roster_months" in err
