"""`seatmon board` end to end: a real Mosquitto and InfluxDB, the board as its
own process, protocol-valid unit traffic from a test-side publisher, and the
page in headless Chromium (Debian's, driven by playwright)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.influx import InfluxV1
from collector.schema import event_point
from shared import protocol
from rig.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UPDATE_S = 1.0  # the bar: the page shows each change within a second


def now_ms() -> int:
    return int(time.time() * 1000)


def shift_label(at_ms: int, name: str = "day", days_before: int = 0) -> str:
    """The shift label a unit would stamp on traffic sent at `at_ms` (UTC site):
    the board runs on the wall clock, so the test's shift follows it too."""
    day = datetime.fromtimestamp(at_ms / 1000, timezone.utc).date() - timedelta(days=days_before)
    return f"{day.isoformat()}/{name}"


# Every message of this module is stamped within minutes of the module's start.
SHIFT = shift_label(now_ms())


class Units:
    """Publishes what desk units publish (live, status, event), validated by
    shared.protocol.encode, on behalf of any unit of one site."""

    def __init__(self, host, port, site, client_id):
        self.site = site
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.connect(host, port)
        self.client.loop_start()

    def _pub(self, unit, channel, msg, qos=1, retain=False):
        topic = protocol.topic(self.site, unit, channel)
        self.client.publish(topic, protocol.encode(channel, msg), qos=qos, retain=retain).wait_for_publish(5)

    def live(self, unit, seat, state, since=None, **kw):
        msg = {"v": 1, "site": self.site, "unit": unit, "seat": seat, "state": state,
               "since": since or now_ms(), "pattern": "off", "missed_pending": False, "left_on": False,
               "shift": SHIFT, "ts": now_ms()}
        msg.update(kw)
        self._pub(unit, protocol.LIVE, msg, qos=0, retain=True)

    def status(self, unit, state, seat=None):
        msg = {"v": 1, "site": self.site, "unit": unit, "state": state}
        if state == "online":
            msg.update(ts=now_ms(), boot=1, fw="0.1.0", reason="power_on", seat=seat)
        self._pub(unit, protocol.STATUS, msg, retain=True)

    def call(self, unit, seat, outcome="answered", within=True, seq=None, boot=1):
        if seq is None:
            self.seq += 1
            seq = self.seq
        msg = call_event(self.site, unit, seat, seq, outcome, within, boot)
        self._pub(unit, protocol.EVENT, msg)
        return msg

    def update(self, unit, seat, step, version, boot=1):
        """An over-the-air update's step, as firmware/updater.py journals it."""
        self.seq += 1
        msg = {"v": 1, "kind": "update", "site": self.site, "unit": unit, "seat": seat, "boot": boot,
               "seq": self.seq, "ts": now_ms(), "clock": "ntp", "step": step, "version": version}
        self._pub(unit, protocol.EVENT, protocol.validate(protocol.EVENT, msg))

    def raw(self, unit, channel, payload: bytes):
        self.client.publish(protocol.topic(self.site, unit, channel), payload, qos=1).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def call_event(site, unit, seat, seq, outcome="answered", within=True, boot=1):
    msg = {"v": 1, "kind": "call", "site": site, "unit": unit, "seat": seat, "boot": boot, "seq": seq,
           "ts": now_ms() - 60000, "clock": "ntp", "shift": SHIFT, "outcome": outcome, "rings": 2,
           "ring_ms": 6000, "within_limit": outcome == "answered" and within, "limit_ms": 10000,
           "apology_prompted": False}
    if outcome == "answered":
        msg["answer_ms"] = 6000 if within else 12000
    return protocol.validate(protocol.EVENT, msg)


