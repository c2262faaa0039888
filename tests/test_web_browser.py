"""`seatmon web` in a real headless Chromium (playwright), against a real
uvicorn server, InfluxDB and Mosquitto: each role logs in through the form
and walks its pages; the page's CSP is enforced (no bypass), so a script
it blocked would show up as a console error."""

from __future__ import annotations

import json
import re

import pytest

from seatmon.cli import main as cli
from tests.test_wallboard import CHROMIUM, CHROMIUM_ARGS, Units
from tests.test_web import PASSWORDS, data, seatmon, site, web  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    def __init__(self, browser, web):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.web = web

    def login(self, name: str):
        self.page.goto(self.web.url + "/")
        assert self.page.url.startswith(self.web.url + "/login")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", PASSWORDS[name])
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("load")

    def close(self):
        self.context.close()


def test_a_head_logs_in_watches_the_board_reads_a_report_downloads_it_and_logs_out(browser, web, site, mqtt_broker,
                                                                                    capsys, tmp_path):
    v = Visit(browser, web)
    try:
        v.login("boss")
        page = v.page
        assert page.url == web.url + "/"
        assert page.locator("header").inner_text().count("boss") == 1
        # The live wallboard, its script allowed by the nonce, fed over the update stream.
        page.click("text=Wallboard hq")
        page.wait_for_url(web.url + "/board/hq/")
        units = Units("127.0.0.1", mqtt_broker.port, "hq", "web-browser-test")
        try:
            units.live("u-web1", "W-01", "ringing")
            page.locator('.tile[data-seat="hq/W-01"]').wait_for(timeout=15000)
            page.screenshot(path=str(tmp_path / "board.png"))
        finally:
            units.close()
        # A report through its pickers; the figure on screen is the command's.
        page.goto(web.url + "/reports/answers?site=hq")
        page.select_option("select[name=range]", "custom")
        page.fill("input[name=from]", "2026-10-05")
        page.fill("input[name=to]", "2026-10-06")
        page.select_option("select[name=by]", "day")
        page.click("#pickers button[type=submit]")
        page.wait_for_load_state("load")
        assert page.locator("#report table").count() >= 1
        page.screenshot(path=str(tmp_path / "answers.png"), full_page=True)  # kept for a look after a failure
        path, _ = site
        assert cli(["report", "answers", "--site-file", str(path), "--from", "2026-10-05", "--to", "2026-10-06",
                    "--by", "day", "--format", "json"]) == 0
        expected = json.loads(capsys.readouterr().out)
        total_row = page.locator("#report table tr", has_text="total").first.inner_text()
        assert str(expected["total"]["calls"]) in re.split(r"\s+", total_row)
        with page.expect_download() as dl:
            page.click("#json")
        assert json.loads(open(dl.value.path()).read()) == expected
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login$"))
        page.goto(web.url + "/reports/answers?site=hq")
        assert "/login" in page.url
        assert v.errors == []
    finally:
        v.close()


def test_leader_agent_and_technician_each_see_their_own_pages(browser, web, site):
    v = Visit(browser, web)
    try:
        v.login("lea")
        page = v.page
        nav = page.locator("header nav").inner_text()
        assert "Wallboard hq" in nav and "Daily" in nav and "Fleet" not in nav
        page.goto(web.url + "/reports/daily?site=hq&day=2026-10-05")
        assert page.locator("#report h1").inner_text().startswith("seatmon daily report: day 2026-10-05")
        resp = page.goto(web.url + "/reports/daily?site=branch&day=2026-10-05")
        assert resp.status == 403 and "may not open daily of site branch" in page.locator("#detail").inner_text()
        # One click from a seat's figure to the calls behind it.
        page.goto(web.url + "/reports/answers?site=hq&range=custom&from=2026-10-05&to=2026-10-06&by=seat")
        link = page.locator("#report a.calls").nth(1)
        figure = int(link.inner_text().replace(",", ""))
        link.click()
        page.wait_for_load_state("load")
        assert page.url.startswith(web.url + "/calls?") and page.locator("#calls-table tbody tr").count() == figure
        assert [e for e in v.errors if "403" not in e] == []
    finally:
        v.close()
    v = Visit(browser, web)
    try:
        v.login("ada")
        page = v.page
        assert page.url.startswith(web.url + "/agents/a-017")  # their own month (none this month: it says so)
        assert "Answers" not in page.locator("header nav").inner_text()
        assert page.goto(web.url + "/reports/answers?site=hq").status == 403
        page.goto(web.url + "/account")
        assert page.locator("#account-role").inner_text() == "agent"
        page.click("#my-page")
        page.fill("input[name=month]", "2026-10")
        page.click("#pickers button[type=submit]")
        page.wait_for_load_state("load")
        figures = page.locator('#report table[data-table="figures"] tr', has_text="calls that rang").inner_text()
        calls = int(re.split(r"\s+", figures.strip())[-2])
        assert "Ada Byron (a-017)" in page.locator("#report h1").inner_text() and calls > 0
        with page.expect_download() as dl:
            page.click("#json")
        assert json.loads(open(dl.value.path()).read())["figures"]["calls"] == calls
        page.click("#calls")  # the month's calls behind the figure
        page.wait_for_load_state("load")
        assert page.locator("#calls-table tbody tr").count() == calls
        assert set(page.locator("#calls-table tbody tr td:nth-child(3)").all_inner_texts()) == {"a-017"}
        with page.expect_download() as dl:
            page.click("#csv")
        assert open(dl.value.path()).read().count("a-017") == calls
        assert page.goto(web.url + "/agents/a-018?month=2026-10").status == 403  # a colleague: refused
        assert page.goto(web.url + "/calls?agent=a-018&from=2026-10-05&format=csv").status == 403
        assert [e for e in v.errors if "403" not in e and "404" not in e] == []
    finally:
        v.close()
    v = Visit(browser, web)
    try:
        # The throttle test may have locked the module's technician out: a fresh one.
        _, accounts = site
        seatmon("web", "--accounts", str(accounts), "user", "add", "theo", "--role", "technician", "--password-stdin",
                stdin="theo-password-1\n")
        PASSWORDS["theo"] = "theo-password-1"
        v.login("theo")
        page = v.page
        nav = page.locator("header nav").inner_text()
        assert "Units" in nav and "Fleet" in nav and "Answers" not in nav and "Wallboard" not in nav
        page.click("header >> text=Fleet")
        assert page.locator("#fleet tbody tr").count() >= 1
        assert page.goto(web.url + "/board/hq/").status == 403
    finally:
        v.close()
