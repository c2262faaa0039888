"""`seatmon web` over a real uvicorn server on a free loopback port, with a
real InfluxDB holding a small seeded data set and a real Mosquitto: the
accounts commands, the role-and-site matrix of every view and download,
sessions, CSRF, the login throttle, the security headers, the exposure
check, and the figures against `seatmon report ... --format json`.
The browser walk is in tests/test_web_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from collector.influx import InfluxV1
from rig.gendata import Plan, load
from rig.servers import free_port
from seatmon.cli import main as cli
from seatmon.roster import store as roster_store
from seatmon.roster.model import Agent, Assignment

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "site.example.toml"
PASSWORDS = {"boss": "head-password-1", "lea": "leader-password-1", "ada": "agent-password-1",
             "tim": "techn-password-1"}
ROLES = {"boss": ["--role", "head"], "lea": ["--role", "leader", "--site", "hq"],
         "ada": ["--role", "agent", "--agent-id", "a-017"], "tim": ["--role", "technician"]}
# Two days of three seats at hq, one day of two seats at a second site.
HQ = Plan(start=date(2026, 10, 5), days=2, seats=3, calls_per_seat_day=12, outgoing_per_seat_day=2,
          tz="Europe/Berlin", seed=11, heartbeat_hours=6)
BRANCH = Plan(start=date(2026, 10, 5), days=1, seats=2, calls_per_seat_day=8, outgoing_per_seat_day=1,
              site="branch", tz="Europe/Berlin", seed=12, heartbeat_hours=6)


def _day_ms(day: str, hours: int = 24) -> tuple[int, int]:
    start = int(datetime.fromisoformat(day + "T00:00:00+02:00").timestamp() * 1000)
    return start, start + hours * 3_600_000


# The roster: a-017 at S-001 of hq both days; a-018 at S-002 of hq on the 5th; a-019 at branch only.
ROSTER = [Assignment("hq", "S-001", "2026-10-05/day", "a-017", *_day_ms("2026-10-05")),
          Assignment("hq", "S-001", "2026-10-06/day", "a-017", *_day_ms("2026-10-06")),
          Assignment("hq", "S-002", "2026-10-05/day", "a-018", *_day_ms("2026-10-05")),
          Assignment("branch", "S-001", "2026-10-05/day", "a-019", *_day_ms("2026-10-05"))]


def seatmon(*argv, stdin: str | None = None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEATMON_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # keeps tests/farclock
    return subprocess.run([sys.executable, "-m", "seatmon.cli", *argv], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


def site_file(folder: Path, influx_url: str, database: str, mqtt_port: int) -> Path:
    """The example site file pointed at the test servers (plain MQTT), with a
    credentials file for the fleet view's broker account."""
    text = EXAMPLE.read_text()
    text = text.replace('host = "mqtt.hq.example"', 'host = "127.0.0.1"').replace("port = 8883",
                                                                                  f"port = {mqtt_port}\ntls = false")
    text = text.replace('url = "http://127.0.0.1:8086"', f'url = "{influx_url}"').replace(
        'database = "seatmon"', f'database = "{database}"')
    path = folder / "site.toml"
    path.write_text(text)
    (folder / "secrets").mkdir(exist_ok=True)
    creds = folder / "secrets" / "credentials.json"
    creds.write_text(json.dumps({"collector": "c", "wallboard": "w", "technician": "t", "updater": "u",
                                 "ota_key": "00" * 32}))
    creds.chmod(0o600)
    return path


class Web:
    """A `seatmon web` process on a free loopback port."""

    def __init__(self, site: Path, accounts: Path, log: Path, *extra: str):
        self.port = free_port()
        self.url = f"{'https' if '--tls-cert' in extra else 'http'}://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEATMON_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "web", "--site", str(site), "--accounts",
                                      str(accounts), "--port", str(self.port), *extra], cwd=ROOT, env=env,
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, log.read_text()
            try:
                httpx.get(self.url + "/login", timeout=2, verify=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, verify=False)  # the TLS test's certificate is self-signed

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client: httpx.Client, name: str, password: str | None = None) -> httpx.Response:
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password or PASSWORDS[name],
                                       "csrf_token": csrf_of(page.text), "next": ""})