class BoardProcess:
    def __init__(self, tmp_path, config: str, env=None, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = tmp_path / "board.toml"
        cfg.write_text(textwrap.dedent(config))
        self.log = tmp_path / "board.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seatmon.cli", "board", "--config", str(cfg),
             "--listen", f"127.0.0.1:{self.port}"],
            cwd=ROOT, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})})

    def wait_ready(self, auth=None, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"board exited: {self.log.read_text()}"
            try:
                get(self.url + "/healthz", auth)
                return self
            except urllib.error.HTTPError:
                return self  # up (503 while the broker is not there yet)
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"board did not start: {self.log.read_text()}")

    def state(self, auth=None) -> dict:
        return json.loads(get(self.url + "/state", auth))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def get(url, auth=None, method="GET") -> bytes:
    req = urllib.request.Request(url, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read()


def health(board) -> dict:
    try:
        return json.loads(get(board.url + "/healthz"))
    except urllib.error.HTTPError as err:  # 503 while the broker is lost, same body
        return json.loads(err.read())


def board_config(host, port, site, client_id, influx_url=None, db=None, extra=""):
    influx = f'[influx]\nurl = "{influx_url}"\ndatabase = "{db}"\n' if influx_url else ""
    return (f'[mqtt]\nhost = "{host}"\nport = {port}\nclient_id = "{client_id}"\nkeepalive = 5\n'
            f'{influx}[board]\nsites = ["{site}"]\nnotice_ms = 1000\nlimit_ms = 2000\nupdate_ms = 100\n{extra}')


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run setup.sh (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # bypass_csp: the page forbids eval, which wait_for_function("...") needs
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
    pg = context.new_page()
    yield pg
    context.close()


def tile_sel(site, seat, **attrs):
    return f'.tile[data-seat="{site}/{seat}"]' + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())


# Runs as a unit until killed: connects with a Last Will, says it is online, sleeps.
UNIT_WITH_WILL = """
import sys, time
import paho.mqtt.client as mqtt
from shared import protocol
host, port, site, unit, seat = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unit, protocol=mqtt.MQTTv5)
c.will_set(protocol.topic(site, unit, protocol.STATUS),
           protocol.encode(protocol.STATUS, {"v": 1, "site": site, "unit": unit, "state": "offline"}), qos=1, retain=True)
c.connect(host, port, keepalive=5)
c.loop_start()
c.publish(protocol.topic(site, unit, protocol.STATUS), protocol.encode(protocol.STATUS, {
    "v": 1, "site": site, "unit": unit, "state": "online", "ts": int(time.time() * 1000), "seat": seat}),
    qos=1, retain=True).wait_for_publish(5)
print("up", flush=True)
time.sleep(3600)
"""


@pytest.mark.slow
def test_page_follows_a_seat_through_ringing_limit_call_and_last_will(mqtt_broker, tmp_path, unique_name, page):
    site = unique_name
    units = Units(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-pub")
    board = BoardProcess(tmp_path, board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board"))
    unit_proc = None
    try:
        units.live("u-1", "A-01", "idle")
        units.live("u-2", "A-02", "talking")
        board.wait_ready()
        page.goto(board.url + "/")
        page.wait_for_selector(tile_sel(site, "A-01", status="idle"), timeout=10000)
        page.wait_for_selector("body:not(.stale)", timeout=10000)
        page.evaluate("window.sameDocument = true")

        units.live("u-1", "A-01", "ringing", since=now_ms(), rings=1)
        page.wait_for_selector(tile_sel(site, "A-01", status="ringing", level="ring"), timeout=UPDATE_S * 1000)
        rang_at = time.monotonic()
        # notice at 1 s, limit at 2 s (this board's config), each shown within a second
        page.wait_for_selector(tile_sel(site, "A-01", level="notice"), timeout=(1 + UPDATE_S) * 1000)
        page.wait_for_selector(tile_sel(site, "A-01", level="limit"),
                               timeout=(2 - (time.monotonic() - rang_at) + UPDATE_S) * 1000)
        assert page.inner_text("#longest-label").endswith("A-01")
        assert page.get_attribute("#longest-box", "class") == "kpi limit"

        units.live("u-1", "A-01", "talking", since=now_ms())
        page.wait_for_selector(tile_sel(site, "A-01", status="talking"), timeout=UPDATE_S * 1000)
        assert page.inner_text("#longest") == "\u2013"

        units.call("u-1", "A-01", "answered", within=False)
        units.call("u-1", "A-01", "answered", within=True)
        page.wait_for_function("document.getElementById('calls').textContent === '2'", timeout=UPDATE_S * 1000)
        assert page.inner_text("#timeliness") == "50.0%"
        assert page.inner_text("#service") == "50.0%"
        assert SHIFT in page.inner_text("#shift")

        units.live("u-1", "A-01", "idle", missed_pending=True, left_on=True)
        page.wait_for_selector(tile_sel(site, "A-01", missed="true") + " .badge.missed", timeout=UPDATE_S * 1000)
        assert "LEFT ON" in page.inner_text(tile_sel(site, "A-01"))

        # A unit with a Last Will, killed: the broker says offline for it.
        unit_proc = subprocess.Popen(
            [sys.executable, "-c", UNIT_WITH_WILL, mqtt_broker.host, str(mqtt_broker.port), site, "u-2", "A-02"],
            cwd=ROOT, stdout=subprocess.PIPE)
        assert unit_proc.stdout.readline().strip() == b"up"
        unit_proc.kill()
        unit_proc.wait()
        page.wait_for_selector(tile_sel(site, "A-02", status="offline"), timeout=10000)
        assert "last seen" in page.inner_text(tile_sel(site, "A-02"))
        assert page.evaluate("window.sameDocument") is True  # never reloaded
    finally:
        if unit_proc and unit_proc.poll() is None:
            unit_proc.kill()
        board.stop()
        units.close()


@pytest.mark.slow
def test_page_shows_a_units_update_steps_on_its_tile(mqtt_broker, tmp_path, unique_name, page):
    """A unit's over-the-air update on its tile: under way, rolled back (in
    red, until the next step), then confirmed: the line goes and the tile
    carries the new version."""
    site = unique_name
    units = Units(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-pub")
    board = BoardProcess(tmp_path, board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board"))
    upd = tile_sel(site, "A-01") + " .update"
    try:
        units.status("u-1", "online", seat="A-01")
        units.live("u-1", "A-01", "idle")
        board.wait_ready()
        page.goto(board.url + "/")
        page.wait_for_selector(tile_sel(site, "A-01", status="idle"), timeout=10000)
        assert not page.is_visible(upd)

        units.update("u-1", "A-01", "receiving", "0.2.0")
        page.wait_for_selector(tile_sel(site, "A-01", update="receiving"), timeout=UPDATE_S * 1000)
        assert page.inner_text(upd) == "updating 0.2.0"
        units.update("u-1", "A-01", "staged", "0.2.0")
        units.update("u-1", "A-01", "rolled_back", "0.2.0", boot=2)
        page.wait_for_selector(tile_sel(site, "A-01", update="rolled_back", **{"update-trouble": "true"}),
                               timeout=UPDATE_S * 1000)
        assert page.inner_text(upd) == "rolled back from 0.2.0"
        assert page.get_attribute(tile_sel(site, "A-01"), "data-status") == "idle"  # the seat works on

        units.update("u-1", "A-01", "receiving", "0.2.1", boot=2)
        units.update("u-1", "A-01", "staged", "0.2.1", boot=2)
        units.update("u-1", "A-01", "confirmed", "0.2.1", boot=3)
        page.wait_for_selector(tile_sel(site, "A-01") + ":not([data-update])", timeout=UPDATE_S * 1000)
        assert not page.is_visible(upd)
        assert page.get_attribute(tile_sel(site, "A-01"), "title") == "unit u-1, code 0.2.1"
        t = board.state()["tiles"][0]
        assert (t["fw"], t["update"]) == ("0.2.1", None)
    finally:
        board.stop()
        units.close()


@pytest.mark.slow
def test_broker_restart_shows_stale_banner_then_recovers_without_reload(mosquitto_factory, tmp_path, unique_name,
                                                                        page):
    broker = mosquitto_factory(max_queued_messages=0)
    site = unique_name
    units = Units(broker.host, broker.port, site, unique_name + "-pub")
    board = BoardProcess(tmp_path, board_config(broker.host, broker.port, site, unique_name + "-board"))
    try:
        units.live("u-1", "A-01", "idle")
        board.wait_ready()
        page.goto(board.url + "/")
        page.wait_for_selector(tile_sel(site, "A-01", status="idle"), timeout=10000)
        units.call("u-1", "A-01")  # not retained: only once the board is subscribed
        page.wait_for_function("document.getElementById('calls').textContent === '1'", timeout=10000)
        page.evaluate("window.sameDocument = true")
        assert not page.is_visible("#stale")
        units.close()

        broker.stop()
        page.wait_for_selector("#stale", state="visible", timeout=10000)
        assert "lost the message broker" in page.inner_text("#stale")
        assert page.inner_text("#calls") == "\u2013"  # no stale numbers
        broker.start()

        page.wait_for_selector("#stale", state="hidden", timeout=15000)
        assert page.inner_text("#calls") == "1"
        units = Units(broker.host, broker.port, site, unique_name + "-pub2")
        units.live("u-1", "A-01", "ringing", since=now_ms(), rings=1)
        page.wait_for_selector(tile_sel(site, "A-01", status="ringing"), timeout=UPDATE_S * 1000)
        assert page.evaluate("window.sameDocument") is True
    finally:
        board.stop()
        units.close()


@pytest.mark.slow
def test_page_rides_out_a_board_restart(mqtt_broker, tmp_path, unique_name, page):
    site = unique_name
    units = Units(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-pub")
    cfg = board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board")
    board = BoardProcess(tmp_path, cfg)
    try:
        units.live("u-1", "A-01", "idle")
        board.wait_ready()
        page.goto(board.url + "/")
        page.wait_for_selector(tile_sel(site, "A-01", status="idle"), timeout=10000)
        page.evaluate("window.sameDocument = true")
        board.stop()
        page.wait_for_selector("#stale", state="visible", timeout=5000)
        assert "unreachable" in page.inner_text("#stale")
        board = BoardProcess(tmp_path, cfg, port=board.port)  # same address, new process
        board.wait_ready()
        page.wait_for_selector("#stale", state="hidden", timeout=10000)
        units.live("u-1", "A-01", "outgoing")
        page.wait_for_selector(tile_sel(site, "A-01", status="outgoing"), timeout=UPDATE_S * 1000)
        assert page.evaluate("window.sameDocument") is True
    finally:
        board.stop()
        units.close()


def test_start_fills_the_shift_from_influxdb_and_counts_live_duplicates_once(mqtt_broker, influxdb, tmp_path,
                                                                               unique_name):
    site = unique_name
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    stored = [call_event(site, "u-1", "A-01", 1, "answered", True),
              call_event(site, "u-1", "A-01", 2, "missed"),
              call_event(site, "u-2", "A-02", 1, "abandoned"),
              call_event(site, "u-2", "A-02", 2, "answered", True, boot=0)]
    other = dict(call_event(site, "u-1", "A-01", 3), shift=shift_label(now_ms(), "night", days_before=1))
    db.write_lines([event_point(m).to_line_protocol() for m in stored + [other]])
    units = Units(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-pub")
    board = BoardProcess(tmp_path, board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board",
                                                influxdb.url, unique_name))
    try:
        units.live("u-1", "A-01", "idle")
        board.wait_ready()

        def figures():
            h = board.state()["header"]
            return h["history"] == "ok" and h["figures"]

        fig = wait_for(figures, what="stored calls loaded")
        assert (fig["calls"], fig["answered"], fig["timely"], fig["missed"]) == (4, 2, 2, 1)
        units.call("u-1", "A-01", seq=1)  # already stored: not counted again
        units.call("u-1", "A-01", "answered", within=False, seq=4)  # new
        fig = wait_for(lambda: board.state()["header"]["figures"]["calls"] == 5 and board.state()["header"]["figures"],
                       what="live call counted")
        assert (fig["answered"], fig["timely"], fig["missed"]) == (3, 2, 1)
        assert fig["timeliness_rate"] == pytest.approx(2 / 5)
        assert fig["service_level"] == pytest.approx(2 / 4)
    finally:
        board.stop()
        units.close()


def test_stored_calls_of_a_shift_are_read_in_both_schemas(influxdb, unique_name, caplog):
    # Calls of one shift stored before the label became a field (label as a tag) and after; a call of the
    # night before in both schemas too, and one of another site: the shift's own four are read, once each.
    from seatmon.report.oldschema import old_event_line
    from seatmon.wallboard.history import load_shift_calls

    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    t = 1795420800000  # 2026-11-23T08:00:00Z
    label, night = "2026-11-23/day", "2026-11-22/night"

    def call(seq, outcome="answered", shift=label, site="hq", unit="u-1"):
        return dict(call_event(site, unit, "A-01", seq, outcome), ts=t + seq * 1000, shift=shift)

    old = [call(1), call(2, "missed"), call(3, shift=night)]
    new = [call(4), call(5, "abandoned", unit="u-2"), call(6, shift=night), call(7, site="west")]
    db.write_lines([old_event_line(m) for m in old] + [event_point(m).to_line_protocol() for m in new])
    rows = load_shift_calls(db, label, ["hq"])
    assert sorted(rows) == [("u-1", 1, 1, 1, 1, 0), ("u-1", 1, 2, 0, 0, 1), ("u-1", 1, 4, 1, 1, 0),
                            ("u-2", 1, 5, 0, 0, 0)]
    assert "seatmon collect migrate" in caplog.text


def test_bad_messages_are_dropped_and_the_board_carries_on(mqtt_broker, tmp_path, unique_name):
    site = unique_name
    units = Units(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-pub")
    board = BoardProcess(tmp_path, board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board"))
    try:
        board.wait_ready()
        wait_for(lambda: health(board)["mqtt"] == "connected", what="board connected")
        units.raw("u-1", protocol.LIVE, b"{not json")
        units.raw("u-1", protocol.EVENT, b'{"v":1,"kind":"coffee"}')
        units.raw("u-1", protocol.STATUS, json.dumps({"v": 1, "site": site, "unit": "u-9", "state": "online"}).encode())
        units.live("u-1", "A-01", "outgoing")
        wait_for(lambda: [t["status"] for t in board.state()["tiles"]] == ["outgoing"], what="valid message applied")
        # The bad ones went at QoS1, the live one at QoS0: nothing orders the
        # board's handling of them, so wait for the count rather than read it once.
        wait_for(lambda: health(board)["bad_messages"] >= 3, what="the three bad messages counted")
        assert health(board)["bad_messages"] == 3
        assert board.proc.poll() is None
    finally:
        board.stop()
        units.close()


def test_basic_auth_and_read_only(mqtt_broker, tmp_path, unique_name):
    site = unique_name
    cfg = board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board",
                       extra='auth_user = "supervisor"\n')
    board = BoardProcess(tmp_path, cfg, env={"SEATMON_BOARD_PASSWORD": "wall-2026"})
    auth = ("supervisor", "wall-2026")
    try:
        board.wait_ready(auth)
        for path in ("/", "/state", "/events"):
            with pytest.raises(urllib.error.HTTPError) as err:
                get(board.url + path)
            assert err.value.code == 401
            assert "Basic" in err.value.headers["WWW-Authenticate"]
        with pytest.raises(urllib.error.HTTPError) as err:
            get(board.url + "/", ("supervisor", "wrong"))
        assert err.value.code == 401
        page = get(board.url + "/", auth).decode()
        assert "<script>" in page and "http" not in page.split("<body")[1]  # no external assets
        with pytest.raises(urllib.error.HTTPError) as err:
            get(board.url + "/state", auth, method="POST")
        assert err.value.code == 405
    finally:
        board.stop()


def test_cli_refuses_a_wide_listen_address_without_auth(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text('[board]\nlisten = "0.0.0.0:8080"\n')
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "board", "--config", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "requires basic auth" in res.stderr
    cfg.write_text('[board]\nlimit_ms = -1\n')
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "board", "--config", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "line 2: key 'board.limit_ms'" in res.stderr


def test_board_connects_over_tls_with_a_read_only_account(mosquitto_factory, tmp_path, unique_name):
    """The production set-up of docs/wallboard.md: TLS against the site CA and an
    account whose ACL only lets it read the four channels."""
    from tools.certs import make_ca_and_server

    certs = make_ca_and_server(tmp_path / "certs")
    pw, acl = tmp_path / "pw", tmp_path / "acl"
    pw.write_text("")
    for user, password in (("board", "board-pw"), ("unit", "unit-pw")):
        subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True)
    acl.write_text("user board\n" + "".join(f"topic read seatmon/v1/+/+/{ch}\n"
                                            for ch in ("live", "status", "heartbeat", "event"))
                   + "user unit\ntopic readwrite seatmon/#\n")
    tls_port = free_port()
    broker = mosquitto_factory(allow_anonymous=False, extra_config=(
        f"password_file {pw}\nacl_file {acl}\nlistener {tls_port} 127.0.0.1\n"
        f"cafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"))
    site = unique_name
    cfg = board_config("localhost", tls_port, site, unique_name + "-board",
                       extra="").replace("[mqtt]\n", f'[mqtt]\nusername = "board"\ntls_ca = "{certs["ca"]}"\n')
    board = BoardProcess(tmp_path, cfg, env={"SEATMON_MQTT_PASSWORD": "board-pw"})
    units = Units.__new__(Units)
    units.site, units.seq = site, 0
    units.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name + "-pub", protocol=mqtt.MQTTv5)
    units.client.username_pw_set("unit", "unit-pw")
    units.client.connect(broker.host, broker.port)
    units.client.loop_start()
    try:
        board.wait_ready()
        wait_for(lambda: health(board)["mqtt"] == "connected", what="board on TLS")
        units.live("u-1", "A-01", "talking")
        wait_for(lambda: [t["status"] for t in board.state()["tiles"]] == ["talking"], what="seat over TLS")
        assert "refused" not in board.log.read_text()  # the ACL lets it read every channel it needs
    finally:
        board.stop()
        units.close()


@pytest.mark.slow
def test_page_follows_a_virtual_desk_unit_running_the_real_firmware(mqtt_broker, tmp_path, unique_name, page):
    """The same journey driven by a virtual desk unit (the real firmware on a
    simulated board, `seatmon unit simulate` with a scripted call), then the
    unit's process killed: its Last Will turns the seat offline."""
    site = unique_name
    scenario = tmp_path / "scenario.json"
    # ms from the unit's start: ringing from 4 s, answered at 9 s (past this board's 2 s limit), talk until 60 s.
    scenario.write_text(json.dumps({"units": {"*": {"answered": [[4000, 9000, 60000]]}}}))
    board = BoardProcess(tmp_path, board_config(mqtt_broker.host, mqtt_broker.port, site, unique_name + "-board"))
    unit = None
    try:
        board.wait_ready()
        page.goto(board.url + "/")
        page.wait_for_selector("body:not(.stale)", timeout=10000)
        page.evaluate("window.sameDocument = true")
        unit = subprocess.Popen(
            [sys.executable, "-m", "seatmon.cli", "unit", "simulate", "--units", "1", "--site", site,
             "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}", "--procs", "1", "--keepalive", "5",
             "--scenario", str(scenario), "--data-dir", str(tmp_path / "units")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "unit.log", "wb"))
        seat = "S-0001"
        page.wait_for_selector(tile_sel(site, seat, status="idle"), timeout=15000)
        page.wait_for_selector(tile_sel(site, seat, status="ringing"), timeout=15000)
        rang_at = time.monotonic()
        page.wait_for_selector(tile_sel(site, seat, level="limit"),
                               timeout=(2 - (time.monotonic() - rang_at) + UPDATE_S) * 1000)
        page.wait_for_selector(tile_sel(site, seat, status="talking"), timeout=(5 + UPDATE_S) * 1000)
        answered_at = time.monotonic()
        assert answered_at - rang_at == pytest.approx(5, abs=UPDATE_S + 0.2)
        unit.kill()
        unit.wait()
        page.wait_for_selector(tile_sel(site, seat, status="offline"), timeout=10000)
        assert page.evaluate("window.sameDocument") is True  # never reloaded
    finally:
        if unit and unit.poll() is None:
            unit.kill()
        board.stop()


def test_the_board_warns_while_the_broker_is_unreachable(tmp_path, unique_name):
    dead = free_port()  # nothing listens there
    board = BoardProcess(tmp_path, board_config("127.0.0.1", dead, unique_name, unique_name + "-board"))
    try:
        board.wait_ready()
        line = wait_for(lambda: next((ln for ln in board.log.read_text().splitlines()
                                      if f"broker 127.0.0.1:{dead} unreachable" in ln), None),
                        timeout=30, what="a warning naming the broker")
        assert "Connection refused" in line and "WARNING" in line.upper(), line
        assert board.proc.poll() is None
    finally:
        board.stop()


class _Connections:
    """A LiveFeed sink that only records the broker coming and going."""

    def __init__(self):
        self.changes = []

    def connection(self, connected):
        self.changes.append(connected)

    def message(self, *args):
        pass


def test_two_boards_from_one_config_do_not_knock_each_other_off(tmp_path, mqtt_broker):
    # A second board from the same file (on another --listen) used to share the
    # first's client id: the broker dropped each as the other connected.
    from seatmon.wallboard.config import load
    from seatmon.wallboard.live import LiveFeed

    path = tmp_path / "board.toml"
    path.write_text(f'[mqtt]\nhost = "{mqtt_broker.host}"\nport = {mqtt_broker.port}\nkeepalive = 5\n')
    feeds = []
    for listen in (f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"):
        cfg = load(path)
        cfg.listen = listen
        feeds.append(LiveFeed(cfg, _Connections()))
    assert feeds[0].client_id != feeds[1].client_id
    try:
        for feed in feeds:
            feed.start()
        time.sleep(4)  # the shared id flapped within a second or two
        seen = [list(feed.sink.changes) for feed in feeds]
    finally:
        for feed in feeds:
            feed.stop()
    assert seen == [[True], [True]]
