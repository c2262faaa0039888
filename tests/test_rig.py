"""The rig's servers are the real Mosquitto and InfluxDB."""

import threading
import time

import paho.mqtt.client as mqtt
from influxdb_client import Point, WritePrecision

from collector.influx import InfluxV1
from tools.servers import influx_query


def test_broker_round_trip(mqtt_broker, unique_name):
    got = []
    done = threading.Event()

    def on_message(client, userdata, msg):
        got.append((msg.topic, msg.payload, msg.qos))
        done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name + "s", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(mqtt_broker.host, mqtt_broker.port)
    sub.subscribe(f"{unique_name}/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.2)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name + "p", protocol=mqtt.MQTTv5)
        pub.connect(mqtt_broker.host, mqtt_broker.port)
        pub.loop_start()
        pub.publish(f"{unique_name}/x", b"hello", qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
        assert done.wait(5), "message did not come back through the broker"
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got == [(f"{unique_name}/x", b"hello", 1)]


def test_influxdb_write_and_query(influxdb, unique_name):
    db = InfluxV1(influxdb.url, unique_name)
    db.create_database()
    point = Point("rig").tag("seat", "A-01").field("answer_ms", 6400).time(1763900000000, WritePrecision.MS)
    db.write_lines([point.to_line_protocol()])
    res = influx_query(influxdb.url, "SELECT answer_ms, seat FROM rig", db=unique_name)
    assert res["results"][0]["series"][0]["values"] == [[1763900000000, 6400, "A-01"]]
    version = db.ping()
    assert version.startswith("1."), version