@pytest.fixture(scope="module")
def data(influxdb):
    db = InfluxV1(influxdb.url, "t_web_reports")
    db.query(f'DROP DATABASE "{db.database}"', method="POST")  # fresh, even on a reused external server
    load(db, HQ)
    load(db, BRANCH)
    roster_store.write(db, ROSTER, [Agent("a-017", "Ada Byron", "ada@example.com"), Agent("a-018", "Bo Chen", "")])
    return db


@pytest.fixture(scope="module")
def site(data, mqtt_broker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    path = site_file(folder, data.url, data.database, mqtt_broker.port)
    accounts = folder / "accounts.db"
    for name, role in ROLES.items():
        res = seatmon("web", "--accounts", str(accounts), "user", "add", name, *role, "--password-stdin",
                      stdin=PASSWORDS[name] + "\n")
        assert res.returncode == 0, res.stderr
    return path, accounts


@pytest.fixture(scope="module")
def web(site, tmp_path_factory):
    path, accounts = site
    folder = tmp_path_factory.mktemp("weblog")
    server = Web(path, accounts, folder / "web.log", "--audit-log", str(folder / "audit.jsonl"))
    server.audit = folder / "audit.jsonl"
    yield server
    server.stop()


# ---- accounts ---------------------------------------------------------------------------------

class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def test_user_commands_add_change_disable_and_refuse_bad_input(tmp_path, monkeypatch, capsys):
    acc = str(tmp_path / "a.db")

    def seatmon(*argv, stdin=""):  # in this process: the same code, without a Python start per command
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    ok = seatmon("web", "--accounts", acc, "user", "add", "li", "--role", "leader", "--site", "hq",
                 "--password-stdin", stdin="long-enough-pw\n")
    assert ok.returncode == 0, ok.stderr
    for argv, says in ((["add", "li", "--role", "head"], "exists already"),
                       (["add", "x", "--role", "leader"], "needs at least one --site"),
                       (["add", "y", "--role", "agent"], "needs --agent-id"),
                       (["add", "bad name", "--role", "head"], "user name"),
                       (["set-role", "nobody", "--role", "head"], "no user 'nobody'")):
        res = seatmon("web", "--accounts", acc, "user", *argv, "--password-stdin", stdin="long-enough-pw\n") \
            if argv[0] == "add" else seatmon("web", "--accounts", acc, "user", *argv)
        assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr, (argv, res.stderr)
    short = seatmon("web", "--accounts", acc, "user", "add", "z", "--role", "head", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "too short" in short.stderr
    no_tty = seatmon("web", "--accounts", acc, "user", "add", "z", "--role", "head", stdin="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    assert seatmon("web", "--accounts", acc, "user", "set-role", "li", "--role", "technician").returncode == 0
    assert seatmon("web", "--accounts", acc, "user", "disable", "li").returncode == 0
    assert seatmon("web", "--accounts", acc, "user", "passwd", "li", "--password-stdin",
                   stdin="another-long-pw\n").returncode == 0
    listed = seatmon("web", "--accounts", acc, "user", "list").stdout
    assert listed.split("\n")[0].split("\t") == ["li", "technician", "-", "-", "disabled"]
    raw = Path(acc).read_bytes()
    assert b"another-long-pw" not in raw and b"$argon2id$" in raw


def test_a_wider_address_needs_tls_or_a_declared_proxy(site, tmp_path):
    path, accounts = site
    res = seatmon("web", "--site", str(path), "--accounts", str(accounts), "--host", "0.0.0.0")
    assert res.returncode == 2 and "not loopback" in res.stderr and "--behind-proxy" in res.stderr
    res = seatmon("web", "--site", str(path), "--accounts", str(accounts), "--host", "0.0.0.0", "--tls-cert", "x.pem")
    assert res.returncode == 2 and "go together" in res.stderr
    res = seatmon("web", "--site", str(path), "--accounts", str(accounts), "--trust-user-header", "X-Remote-User")
    assert res.returncode == 2 and "needs --behind-proxy" in res.stderr
    res = seatmon("web", "--site", str(tmp_path / "missing.toml"), "--accounts", str(accounts))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    res = seatmon("web", "--accounts", str(accounts))
    assert res.returncode == 2 and "no site file" in res.stderr
    (tmp_path / "broken.toml").write_text("[site\nid = 'hq'\n")
    res = seatmon("web", "--site", str(tmp_path / "broken.toml"), "--accounts", str(accounts))
    assert res.returncode == 2 and "broken.toml" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# ---- who sees what ------------------------------------------------------------------------------

URLS = ["/", "/account", "/board/hq/", "/board/hq/state", "/fleet", "/fleet?format=json"] + [
    f"/reports/{k}?site={s}{d}" for k in ("answers", "staffing", "safety", "units", "daily", "weekly", "monthly")
    for s in ("hq", "branch") for d in ("", "&format=csv", "&format=json")]
CAN = {"boss": {"board", "fleet", "answers", "staffing", "safety", "units", "daily", "weekly", "monthly"},
       "lea": {"board", "answers", "staffing", "safety", "units", "daily", "weekly", "monthly"},
       "tim": {"units", "fleet"}, "ada": set()}


def expected(name: str, url: str) -> set[int]:
    path = url.split("?")[0]
    if path == "/":
        return {303} if name == "ada" else {200}
    if path == "/account":
        return {200}
    view = "board" if path.startswith("/board") else path.rsplit("/", 1)[1]
    if view not in CAN[name] or (name == "lea" and "site=branch" in url):
        return {403}
    # A range with no data is a clear empty page, or 404 for a download.
    return {200, 404} if "format=" in url and "/reports/" in url else {200}


def test_every_role_gets_exactly_its_views_and_downloads_and_refusals_are_logged(web):
    for name in PASSWORDS:
        with web.client() as c:
            assert login(c, name).status_code == 303
            for url in URLS:
                if "/reports/" in url:
                    url += "&range=custom&from=2026-10-05&to=2026-10-06&day=2026-10-05&week=2026-W41&month=2026-10"
                r = c.get(url)
                assert r.status_code in expected(name, url), (name, url, r.status_code, r.text[:300])
    log = web.log.read_text()
    assert re.search(r"refused: user lea \(leader\) from 127\.0\.0\.1: GET /reports/answers\?site=branch", log)
    assert re.search(r"refused: user ada \(agent\) from 127\.0\.0\.1: GET /board/hq/", log)
    with web.client() as c:  # nobody logged in: the login page, or 401 for a download or stream
        assert c.get("/reports/answers?site=hq").status_code == 303
        assert c.get("/reports/answers?site=hq&format=json").status_code == 401
        assert c.get("/board/hq/events").status_code == 401


def test_a_head_asking_for_an_unknown_site_or_a_bad_date_gets_a_clear_page(web):
    with web.client() as c:
        login(c, "boss")
        r = c.get("/reports/answers?site=nowhere")
        assert r.status_code == 404 and "no site" in r.text
        r = c.get("/reports/answers?site=hq&range=custom&from=2026-13-01")
        assert r.status_code == 400 and "is not a date" in r.text and "Traceback" not in r.text
        r = c.get("/reports/answers?site=hq&range=custom&from=2020-01-01&to=2026-01-01&format=json")
        assert r.status_code == 400 and "longer than 366 days" in r.text


# ---- the views that name agents: who sees whom, the audit log -----------------------------------------

RANGE = "from=2026-10-05&to=2026-10-06"
PEOPLE_URLS = {  # url -> the accounts that may open it
    "/agents/a-017?month=2026-10": {"boss", "lea", "ada"},
    "/agents/a-017?month=2026-10&format=json": {"boss", "lea", "ada"},
    "/agents/a-018?month=2026-10": {"boss", "lea"},
    "/agents/a-018?month=2026-10&format=json": {"boss", "lea"},
    "/agents/a-019?month=2026-10&site=branch": {"boss"},
    f"/calls?agent=a-017&{RANGE}": {"boss", "lea", "ada"},
    f"/calls?agent=a-017&{RANGE}&format=csv": {"boss", "lea", "ada"},
    f"/calls?agent=a-018&{RANGE}": {"boss", "lea"},
    f"/calls?agent=a-018&{RANGE}&format=csv": {"boss", "lea"},
    f"/calls?agent=a-018&{RANGE}&format=json": {"boss", "lea"},
    f"/calls?agent=a-019&{RANGE}&site=branch": {"boss"},
    f"/calls?seat=S-002&{RANGE}&format=csv": {"boss", "lea"},  # an agent's listing is their own calls only:
}                                                              # ada never sat at S-002, so none (404)
AGENT_OWN_ONLY = {f"/calls?seat=S-002&{RANGE}&format=csv": 404}


def audit_lines(web) -> list[dict]:
    return [json.loads(line) for line in web.audit.read_text().splitlines()] if web.audit.exists() else []


def test_agent_pages_and_calls_by_role_refusals_are_audited(web):
    before = len(audit_lines(web))
    for name in PASSWORDS:
        with web.client() as c:
            assert login(c, name).status_code == 303
            for url, who in PEOPLE_URLS.items():
                r = c.get(url)
                want = 200 if name in who else AGENT_OWN_ONLY.get(url, 403) if name == "ada" else 403
                assert r.status_code == want, (name, url, r.status_code, r.text[:300])
                if r.status_code == 200 and "format=csv" in url:
                    agents = {row["agent"] for row in csv.DictReader(io.StringIO(r.text))}
                    assert agents and (name != "ada" or agents == {"a-017"}), (name, url, agents)
    lines = audit_lines(web)[before:]
    web_users = {e["user"] for e in lines}
    assert web_users <= set(PASSWORDS) and "ada" in web_users  # the web account, not the OS user
    refused = [e for e in lines if e["scope"].get("refused")]
    ada_refused = [e for e in refused if e["user"] == "ada"]
    assert {e["command"] for e in ada_refused} == {"web GET /agents/a-018", "web GET /calls",
                                                   "web GET /agents/a-019"}
    assert any(e["scope"]["query"].get("format") == "csv" and e["scope"]["agent"] == "a-018" for e in ada_refused)
    seen = [e for e in lines if not e["scope"].get("refused")]
    assert any(e["user"] == "ada" and e["command"] == "web GET /agents/a-017" and e["agents_named"] == 1
               and e["scope"]["from"] == "2026-10-01" for e in seen)
    # every view and download: one line
    assert len(seen) == sum(len(who) for who in PEOPLE_URLS.values()) + len(AGENT_OWN_ONLY)
    assert len([e for e in refused if e["user"] == "tim"]) == len(PEOPLE_URLS)
    log = web.log.read_text()
    assert re.search(r"refused: user ada \(agent\) from 127\.0\.0\.1: GET /agents/a-018\?month=2026-10: "
                     r"an agent account may not see agent a-018", log)


def test_reports_by_agent_and_the_monthly_agent_table_are_audited(web):
    before = len(audit_lines(web))
    with web.client() as c:
        login(c, "boss")
        r = c.get(f"/reports/answers?site=hq&range=custom&{RANGE}&by=agent&format=json")
        assert r.status_code == 200, r.text[:300]
        named = [g["group"] for g in r.json()["groups"] if g["group"] != "(unassigned)"]
        assert named
        r = c.get("/reports/monthly?site=hq&range=month&month=2026-10")
        assert r.status_code == 200 and "Answers by agent" in r.text
    lines = audit_lines(web)[before:]
    assert [(e["command"], e["user"]) for e in lines] == [("web GET /reports/answers", "boss"),
                                                          ("web GET /reports/monthly", "boss")]
    assert lines[1]["agents_named"] >= len(set(named))


def test_an_agent_lands_on_their_own_month_and_sees_only_themselves(web):
    with web.client() as c:
        login(c, "ada")
        r = c.get("/", follow_redirects=True)
        assert r.url.path == "/agents/a-017" and r.status_code == 404  # no month of theirs yet: a clear page
        assert "at no seat" in r.text
        r = c.get("/agents/a-017?month=2026-10")
        assert r.status_code == 200 and "Ada Byron" in r.text and "a-018" not in r.text and "Bo Chen" not in r.text
        page = c.get("/agents/a-017?month=2026-10&format=json").json()
        assert page["agent"] == "a-017" and page["seats"] == ["S-001"]
        listing = c.get(f"/calls?{RANGE}&format=json").json()  # their own calls without naming themselves
        assert listing["agent"] == "a-017" and {x["agent"] for x in listing["calls"]} == {"a-017"}
        assert page["figures"]["calls"] == len(listing["calls"])


@pytest.mark.parametrize("url", [f"/reports/answers?site=hq&range=custom&{RANGE}&by=seat",
                                 "/reports/daily?site=hq&day=2026-10-05", "/reports/monthly?site=hq&month=2026-10"])
def test_a_seats_figures_link_to_exactly_their_calls(web, url):
    with web.client() as c:
        login(c, "boss")
        page = c.get(url)
        links = re.findall(r'<a class="calls" href="([^"]+)">([0-9,]+)</a>', page.text)
        outcomes = {re.search(r"outcome=(\w+)", h).group(1) if "outcome=" in h else "" for h, _ in links}
        assert outcomes == {"", "timely", "late", "missed", "abandoned"} or outcomes >= {"", "timely"}, outcomes
        assert len(links) >= 6
        for href, figure in links:
            href = href.replace("&amp;", "&")
            listing = c.get(href + "&format=json")
            assert listing.status_code == 200, (href, listing.text)
            assert len(listing.json()["calls"]) == int(figure.replace(",", "")), href
            html = c.get(href)
            assert f'<span id="count">{figure.replace(",", "")}</span>' in html.text
        if "daily" in url:  # the links sit in the page's table of seats, for the page's day
            assert all("from=2026-10-05&amp;to=2026-10-05" in h for h, _ in links)


def test_bad_input_in_the_people_views_gets_a_clear_answer(web):
    with web.client() as c:
        login(c, "boss")
        for url, status, text in [
                ("/agents/nobody?month=2026-10", 404, "at no seat"),
                ("/agents/a-017?month=2026-13", 400, "is not a month"),
                ("/agents/a-017?month=2026-10&site=nowhere", 404, "no site"),
                ("/agents/a-017?month=2026-10&format=xml", 400, "format"),
                (f"/calls?{RANGE}", 400, "whose calls"),
                ("/calls?seat=S-001&from=2026-10-40", 400, "is not a date"),
                ("/calls?seat=S-001&from=2020-01-01&to=2026-01-01", 400, "longer than 366 days"),
                ("/calls?seat=S-001&from=2026-10-05&outcome=bogus", 400, "not one of"),
                ("/calls?seat=Z-999&from=2026-10-05", 400, "Z-999"),
                ("/calls?seat=S-001&from=2026-10-40&format=csv", 400, "is not a date")]:
            r = c.get(url)
            assert r.status_code == status and text in r.text and "Traceback" not in r.text, (url, r.status_code,
                                                                                             r.text[:400])


def test_a_view_naming_agents_is_refused_when_the_audit_log_cannot_be_written(site, tmp_path):
    path, accounts = site
    (tmp_path / "not-a-folder").write_text("")
    server = Web(path, accounts, tmp_path / "web.log", "--audit-log", str(tmp_path / "not-a-folder" / "a.jsonl"))
    try:
        with server.client() as c:
            login(c, "boss")
            r = c.get("/agents/a-017?month=2026-10")
            assert r.status_code == 503 and "audit log" in r.text and "a-017" not in r.text.split("<main>")[1]
            r = c.get(f"/calls?agent=a-017&{RANGE}&format=csv")
            assert r.status_code == 503 and r.text.count("\n") == 1
            assert c.get(f"/reports/answers?site=hq&range=custom&{RANGE}").status_code == 200  # no agent: shown
    finally:
        server.stop()
    assert "cannot write the audit log" in (tmp_path / "web.log").read_text()


# ---- the figures are the command's -------------------------------------------------------------------

@pytest.mark.parametrize("kind,by", [("answers", "seat"), ("answers", "hour"), ("safety", "seat"), ("staffing", "shift")])
def test_the_pages_downloads_are_the_commands_output(web, site, data, capsys, kind, by):
    path, _ = site
    args = ["report", kind, "--site-file", str(path), "--from", "2026-10-05", "--to", "2026-10-06", "--by", by]
    with web.client() as c:
        login(c, "boss")
        q = f"/reports/{kind}?site=hq&range=custom&from=2026-10-05&to=2026-10-06&by={by}"
        for fmt in ("json", "csv"):
            assert cli([*args, "--format", fmt]) == 0
            out = capsys.readouterr().out
            r = c.get(f"{q}&format={fmt}")
            assert r.status_code == 200, r.text
            assert r.text == out
            assert "attachment" in r.headers["content-disposition"]
        page = c.get(q)
        assert page.status_code == 200 and 'id="report"' in page.text and f"format=json" in page.text
    if kind == "answers" and by == "seat":
        assert cli([*args, "--format", "json"]) == 0
        total = json.loads(capsys.readouterr().out)["total"]
        assert total["calls"] == 3 * 2 * 12  # seats x days x calls: the seeded plan


# ---- sessions, CSRF, throttle, headers -------------------------------------------------------------------

def test_state_changing_requests_without_the_csrf_token_are_refused(web):
    with web.client() as c:
        c.get("/login")
        r = c.post("/login", data={"username": "boss", "password": PASSWORDS["boss"]})
        assert r.status_code == 403 and "security token" in r.text
        r = c.post("/login", data={"username": "boss", "password": PASSWORDS["boss"], "csrf_token": "forged"})
        assert r.status_code == 403
        assert c.get("/").status_code == 303  # still not logged in
        assert login(c, "boss").status_code == 303
        assert c.post("/logout", data={}).status_code == 403
        assert c.get("/").status_code == 200  # the forged logout did nothing
        home = c.get("/")
        assert c.post("/logout", data={"csrf_token": csrf_of(home.text)}).status_code == 303
        assert c.get("/").status_code == 303  # logged out


def test_the_session_id_changes_at_login_and_the_old_one_is_dead(web):
    with web.client() as c:
        c.get("/login")
        before = c.cookies["seatmon_session"]
        login(c, "lea")
        assert c.cookies["seatmon_session"] != before
    with web.client() as other:
        other.cookies.set("seatmon_session", before)
        assert other.get("/").status_code == 303


def test_login_attempts_are_throttled_per_account(web):
    with web.client() as c:
        for _ in range(5):
            r = login(c, "tim", "wrong-password-xx")
            assert r.status_code == 401 and "Wrong user name or password" in r.text
        r = login(c, "tim")  # the right password, but the account is locked out for now
        assert r.status_code == 429 and "Too many failed logins" in r.text
    assert "login of 'tim' from 127.0.0.1 refused: too many failed attempts" in web.log.read_text()


def test_security_headers_and_the_cookie(web):
    with web.client() as c:
        r = c.get("/login")
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        for url in ("/login", "/static/web.css"):
            h = c.get(url).headers
            assert "unsafe-inline" not in h["content-security-policy"].split("script-src")[1].split(";")[0]
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "same-origin" and "strict-transport-security" not in h  # no TLS here
        login(c, "boss")
        board = c.get("/board/hq/")
        nonce = re.search(r"'nonce-([^']+)'", board.headers["content-security-policy"]).group(1)
        assert f'<script nonce="{nonce}">' in board.text


def test_sessions_end_when_idle_and_after_their_lifetime(site, tmp_path):
    path, accounts = site
    server = Web(path, accounts, tmp_path / "web.log", "--session-idle", "2s", "--session-lifetime", "5s")
    try:
        with server.client() as c:
            assert login(c, "boss").status_code == 303
            assert c.get("/").status_code == 200
            time.sleep(2.5)
            assert c.get("/").status_code == 303  # idle too long
            assert login(c, "boss").status_code == 303
            started = time.monotonic()
            while time.monotonic() - started < 4.0:  # busy, never idle...
                assert c.get("/account").status_code == 200
                time.sleep(0.8)
            time.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
            assert c.get("/account").status_code == 303  # ...but past the lifetime
    finally:
        server.stop()


def test_a_disabled_account_is_logged_out_at_once(site, web):
    path, accounts = site
    seatmon("web", "--accounts", str(accounts), "user", "add", "dora", "--role", "head", "--password-stdin",
            stdin="dora-password-1\n")
    with web.client() as c:
        assert login(c, "dora", "dora-password-1").status_code == 303
        assert c.get("/").status_code == 200
        assert seatmon("web", "--accounts", str(accounts), "user", "disable", "dora").returncode == 0
        assert c.get("/").status_code == 303


# ---- the fleet view is `seatmon fleet status` ------------------------------------------------------

def test_the_fleet_view_shows_what_fleet_status_shows(web, site):
    path, _ = site
    res = seatmon("fleet", "status", "--site", str(path), "--json")
    assert res.returncode == 0, res.stderr
    with web.client() as c:
        login(c, "boss")  # a head sees the fleet too (the technician is locked out by the throttle test)
        r = c.get("/fleet?format=json")
        assert r.status_code == 200 and r.json() == json.loads(res.stdout)
        page = c.get("/fleet")
        assert all(row["unit"] in page.text for row in r.json())


# ---- TLS, and behind a proxy ----------------------------------------------------------------------------

def test_over_tls_the_cookie_is_secure_and_hsts_is_sent(site, tmp_path):
    path, accounts = site
    cert, key = tmp_path / "web.pem", tmp_path / "web.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    server = Web(path, accounts, tmp_path / "web.log", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        with server.client() as c:
            r = c.get("/login")
            assert r.headers["strict-transport-security"] == "max-age=31536000"
            assert "secure" in r.headers["set-cookie"].lower()
            assert login(c, "boss").status_code == 303 and c.get("/").status_code == 200
    finally:
        server.stop()


def test_behind_a_proxy_its_forwarded_client_scheme_and_user_are_trusted(site, tmp_path):
    path, accounts = site
    server = Web(path, accounts, tmp_path / "web.log", "--behind-proxy", "--trust-user-header", "X-Remote-User")
    proxied = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    try:
        with server.client() as c:
            r = c.get("/account", headers={**proxied, "X-Remote-User": "boss"})
            assert r.status_code == 200 and 'id="account-name">boss<' in r.text
            assert r.headers["strict-transport-security"]  # the proxy speaks HTTPS to the browser
            r = c.get("/reports/answers?site=branch", headers={**proxied, "X-Remote-User": "lea"})
            assert r.status_code == 403
            assert c.get("/account", headers={**proxied, "X-Remote-User": "nobody"}).status_code == 303
            assert c.get("/account", headers=proxied).status_code == 303  # no header, no session: log in
        assert re.search(r"refused: user lea \(leader\) from 203\.0\.113\.9: GET /reports/answers\?site=branch",
                         (tmp_path / "web.log").read_text())
    finally:
        server.stop()


def test_an_open_wallboard_stream_ends_with_its_session(site, tmp_path):
    path, accounts = site
    server = Web(path, accounts, tmp_path / "web.log", "--session-lifetime", "3s")
    try:
        with server.client() as c:
            assert login(c, "lea").status_code == 303
            started = time.monotonic()
            with c.stream("GET", "/board/hq/events") as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                lines = list(r.iter_lines())  # snapshot, then patches, until the server ends the stream
                assert lines[0] == "retry: 1000" and lines[1] == "event: snapshot"
            ended = time.monotonic() - started
            assert 3 <= ended < 3 + 5 + 3, ended  # at the first check after the lifetime (every 5 s)
            assert c.get("/board/hq/events").status_code == 401
    finally:
        server.stop()


def test_a_user_changes_their_password_on_the_account_page(site, web):
    _, accounts = site
    seatmon("web", "--accounts", str(accounts), "user", "add", "pia", "--role", "agent", "--agent-id", "a-2",
            "--password-stdin", stdin="pia-password-1\n")
    with web.client() as c, web.client() as elsewhere:
        assert login(c, "pia", "pia-password-1").status_code == 303
        assert login(elsewhere, "pia", "pia-password-1").status_code == 303
        form = {"current": "pia-password-1", "new": "pia-password-2", "again": "pia-password-2"}
        assert c.post("/account", data=form).status_code == 403  # no CSRF token
        token = csrf_of(c.get("/account").text)
        r = c.post("/account", data={**form, "current": "wrong-password", "csrf_token": token})
        assert r.status_code == 400 and "current password is wrong" in r.text
        r = c.post("/account", data={**form, "csrf_token": token})
        assert r.status_code == 200 and "Password changed" in r.text
        assert c.get("/account").status_code == 200  # this browser goes on...
        assert elsewhere.get("/account").status_code == 303  # ...the other logs in again
    with web.client() as c:
        assert login(c, "pia", "pia-password-1").status_code == 401
        assert login(c, "pia", "pia-password-2").status_code == 303
