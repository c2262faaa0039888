"""`seatmon fleet`: the image build, bad input (one line, exit status 2,
nothing published), the ACL that lets only the updater write update topics,
and a rollout that stops when its canary fails, against a real Mosquitto
with TLS and the generated accounts and ACL."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from firmware import ota
from seatmon import cli
from shared import protocol as p
from tools import broker_config, fleet
from rig.servers import free_port
from virtual.labsite import loopback_site


@pytest.fixture
def lab(tmp_path, mosquitto_factory):
    port = free_port()
    site = loopback_site(tmp_path, port)
    broker = mosquitto_factory(port=port, config_file=tmp_path / "broker" / "mosquitto.conf")
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    return {"site": site, "broker": broker, "creds": creds, "tmp": tmp_path, "port": port}


def client_as(lab, user: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}", protocol=mqtt.MQTTv5)
    c.username_pw_set(user, lab["creds"][user])
    c.tls_set(ca_certs=str(lab["tmp"] / "tls" / "ca.pem"))
    c.connect("127.0.0.1", lab["port"])
    c.loop_start()
    return c


def retained(lab, topic: str, settle: float = 1.0) -> list[bytes]:
    got: list[bytes] = []
    c = client_as(lab, "collector")
    c.on_message = lambda cl, ud, m: got.append(m.payload) if m.retain and m.payload else None
    c.subscribe(topic, qos=1)
    time.sleep(settle)
    c.loop_stop()
    c.disconnect()
    return got


def answering_unit(lab, unit_id: str, *acks: dict) -> mqtt.Client:
    """A unit's account that answers every offer with `acks` (update_ack
    fields beyond v/site/unit/image), as a unit would."""
    site = lab["site"]
    unit = client_as(lab, unit_id)

    def answer(cl, ud, msg):
        if msg.payload.startswith(b"{"):
            image = json.loads(msg.payload[:msg.payload.rfind(b"\n")])["sha256"][:8]
            for ack in acks:
                cl.publish(p.topic(site.id, unit_id, p.UPDATE_ACK), p.encode(p.UPDATE_ACK, dict(
                    {"v": 1, "site": site.id, "unit": unit_id, "image": image}, **ack)), qos=1)

    unit.on_message = answer
    unit.subscribe(p.topic(site.id, unit_id, p.UPDATE), qos=1)
    time.sleep(0.5)
    return unit


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["fleet", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_image_is_the_provisioned_code_and_reproducible(lab):
    site = lab["site"]
    a = fleet.build_images(site, {"rev-a", "rev-b"}, lab["creds"][broker_config.OTA_KEY])
    b = fleet.build_images(site, {"rev-a", "rev-b"}, lab["creds"][broker_config.OTA_KEY])
    assert a["rev-a"].offer == b["rev-a"].offer and a["rev-a"].chunks == b["rev-a"].chunks
    offer = ota.open_offer(a["rev-b"].offer, lab["creds"][broker_config.OTA_KEY].encode())
    assert (offer["chip"], offer["hardware"]) == (site.data["hardware"]["rev-b"]["board"], "rev-b")
    paths = [path for path, _ in fleet.image_files()]
    assert "firmware/shell.mpy" in paths and "shared/protocol.mpy" in paths and "firmware/main.mpy" not in paths
    assert all(len(c) <= p.MAX_PAYLOAD for c in a["rev-a"].chunks)


def test_bad_input_is_one_line_and_exit_2(lab, capsys, tmp_path):
    site = lab["site"]
    code, _, err = run_cli(capsys, "update", "--site", str(tmp_path / "nope.toml"))
    assert code == 2 and err.count("\n") == 1 and "nope.toml" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(site.path.read_text().replace("[site]", "[sight]"))
    code, _, err = run_cli(capsys, "update", "--site", str(bad))
    assert code == 2 and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "update", "--site", str(site.path), "--units", "u-0001", "u-9999")
    assert code == 2 and err.count("\n") == 1 and "u-9999" in err, err
    code, _, err = run_cli(capsys, "update", "--site", str(site.path), "--canary", "-1")
    assert code == 2 and err.count("\n") == 1, err
    assert retained(lab, p.subscription(p.UPDATE, site=site.id)) == []  # nothing offered to anyone


def test_credentials_without_the_updater_or_key_are_bad_input(lab, capsys):
    site = lab["site"]
    path = site.relative(site.data["broker"]["credentials"])
    creds = dict(lab["creds"])
    del creds[broker_config.OTA_KEY]
    path.write_text(json.dumps(creds))
    code, _, err = run_cli(capsys, "update", "--site", str(site.path))
    assert code == 2 and err.count("\n") == 1 and "broker config" in err, err


def test_a_broker_refusing_the_updater_is_bad_input_and_offers_nothing(lab, capsys):
    site = lab["site"]
    path = site.relative(site.data["broker"]["credentials"])
    path.write_text(json.dumps(dict(lab["creds"], updater="wrong-password")))
    code, _, err = run_cli(capsys, "update", "--site", str(site.path), "--wait", "1")
    assert code == 2 and err.count("\n") == 1 and "refused updater" in err, err
    path.write_text(json.dumps(lab["creds"]))
    # An ACL from before updates: the broker takes the account but refuses its publish.
    acl = lab["tmp"] / "broker" / "acl"
    acl.write_text(acl.read_text().replace(f"user {broker_config.UPDATER}\n", "user someone-else\n"))
    lab["broker"].stop()
    lab["broker"].start()
    code, _, err = run_cli(capsys, "update", "--site", str(site.path), "--wait", "1")
    assert code == 2 and err.count("\n") == 1 and "refused" in err, err
    assert retained(lab, p.subscription(p.UPDATE, site=site.id)) == []


def test_only_the_updater_may_write_a_units_update_topic(lab):
    site = lab["site"]
    topic = p.topic(site.id, "u-0002", p.UPDATE)
    for user in ("u-0001", "technician", "collector"):  # a stolen account of any other kind
        c = client_as(lab, user)
        acks = {}
        c.on_publish = lambda cl, ud, mid, reason, props: acks.__setitem__(mid, reason)
        info = c.publish(topic, b"{}\nforged", qos=1, retain=True)
        deadline = time.monotonic() + 5
        while info.mid not in acks and c.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.loop_stop()
        c.disconnect()
    assert retained(lab, topic) == []
    c = client_as(lab, broker_config.UPDATER)
    c.publish(topic, b"offer", qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    assert retained(lab, topic) == [b"offer"]


def test_a_failing_canary_stops_the_rollout(lab, capsys):
    """u-0001 is the canary and refuses (as a unit answers a bad offer): the
    rollout stops, u-0001's offer is withdrawn and the others are never offered."""
    site = lab["site"]
    unit = answering_unit(lab, "u-0001", {"error": "version 0.1.0 is not newer than 0.1.0 (not forced)"})
    try:
        code, out, _ = run_cli(capsys, "update", "--site", str(site.path), "--canary", "1", "--wait", "20")
    finally:
        unit.loop_stop()
        unit.disconnect()
    assert code == 1, out
    assert "u-0001: refused: version 0.1.0 is not newer" in out
    assert "rollout stopped" in out and "u-0002" not in out and "u-0003" not in out
    assert retained(lab, p.subscription(p.UPDATE, site=site.id)) == []


