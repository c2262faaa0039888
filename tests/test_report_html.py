"""The monthly, daily, weekly and staffing pages over a generated month,
opened in a real headless Chromium (Debian `chromium`, driven by playwright's Python package with
executable_path; its own browser download is never used): no console errors, every
chart drawn with a non-zero size, a screenshot kept in the test's temp dir.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date

import pytest
from playwright.sync_api import sync_playwright

from collector.influx import InfluxV1
from seatmon.cli import main as cli
from rig.gendata import Plan, lines, load

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHARTS = ["rate-per-day", "answer-times", "seat-ranking", "hour-heatmap", "shift-end", "staffing"]
# October 2026 in Berlin: 31 days, including the DST change on the 25th.
PLAN = Plan(start=date(2026, 10, 1), days=31, seats=6, calls_per_seat_day=20, outgoing_per_seat_day=3,
            tz="Europe/Berlin", seed=7, heartbeat_hours=6)


@pytest.fixture(scope="module")
def generated_month(influxdb):
    """A known, seeded month of calls in its own database."""
    db = InfluxV1(influxdb.url, "t_report_html_month")
    db.query(f'DROP DATABASE "{db.database}"', method="POST")  # fresh, even on a reused external server
    load(db, PLAN)
    return db


def test_generator_is_seeded_and_complete(generated_month, capsys):
    assert list(lines(PLAN))[:50] == list(lines(PLAN))[:50]
    code = cli(["report", "answers", "--by", "site", "--from", "2026-10-01", "--to", "2026-10-31", "--tz",
                "Europe/Berlin", "--influx", generated_month.url, "--db", generated_month.database, "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    total = out.splitlines()[-1].split(",")
    # 6 seats x 31 days x 20 calls; 6 x 31 x 3 outgoing.
    assert total[0] == "total" and total[1] == str(6 * 31 * 20) and total[7] == str(6 * 31 * 3)
    # The new figures against a count of the generated lines themselves.
    row = next(csv.DictReader(io.StringIO(out.split("\r\n", 1)[0] + "\r\n" + out.splitlines()[-1] + "\r\n")))
    gen = list(lines(PLAN))
    calls = [x for x in gen if x.startswith("call,")]
    talks = [x for x in gen if x.startswith(("call,", "outgoing,"))]
    assert int(row["caller_abandoned"]) == sum("outcome=answered" not in x for x in calls)
    assert int(row["unsynced"]) == sum('clock="unsynced"' in x for x in calls) > 0
    assert int(row["hung_up_first"]) == sum('hung_up_first="agent"' in x for x in talks) > 0
    assert int(row["hangup_known"]) == sum("hung_up_first=" in x for x in talks)


def open_in_chromium(page_path, shot):
    """Open a page; (console errors, URLs requested, per chart [name, width, height, marks]); screenshot kept."""
    errors, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1200})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            drawn = page.eval_on_selector_all(
                "svg.chart", "els => els.map(e => { const r = e.getBoundingClientRect();"
                " return [e.dataset.chart, r.width, r.height, e.querySelectorAll('rect').length]; })")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return errors, requests, drawn


def test_monthly_page_renders_in_chromium(generated_month, tmp_path, capsys):
    page_path = tmp_path / "monthly.html"
    code = cli(["report", "monthly", "--month", "2026-10", "--tz", "Europe/Berlin", "--influx", generated_month.url,
                "--db", generated_month.database, "--out", str(page_path)])
    assert code == 0, capsys.readouterr().err
    html = page_path.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # Every third seat has no disconnect input (rig/gendata.py): said, not shown as 0.
    assert "disconnect input is not installed (no data): S-003, S-006." in html
    assert "agent hung up first<b>" in html and "were stamped without a synchronised clock" in html
    assert "power sensor unreadable</title>" in html and "found off after granted overtime</title>" in html
    errors, requests, drawn = open_in_chromium(page_path, tmp_path / "monthly.png")
    assert errors == []
    assert requests == [page_path.as_uri()]  # nothing fetched from anywhere
    assert [d[0] for d in drawn] == CHARTS
    for name, width, height, marks in drawn:
        assert width > 100 and height > 50 and marks > 0, name
    assert dict((d[0], d[3]) for d in drawn)["rate-per-day"] == 31
    assert "Busy, idle and staffing by day" in html and "2026-10-25" in html
    assert (tmp_path / "monthly.png").stat().st_size > 10000


@pytest.mark.parametrize("name, args, charts, marks", [
    # The DST day: 25 hourly bars of seats staffed and needed, shifts' rates.
    ("daily", ["daily", "--day", "2026-10-25"], ["rate", "staffing"], 25),
    ("weekly", ["weekly", "--week", "2026-W43"], ["rate", "staffing"], None),
    ("staffing", ["staffing", "--from", "2026-10-24", "--to", "2026-10-25", "--interval", "30", "--format", "html"],
     ["staffing"], None),
])
def test_period_and_staffing_pages_render_in_chromium(generated_month, tmp_path, capsys, name, args, charts, marks):
    page_path = tmp_path / f"{name}.html"
    code = cli(["report", *args, "--tz", "Europe/Berlin", "--influx", generated_month.url,
                "--db", generated_month.database, "--out", str(page_path)])
    assert code == 0, capsys.readouterr().err
    html = page_path.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    errors, requests, drawn = open_in_chromium(page_path, tmp_path / f"{name}.png")
    assert errors == [] and requests == [page_path.as_uri()]
    assert [d[0] for d in drawn] == charts
    for chart, width, height, n in drawn:
        assert width > 100 and height > 50 and n > 0, chart
    if marks:  # one bar per hour, three parts each (needed and staffed, beyond, short) plus the legend
        assert dict((d[0], d[3]) for d in drawn)["staffing"] == marks * 3 + 3
    assert (tmp_path / f"{name}.png").stat().st_size > 10000


def test_empty_month_writes_nothing(generated_month, tmp_path, capsys):
    out = tmp_path / "empty.html"
    code = cli(["report", "monthly", "--month", "2026-12", "--tz", "Europe/Berlin", "--influx", generated_month.url,
                "--db", generated_month.database, "--out", str(out)])
    assert code == 4 and not out.exists() and "no calls in 2026-12" in capsys.readouterr().err


def test_a_rate_is_coloured_as_it_is_printed():
    # A day printed as "80.0%" was drawn red while the legend says amber from 80 %.
    from seatmon.report import monthly, svg

    for rate, printed, colour in ((0.79996, "80.0%", svg.AMBER), (0.79949, "79.9%", svg.RED),
                                  (0.89951, "90.0%", svg.GREEN), (0.8, "80.0%", svg.AMBER)):
        assert monthly._pct(rate) == printed and svg.rate_colour(rate) == colour, rate
