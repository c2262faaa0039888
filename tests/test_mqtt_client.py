"""The desk unit's own MQTT client (firmware/mqtt.py) against a real Mosquitto,
under CPython's asyncio (the same code runs on MicroPython's)."""

import asyncio
import time

import paho.mqtt.client as paho
import pytest

from firmware.mqtt import MQTTClient, MQTTError
from virtual.units.harness import Watcher, wait_until


def watch(broker, topic, name) -> Watcher:
    """A subscriber (virtual/units/harness.py) that is subscribed before the test publishes."""
    watcher = Watcher(broker.host, broker.port, topic, name)
    assert watcher.subscribed.wait(5), "the watcher's subscription was not acknowledged"
    return watcher


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_publish_qos1_gets_pubacks(mqtt_broker, unique_name):
    watcher = watch(mqtt_broker, f"{unique_name}/#", unique_name + "w")

    async def main():
        acked = []
        c = MQTTClient(unique_name, mqtt_broker.host, mqtt_broker.port, max_inflight=4)
        c.on_puback = acked.append
        await c.connect()
        pids = [await c.publish(f"{unique_name}/e", b"m%d" % i, qos=1) for i in range(20)]
        for _ in range(100):
            if len(acked) == 20:
                break
            await asyncio.sleep(0.02)
        await c.disconnect()
        return pids, acked

    pids, acked = run(main())
    assert sorted(acked) == sorted(pids) and len(set(pids)) == 20
    wait_until(lambda: len(watcher.got) >= 20, 5)
    got = list(watcher.got)
    watcher.close()
    assert [p for _, p, _ in got] == [b"m%d" % i for i in range(20)]


def test_retained_config_is_received_on_subscribe(mqtt_broker, unique_name):
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=unique_name + "p")
    pub.connect(mqtt_broker.host, mqtt_broker.port)
    pub.loop_start()
    pub.publish(f"{unique_name}/config", b'{"v":1}', qos=1, retain=True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    async def main():
        got = []
        c = MQTTClient(unique_name, mqtt_broker.host, mqtt_broker.port)
        c.on_message = lambda t, p, r: got.append((t, p, r))
        await c.connect()
        assert await c.subscribe([(f"{unique_name}/config", 1)]) == [1]
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        await c.disconnect()
        return got

    assert run(main()) == [(f"{unique_name}/config", b'{"v":1}', True)]


def test_last_will_fires_on_abort_not_on_disconnect(mqtt_broker, unique_name):
    watcher = watch(mqtt_broker, f"{unique_name}/status", unique_name + "w")

    async def main():
        will = (f"{unique_name}/status", b"offline", 1, False)
        c = MQTTClient(unique_name, mqtt_broker.host, mqtt_broker.port, will=will)
        await c.connect()
        await c.disconnect()  # clean: no will
        await asyncio.sleep(0.3)
        c = MQTTClient(unique_name, mqtt_broker.host, mqtt_broker.port, will=will)
        await c.connect()
        await c.abort("test kill")  # socket dropped: broker publishes the will

    run(main())
    wait_until(lambda: watcher.got, 5)
    time.sleep(0.3)
    watcher.close()
    assert [p for _, p, _ in watcher.got] == [b"offline"]


def test_keepalive_pings_keep_an_idle_connection_up(mqtt_broker, unique_name):
    async def main():
        c = MQTTClient(unique_name, mqtt_broker.host, mqtt_broker.port, keepalive=2)
        await c.connect()
        await asyncio.sleep(4.5)  # over 1.5 x keepalive: the broker would drop a silent client
        alive = c.connected
        pid = await c.publish(f"{unique_name}/x", b"still here", qos=1)
        await asyncio.sleep(0.2)
        await c.disconnect()
        return alive, pid, c.error

    alive, pid, error = run(main())
    assert alive and pid and error is None


def test_broker_going_away_is_noticed(mosquitto_factory, unique_name):
    broker = mosquitto_factory()

    async def main():
        c = MQTTClient(unique_name, broker.host, broker.port, keepalive=2)
        await c.connect()
        broker.kill()
        await asyncio.wait_for(c.wait_closed(), 5)
        with pytest.raises(MQTTError):
            await c.publish("x", b"y", qos=1)
        return c.error

    assert run(main())


def test_refused_credentials_raise(mosquitto_factory, tmp_path, unique_name):
    broker = mosquitto_factory()
    (tmp_path / "pw").write_text("")  # no accounts at all
    locked = mosquitto_factory(allow_anonymous=False, extra_config=f"password_file {tmp_path / 'pw'}")

    async def main():
        c = MQTTClient(unique_name, locked.host, locked.port, user="nobody", password="wrong")
        with pytest.raises(MQTTError, match="bad user name or password|not authorised"):
            await c.connect()
        ok = MQTTClient(unique_name, broker.host, broker.port)
        await ok.connect()
        await ok.disconnect()

    run(main())


def test_tls_with_the_site_ca(mosquitto_factory, tmp_path, unique_name):
    import ssl

    from tools.certs import make_ca_and_server
    from rig.servers import free_port

    certs = make_ca_and_server(tmp_path / "certs")
    tls_port = free_port()
    broker = mosquitto_factory(extra_config=(
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"
    ))
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))

    async def main():
        c = MQTTClient(unique_name, "localhost", tls_port, ssl=ctx)
        await c.connect()
        pid = await c.publish(f"{unique_name}/x", b"over tls", qos=1)
        await asyncio.sleep(0.2)
        await c.disconnect()
        untrusted = MQTTClient(unique_name + "u", "localhost", tls_port, ssl=ssl.create_default_context())
        with pytest.raises(ssl.SSLError):
            await untrusted.connect()
        return pid

    assert run(main()) == 1
    assert broker.proc.poll() is None


def test_a_huge_announced_packet_is_refused_not_allocated():
    # A broker (or anything on its port) announcing ~256 MB: the client closes
    # the connection at once instead of waiting to read and allocate it.
    async def fake_broker(reader, writer):
        await reader.read(1024)  # CONNECT
        writer.write(b"\x20\x02\x00\x00")  # CONNACK, accepted
        writer.write(b"\x30\xff\xff\xff\x7f")  # PUBLISH, remaining length 268 435 455, no body
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async def scenario():
        server = await asyncio.start_server(fake_broker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = MQTTClient("huge", "127.0.0.1", port, keepalive=30)
        await client.connect()
        await asyncio.wait_for(client.wait_closed(), 3)
        server.close()
        return client.error

    assert "268435455 bytes over the limit of 16384" in run(scenario())