def test_a_unit_that_rolled_back_is_reported_so_even_when_its_staged_answer_was_lost(lab, capsys):
    """The unit took every chunk, ran the image and rolled back; the host
    heard neither `staged` nor the rollback event before the retained offer
    came back: the unit's refusal says it rolled back, and so does the rollout."""
    site = lab["site"]
    unit = answering_unit(lab, "u-0001", {"next": 0, "of": 3},
                          {"error": "this image was rolled back on this unit", "rolled_back": True})
    try:
        code, out, _ = run_cli(capsys, "update", "--site", str(site.path), "--units", "u-0001", "--wait", "20")
    finally:
        unit.loop_stop()
        unit.disconnect()
    assert code == 1, out
    assert "u-0001: rolled_back: this image was rolled back on this unit" in out


def test_status_shows_versions_and_offers(lab, capsys):
    site = lab["site"]
    c = client_as(lab, "u-0001")
    c.publish(p.topic(site.id, "u-0001", p.STATUS), p.encode(p.STATUS, {
        "v": 1, "site": site.id, "unit": "u-0001", "state": "online", "ts": p.TS_MIN + 1, "boot": 1,
        "fw": "0.1.0", "reason": "power_on", "seat": "A-01"}), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    code, out, _ = run_cli(capsys, "status", "--site", str(site.path), "--json")
    assert code == 0
    rows = {r["unit"]: r for r in json.loads(out)}
    assert (rows["u-0001"]["state"], rows["u-0001"]["fw"]) == ("online", "0.1.0")
    assert rows["u-0002"]["state"] == "unknown"


def test_a_unit_already_running_the_version_is_not_offered_it(lab, capsys):
    site = lab["site"]
    c = client_as(lab, "u-0002")
    c.publish(p.topic(site.id, "u-0002", p.STATUS), p.encode(p.STATUS, {
        "v": 1, "site": site.id, "unit": "u-0002", "state": "online", "ts": p.TS_MIN + 1, "boot": 1,
        "fw": fleet.code_version(), "reason": "power_on", "seat": "A-02"}), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    code, out, _ = run_cli(capsys, "update", "--site", str(site.path), "--units", "u-0002", "--wait", "5")
    assert code == 0, out
    assert f"u-0002: already runs {fleet.code_version()}" in out
    assert retained(lab, p.subscription(p.UPDATE, site=site.id)) == []
