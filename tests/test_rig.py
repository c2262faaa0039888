"""The rig's servers are the real Mosquitto and InfluxDB."""

import threading
import time

import paho.mqtt.client as mqtt
from influxdb_client import Point, WritePrecision

from collector.influx import InfluxV1
from rig.servers import influx_query


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


def test_servers_start_without_code_between_fork_and_exec_and_die_with_their_parent(tmp_path):
    """No preexec_fn (a fork from a threaded test process may deadlock before
    exec): the parent-death signal is set by `setpriv` in the child. A test
    run killed outright leaves no server behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import rig.servers as servers

    seen = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    server = servers.Mosquitto(tmp_path / "m")
    subprocess.Popen = spy
    try:
        server.start()
    finally:
        subprocess.Popen = real
        server.stop()
    assert seen and all(kw.get("preexec_fn") is None for kw in seen)
    script = ("import sys, time; from rig.servers import Mosquitto; "
              f"m = Mosquitto({str(tmp_path / 'orphan')!r}).start(); print(m.proc.pid, flush=True); time.sleep(60)")
    parent = real([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=servers.Path(__file__).parents[1],
                  env=dict(os.environ, PYTHONPATH=str(servers.Path(__file__).parents[1])))
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the server outlived the process that started it")
