"""`seatmon broker config` against a real Mosquitto: the generated password
file and ACL are loaded by the broker, which then refuses anonymous clients
and wrong passwords, drops a unit's publish under another unit's topics, and
lets the collector read everything."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from seatmon import cli
from shared import protocol
from tools import broker_config as bc
from tools import inventory as inv
from tools.certs import make_ca_and_server

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"


@pytest.fixture
def site(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "site.toml")
    return inv.load(tmp_path / "site.toml")


@pytest.fixture
def broker(site, tmp_path, mosquitto_factory):
    out = tmp_path / "broker"
    bc.write(site, out)
    # The generated accounts and ACL on a loopback listener (the TLS listener
    # of mosquitto.conf needs the site's certificates).
    server = mosquitto_factory(allow_anonymous=False,
                               extra_config=f"password_file {out / 'passwd'}\nacl_file {out / 'acl'}")
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    return server, creds


def _client(server, user=None, password=None):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-" + uuid.uuid4().hex[:8],
                    protocol=mqtt.MQTTv311)
    if user:
        c.username_pw_set(user, password)
    return c


def _connect_code(server, user=None, password=None):
    c = _client(server, user, password)
    result = []
    c.on_connect = lambda client, ud, flags, rc, props: result.append(rc)
    c.connect(server.host, server.port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not result and time.monotonic() < deadline:
        time.sleep(0.02)
    c.loop_stop()
    c.disconnect()
    return result[0] if result else None


def test_password_hash_matches_mosquitto_format():
    h = bc.hash_password("secret", salt=b"\x00" * 12)
    algo, iterations, salt, digest = h.split("$")[1:]
    assert (algo, iterations, salt) == ("7", "101", "AAAAAAAAAAAAAAAA")
    assert len(__import__("base64").b64decode(digest)) == 64


def test_refuses_anonymous_and_wrong_password(broker):
    server, creds = broker
    assert _connect_code(server).is_failure
    assert _connect_code(server, "u-0001", "wrong").is_failure
    assert _connect_code(server, "u-0001", creds["u-0001"]) == 0


def test_unit_cannot_speak_for_another_and_collector_reads_all(broker):
    server, creds = broker
    got = []
    collector = _client(server, "collector", creds["collector"])
    collector.on_message = lambda c, ud, msg: got.append(msg.topic)
    collector.connect(server.host, server.port)
    collector.loop_start()
    collector.subscribe("seatmon/v1/hq/#", qos=1)
    time.sleep(0.3)

    unit_a = _client(server, "u-0001", creds["u-0001"])
    unit_a.connect(server.host, server.port)
    unit_a.loop_start()
    own = protocol.topic("hq", "u-0001", protocol.EVENT)
    forged = protocol.topic("hq", "u-0002", protocol.EVENT)
    forged_ack = protocol.topic("hq", "u-0001", protocol.ACK)
    for t in (forged, forged_ack, own):  # the broker drops the first two silently (MQTT 3.1.1)
        unit_a.publish(t, b'{"v":1}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while own not in got and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # anything forged would have arrived by now, before or with `own`
    assert got == [own]

    # The collector may write acks; the unit reads its own only.
    seen = []
    unit_a.on_message = lambda c, ud, msg: seen.append(msg.topic)
    unit_a.subscribe(protocol.topic("hq", "u-0001", protocol.ACK), qos=1)
    unit_a.subscribe(protocol.topic("hq", "u-0002", protocol.ACK), qos=1)
    time.sleep(0.3)
    for unit in ("u-0002", "u-0001"):
        collector.publish(protocol.topic("hq", unit, protocol.ACK), b'{"v":1,"unit":"x","seq":1}', qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert seen == [protocol.topic("hq", "u-0001", protocol.ACK)]
    for c in (unit_a, collector):
        c.loop_stop()
        c.disconnect()


def test_passwords_written_once_0600_never_printed(site, tmp_path, capsys):
    args = ["broker", "config", "--site", str(site.path), "--out", str(tmp_path / "b")]
    assert cli.main(args) == 0
    cred_path = site.relative(site.data["broker"]["credentials"])
    first = json.loads(cred_path.read_text())
    assert set(first) == {"collector", "wallboard", "technician", "updater", "ota_key", "u-0001", "u-0002", "u-0003"}
    assert "ota_key" not in (tmp_path / "b" / "passwd").read_text()  # the update key is no broker account
    assert stat.S_IMODE(cred_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "b" / "passwd").stat().st_mode) == 0o600
    assert cli.main(args) == 0
    assert json.loads(cred_path.read_text()) == first  # not regenerated
    out = capsys.readouterr()
    for password in first.values():
        assert password not in out.out + out.err
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "max_queued_messages 0" in conf


def _directives(text):
    return dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_generated_conf_matches_the_shipped_settings_and_warns_of_missing_tls_files(site, tmp_path, capsys):
    assert cli.main(["broker", "config", "--site", str(site.path), "--out", str(tmp_path / "b")]) == 0
    generated = _directives((tmp_path / "b" / "mosquitto.conf").read_text())
    shipped = _directives((EXAMPLE.parent / "mosquitto" / "seatmon.conf").read_text())
    for key in ("max_inflight_messages", "max_queued_messages", "max_queued_bytes", "persistence"):
        assert generated[key] == shipped[key], key
    err = capsys.readouterr().err
    text = site.path.read_text()
    for key, name in (("ca", "tls/ca.pem"), ("cert", "tls/broker.pem"), ("key", "tls/broker.key")):
        line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith(f"{key} ="))
        assert f"site.toml:{line}: broker.{key}: no such file {tmp_path / name}" in err
    assert "Mosquitto will not start" in err
    # With the files in place: no warning.
    _make_tls(tmp_path / "tls")
    assert cli.main(["broker", "config", "--site", str(site.path), "--out", str(tmp_path / "b")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_acl_lets_units_publish_live_and_the_wallboard_read_it(site):
    acl = bc.acl_text(site)
    blocks = {b.split("\n", 1)[0]: b for b in acl.split("\n\n")}
    assert "topic write seatmon/v1/hq/u-0003/live" in blocks["user u-0003"]
    for ch in ("live", "event", "status", "heartbeat"):
        assert f"topic read seatmon/v1/hq/+/{ch}" in blocks["user wallboard"]


def test_config_push_is_retained_for_the_unit(broker, site, capsys):
    server, creds = broker
    code = cli.main(["unit", "config", "push", "--site", str(site.path), "--unit", "u-0002",
                     "--broker", f"{server.host}:{server.port}", "--no-tls"])
    assert code == 0
    # "published" is the broker's receipt, not the unit's: it says so, and where a refusal shows
    said = capsys.readouterr().out
    assert "the unit has not confirmed it" in said and "config_rejected" in said
    got = []
    unit = _client(server, "u-0002", creds["u-0002"])
    unit.on_message = lambda c, ud, msg: got.append(msg)
    unit.connect(server.host, server.port)
    unit.loop_start()
    unit.subscribe(protocol.topic("hq", "u-0002", protocol.CONFIG), qos=1)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    unit.loop_stop()
    unit.disconnect()
    assert len(got) == 1 and got[0].retain
    msg = protocol.decode(protocol.CONFIG, got[0].payload)
    assert msg["config"] == inv.unit_config(site, site.unit("u-0002"))


def test_mqtt5_puback_says_not_authorized_for_a_forged_config(broker):
    from tools import unit_config

    server, creds = broker
    client = unit_config.connect(server.host, server.port, "u-0001", creds["u-0001"])
    try:
        with pytest.raises(unit_config.PushError, match="Not authorized"):
            unit_config.publish_retained(client, protocol.topic("hq", "u-0002", protocol.CONFIG), b"{}")
    finally:
        client.loop_stop()
        client.disconnect()
    with pytest.raises(unit_config.PushError, match="refused"):
        unit_config.connect(server.host, server.port, "u-0001", "wrong")


def _make_tls(folder: Path) -> None:
    """A CA and a broker certificate for 127.0.0.1, under the names the example inventory uses."""
    certs = make_ca_and_server(folder / "made")
    for made, name in ((certs["ca"], "ca.pem"), (certs["cert"], "broker.pem"), (certs["key"], "broker.key")):
        shutil.copy(made, folder / name)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (setup.sh installs it)")
def test_generated_mosquitto_conf_runs_with_tls(tmp_path, mosquitto_factory):
    from rig.servers import free_port
    from tools import unit_config

    (tmp_path / "tls").mkdir()
    _make_tls(tmp_path / "tls")
    port = free_port()
    text = EXAMPLE.read_text().replace("port = 8883", f"port = {port}").replace('host = "mqtt.hq.example"', 'host = "127.0.0.1"')
    (tmp_path / "site.toml").write_text(text)
    site = inv.load(tmp_path / "site.toml")
    out = tmp_path / "broker"
    bc.write(site, out, persistence_dir=str(tmp_path / "data") + "/")
    conf = out / "mosquitto.conf"
    if os.geteuid() == 0:  # as servers.Mosquitto does: root would drop to a user who cannot enter tmp dirs
        conf.write_text(conf.read_text() + "user root\n")
    server = mosquitto_factory(port=port, config_file=conf)
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    ca = tmp_path / "tls" / "ca.pem"
    with pytest.raises(unit_config.PushError, match="refused"):
        unit_config.connect("127.0.0.1", server.port, "u-0001", "wrong", ca)
    client = unit_config.connect("127.0.0.1", server.port, "u-0001", creds["u-0001"], ca)
    client.loop_stop()
    client.disconnect()
    # the real push, over TLS, as a technician would run it
    assert cli.main(["unit", "config", "push", "--site", str(site.path), "--unit", "u-0001"]) == 0


def test_config_push_without_credentials_says_what_to_run(site, capsys):
    code = cli.main(["unit", "config", "push", "--site", str(site.path), "--unit", "u-0001"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("seatmon unit config push: no credentials file ")
    assert "run `seatmon broker config --site" in err and "Errno" not in err


def test_collectors_of_a_shared_group_can_tell_each_other_what_they_stored(broker):
    # Without this the generated ACL silently dropped the peer messages of a
    # `shared_group` setup (Mosquitto denies without telling an MQTT 3.1.1 client).
    from collector.service import peer_topic

    server, creds = broker
    assert bc.peer_topics() == peer_topic(protocol.DEFAULT_PREFIX, "+")
    topic = peer_topic(protocol.DEFAULT_PREFIX, "floor")
    got = []
    reader = _client(server, "collector", creds["collector"])
    reader.on_message = lambda c, ud, msg: got.append(msg.payload)
    reader.connect(server.host, server.port)
    reader.loop_start()
    reader.subscribe(topic, qos=1)
    time.sleep(0.3)
    writers = []
    for user, payload in (("u-0001", b"forged"), ("collector", b"stored")):
        w = _client(server, user, creds[user])
        w.connect(server.host, server.port)
        w.loop_start()
        w.publish(topic, payload, qos=1).wait_for_publish(5)
        writers.append(w)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert got == [b"stored"]
    for c in (reader, *writers):
        c.loop_stop()
        c.disconnect()


def test_broker_certs_and_a_lab_config_make_a_broker_that_runs_as_generated(tmp_path, mosquitto_factory, capsys):
    from rig.servers import free_port

    port = free_port()
    text = EXAMPLE.read_text().replace("port = 8883", f"port = {port}").replace('host = "mqtt.hq.example"',
                                                                                'host = "127.0.0.1"')
    (tmp_path / "site.toml").write_text(text)
    site = str(tmp_path / "site.toml")
    assert cli.main(["broker", "certs", "--site", site]) == 0
    made = capsys.readouterr().out
    assert "made the site CA" in made and "made the broker certificate" in made
    for secret in ("tls/ca.key", "tls/broker.key"):
        assert stat.S_IMODE((tmp_path / secret).stat().st_mode) == 0o600, secret
    out = tmp_path / "broker"
    assert cli.main(["broker", "config", "--site", site, "--out", str(out), "--lab"]) == 0
    assert "warning" not in capsys.readouterr().err
    conf = _directives((out / "mosquitto.conf").read_text())
    assert conf["listener"] == f"{port} 127.0.0.1" and conf["persistence_location"] == f"{out / 'data'}/"
    server = mosquitto_factory(port=port, config_file=out / "mosquitto.conf")  # as written, no edits
    assert server.port == port
    assert cli.main(["unit", "config", "push", "--site", site, "--unit", "u-0001"]) == 0  # TLS, verified
    # Again: the CA every unit trusts and the broker's pair are kept.
    ca = (tmp_path / "tls/ca.pem").read_bytes()
    assert cli.main(["broker", "certs", "--site", site]) == 0
    assert "kept the broker certificate" in capsys.readouterr().out
    assert (tmp_path / "tls/ca.pem").read_bytes() == ca
    # A new broker certificate from the kept CA, when the pair is deleted.
    (tmp_path / "tls/broker.pem").unlink()
    assert cli.main(["broker", "certs", "--site", site]) == 0
    assert (tmp_path / "tls/ca.pem").read_bytes() == ca and (tmp_path / "tls/broker.pem").exists()


def test_config_push_waits_until_the_units_heartbeat_says_it_runs_it(broker, site, tmp_path, capsys):
    # A unit running the real firmware (virtual, CPython) on its own account and
    # ACL: `--wait` ends when its heartbeat names the pushed config, not at "published".
    from virtual.units.harness import UnitThread
    from virtual.units.unit import VirtualUnit

    server, creds = broker
    args = ["unit", "config", "push", "--site", str(site.path), "--unit", "u-0002",
            "--broker", f"{server.host}:{server.port}", "--no-tls"]
    assert cli.main([*args, "--wait", "2"]) == 1  # no unit online: it says so, exit 1
    assert "did not report running it within 2 s" in capsys.readouterr().err
    vu = VirtualUnit(str(tmp_path / "u2"), "hq", 2, (server.host, server.port), seed=1,
                     secrets={"mqtt_user": "u-0002", "mqtt_password": creds["u-0002"]},
                     link={"heartbeat_ms": 1000}, traffic={"calls_per_hour": 0.0, "outgoing_per_hour": 0.0})
    run = UnitThread(vu)
    try:
        assert cli.main([*args, "--wait", "30"]) == 0
        said = capsys.readouterr().out
        assert "u-0002 runs it" in said, said
        assert vu.unit.core.conf["limit_ms"] == 12000  # the site's override for u-0002
    finally:
        run.stop()
