"""The load generator (rig/loadgen.py) against the real broker."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from shared import protocol as p
from rig.loadgen import LoadGen


def test_wait_published_leaves_nothing_queued_when_the_units_stop(mqtt_broker, unique_name):
    """Stopping right after publish() lost what was still queued in the MQTT
    client (a benchmark once received 66 events/s for it)."""
    got: set[tuple] = set()
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{unique_name}-sub", protocol=mqtt.MQTTv5)

    def on_message(client, userdata, msg):
        event = json.loads(msg.payload)
        got.add((event["unit"], event["boot"], event["seq"]))

    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.subscribe(p.subscription(p.EVENT, site=unique_name), qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        gen = LoadGen(mqtt_broker.host, mqtt_broker.port, unique_name, 2, heartbeat_every=0,
                      resend_after=float("inf")).start()
        gen.publish(3000)  # far more than the 100 in flight: most are still queued here
        assert gen.wait_published(60)
        assert gen.unpublished() == 0
        gen.stop()
        sent = gen.published_ids()
        deadline = time.monotonic() + 30
        while got != sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == sent and len(sent) == 6000
        assert gen.resends() == 0
    finally:
        sub.loop_stop()
        sub.disconnect()
