"""Publish a unit's configuration: `{"v":1,"config":{...}}` (docs/protocol.md),
retained, QoS1, on seatmon/v1/<site>/<unit>/config, with paho-mqtt 2.x and
the technician account from the site's credentials file."""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware.mqtt import MAX_PACKET
from seatmon import options
from shared import protocol
from tools import broker_config
from tools import inventory as inv


class PushError(RuntimeError):
    """Bad input (inventory, credentials, options): exit status 2."""


class ServerError(PushError):
    """The broker is unreachable, refused us, or did not answer: exit status 1."""


def config_id(conf: dict) -> str:
    """The id a unit echoes in its heartbeats while it runs `conf`: the same
    config gets the same id, so pushing it again is recognised."""
    return hashlib.sha256(json.dumps(conf, sort_keys=True).encode()).hexdigest()[:12]


def config_message(site: inv.Site, unit: dict, with_id: bool = False) -> tuple[str, bytes]:
    """(topic, payload) for the unit's config; validated on the way. `with_id`:
    name it (units older than the `id` field refuse such a message)."""
    conf = inv.unit_config(site, unit)
    inv.validate_with_firmware(conf)
    msg = {"v": protocol.VERSION, "config": conf}
    if with_id:
        msg["id"] = config_id(conf)
    payload = protocol.encode(protocol.CONFIG, msg)
    topic = protocol.topic(site.id, unit["id"], protocol.CONFIG)
    size = 2 + len(topic) + 2 + len(payload)  # the PUBLISH packet the unit must read
    if size > MAX_PACKET:
        raise PushError(f"{unit['id']}'s config makes a {size}-byte message; the unit accepts at most {MAX_PACKET} "
                        "(fewer overrides or shifts)")
    return topic, payload


def connect(host: str, port: int, user: str, password: str, ca: Path | None = None) -> mqtt.Client:
    """An MQTT v5 client, connected and looping; raises PushError if refused."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="seatmon-push-" + uuid.uuid4().hex[:8],
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    answer = []
    client.on_connect = lambda c, ud, flags, reason, props: answer.append(reason)
    try:
        client.connect(host, port)
    except OSError as exc:
        raise ServerError(f"cannot reach the broker at {host}:{port}: {exc.strerror or exc}") from None
    client.loop_start()
    deadline = time.monotonic() + 10
    while not answer and time.monotonic() < deadline:
        time.sleep(0.01)
    if not answer or answer[0].is_failure:
        client.loop_stop()
        raise ServerError(f"the broker at {host}:{port} refused {user}: {answer[0] if answer else 'no answer'}")
    return client


def publish_retained(client: mqtt.Client, topic: str, payload: bytes, timeout: float = 10.0) -> None:
    """Publish retained at QoS1 and check the PUBACK's reason code: with MQTT
    v5 Mosquitto answers 0x87 (not authorized) when the ACL forbids it."""
    acks = {}
    client.on_publish = lambda c, ud, mid, reason, props: acks.__setitem__(mid, reason)
    info = client.publish(topic, payload, qos=1, retain=True)
    deadline = time.monotonic() + timeout
    while info.mid not in acks and time.monotonic() < deadline:
        time.sleep(0.01)
    if info.mid not in acks:
        raise ServerError(f"the broker did not acknowledge {topic} within {timeout:.0f} s")
    if acks[info.mid].is_failure:
        raise ServerError(f"the broker refused {topic}: {acks[info.mid]}")


def wait_running(client: mqtt.Client, wanted: str, wait_s: float) -> dict | None:
    """The first heartbeat of the unit that reports running config `wanted`
    (None when none came within `wait_s`); subscribe before publishing."""
    seen: list[dict] = []

    def on_message(c, userdata, m):
        try:
            beat = protocol.decode(protocol.HEARTBEAT, m.payload)
        except protocol.ProtocolError:
            return
        if beat.get("config") == wanted:
            seen.append(beat)

    client.on_message = on_message
    deadline = time.monotonic() + wait_s
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen[0] if seen else None


def push(site: inv.Site, unit: dict, *, host: str | None = None, port: int | None = None,
         tls: bool = True, timeout: float = 10.0, wait_s: float = 0) -> tuple[str, dict | None]:
    """Publish the unit's config; with `wait_s`, wait that long for a heartbeat
    saying the unit runs it. (topic, that heartbeat or None)"""
    topic, payload = config_message(site, unit, with_id=wait_s > 0)
    b = site.data["broker"]
    creds = broker_config.read_credentials(site, PushError)
    if broker_config.TECHNICIAN not in creds:
        raise PushError("no technician account in the credentials file: run `seatmon broker config` first")
    tls = tls and inv.broker_tls(site)
    ca = site.relative(b["ca"]) if tls else None
    if ca is not None and not ca.is_file():
        raise PushError(f"no CA certificate {ca} (broker.ca in {site.path}): put the site CA there, "
                        "or use --no-tls with a lab broker")
    client = connect(host or b["host"], port or b.get("port", 8883 if tls else 1883), broker_config.TECHNICIAN,
                     creds[broker_config.TECHNICIAN], ca)
    beat = None
    try:
        if wait_s > 0:
            client.subscribe(protocol.topic(site.id, unit["id"], protocol.HEARTBEAT), qos=0)
        publish_retained(client, topic, payload, timeout)
        if wait_s > 0:
            beat = wait_running(client, protocol.decode(protocol.CONFIG, payload)["id"], wait_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return topic, beat


def add_arguments(parser) -> None:
    parser.add_argument("--site", required=True, type=Path, help="the site inventory (site.toml)")
    parser.add_argument("--unit", required=True, help="the unit id")
    parser.add_argument("--broker", type=options.host_port, help="HOST:PORT instead of the inventory's broker (e.g. a lab broker)")
    parser.add_argument("--no-tls", action="store_true", help="plain MQTT (lab brokers only)")
    parser.add_argument("--wait", type=options.positive_float, metavar="SECONDS",
                        help="wait this long for the unit's heartbeat to say it runs the new config (heartbeats "
                             "come every minute: e.g. --wait 90); exit 1 if it does not")


def main(args) -> int:
    try:
        site = inv.load(args.site)
        unit = site.unit(args.unit)
        host, port = args.broker or (None, None)
        topic, beat = push(site, unit, host=host, port=port, tls=not args.no_tls, wait_s=args.wait or 0)
    except ServerError as exc:
        print(f"seatmon unit config push: {exc}", file=sys.stderr)
        return 1
    except (inv.InventoryError, protocol.ProtocolError, PushError, OSError, ValueError) as exc:
        print(f"seatmon unit config push: {exc}", file=sys.stderr)
        return 2
    if beat is not None:
        print(f"published {args.unit}'s config on {topic} (retained), and {args.unit} runs it "
              f"(its heartbeat of boot {beat['boot']} says so)")
        return 0
    print(f"published {args.unit}'s config on {topic} (retained); the broker has it, the unit has not confirmed it: "
          "it applies it as soon as it reads the topic (at once while online, else when it next connects) and "
          "refuses an invalid one with a config_rejected fault event (seatmon report units counts fault events)"
          + ("" if args.wait else "; --wait 90 waits for its heartbeat to say it runs it"))
    if args.wait:
        print(f"seatmon unit config push: {args.unit} did not report running it within {args.wait:g} s: it is "
              "offline, has not read it yet, or refused it (a config_rejected fault event)", file=sys.stderr)
        return 1
    return 0
