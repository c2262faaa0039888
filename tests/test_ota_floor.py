"""Over-the-air updates on a floor of five virtual boards at once (rev-a and
rev-b, provisioned from the stock-image path: `.mpy` files in /lib), real
Mosquitto with TLS and the generated ACL, the collector and InfluxDB, while
their phones ring:

  u-0001 (rev-a) takes the update cleanly;
  u-0002 (rev-a) loses power at a flash write during the update: it boots its
         old code, takes the retained offer again and finishes;
  u-0003 (rev-b) is offered an image signed with another key (a stolen
         updater account): it refuses it and keeps running;
  u-0004 (rev-b) gets an image whose code raises at boot: it rolls back by
         itself and says so;
  u-0005 (rev-a) is offline when the rollout starts and is updated when it returns.

At the end every board runs its intended version, and the calls made on the
pins equal the calls stored, each once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from collector.influx import InfluxV1
from shared import otaimage
from shared import protocol as p
from tests.test_ota_on_board import Observer, in_background, make_code
from tests.test_unit_on_board import stored_calls, tls_collector, wait_for
from tools import broker_config, fleet, flash
from rig.servers import free_port
from virtual.board import UnixBoard, for_revision
from virtual.desks import Desk
from virtual.labsite import loopback_site

UNITS = [("u-0001", "A-01", "rev-a"), ("u-0002", "A-02", "rev-a"), ("u-0003", "B-01", "rev-b"),
         ("u-0004", "B-02", "rev-b"), ("u-0005", "A-03", "rev-a")]


def fleet_update(site, *args: str) -> tuple[int, str]:
    """`seatmon fleet update` in a process of its own (two rollouts run at once)."""
    res = subprocess.run([sys.executable, "-m", "seatmon.cli", "fleet", "update", "--site", str(site.path), *args],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    return res.returncode, res.stdout + res.stderr


@pytest.mark.slow
def test_a_floor_of_boards_updated_while_phones_ring(tmp_path, mosquitto_factory, influxdb, unique_name):
    port = free_port()
    site = loopback_site(tmp_path, port, units=[u for u in UNITS])
    broker = mosquitto_factory(port=port, config_file=tmp_path / "broker" / "mosquitto.conf")
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    db = unique_name
    InfluxV1(influxdb.url, db).create_database()
    collector = tls_collector(site, port, creds["collector"], influxdb.url, db, tmp_path, tmp_path / "collector.toml")
    obs = Observer(site, port, tmp_path / "tls" / "ca.pem", creds["collector"])
    boards: dict[str, UnixBoard] = {}
    desks: dict[str, Desk] = {}
    made = dict.fromkeys([u for u, _, _ in UNITS], 0)
    stored = lambda unit: stored_calls(influxdb.url, db, unit)  # noqa: E731
    try:
        for unit_id, _, rev in UNITS:
            hw = site.data["hardware"][rev]
            board = boards[unit_id] = for_revision(tmp_path / f"{unit_id}.img", hw).start()
            board.wait_console(">>> ", 30)
            desks[unit_id] = Desk(board, dict(hw["pins"]))
            result = flash.provision(site, site.unit(unit_id), board.port, timeout=90, show_progress=False)
            assert result.ok, result.error or (result.selftest and result.selftest.output)
        for unit_id in made:
            wait_for(lambda: "0.1.0" in obs.births(unit_id), 90, f"{unit_id}'s birth")

        def ring(unit_id: str, n: int) -> None:
            for _ in range(n):
                desks[unit_id].call(rings=1, answer_after_ms=1500, talk_ms=1000)
                made[unit_id] += 1

        boards["u-0005"].wifi(False)
        good = make_code(tmp_path, "0.2.0")
        broken = make_code(tmp_path, "0.2.0", broken=True)
        rollout, rolled = in_background(fleet_update, site, "--units", "u-0001", "u-0002", "u-0005",
                                        "--code", str(good), "--wait", "300")
        bad, bad_out = in_background(fleet_update, site, "--units", "u-0004", "--code", str(broken), "--wait", "300")
        # A stolen updater account: a well-formed offer, signed with another key.
        thief = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="thief", protocol=mqtt.MQTTv5)
        thief.username_pw_set(broker_config.UPDATER, creds[broker_config.UPDATER])
        thief.tls_set(ca_certs=str(tmp_path / "tls" / "ca.pem"))
        thief.connect("127.0.0.1", port)
        thief.loop_start()
        forged, _ = otaimage.build(fleet.image_files(good), "0.2.0", "esp32-s3", "rev-b", b"not-the-site-key-00000")
        thief.publish(p.topic(site.id, "u-0003", p.UPDATE), forged, qos=1, retain=True).wait_for_publish(10)
        thief.loop_stop()
        thief.disconnect()

        callers = [threading.Thread(target=ring, args=(u, 2)) for u in ("u-0001", "u-0003", "u-0004")]
        for t in callers:
            t.start()
        wait_for(lambda: ("receiving", "0.2.0") in obs.updates("u-0002"), 90, "u-0002's transfer")
        boards["u-0002"].power_cut(after_writes=20)
        time.sleep(10)
        boards["u-0005"].wifi(True)  # back during the rollout
        for t in callers:
            t.join(120)
        rollout.join(400)
        bad.join(400)
        code, out = rolled["value"]
        assert code == 0, out
        code, out = bad_out["value"]
        assert code == 1 and "u-0004: rolled_back" in out, out
        ring("u-0002", 1)  # after its power cut and update
        ring("u-0005", 1)

        for unit_id in made:  # every board runs its intended version
            want = "0.1.0" if unit_id in ("u-0003", "u-0004") else "0.2.0"
            wait_for(lambda: obs.births(unit_id)[-1:] == [want], 90, f"{unit_id} on {want}")
        assert "0.1.0" in obs.births("u-0002")[1:]  # the old code came back after the cut
        wait_for(lambda: ("refused", "0.2.0") in obs.updates("u-0003"), 60, "u-0003's refusal")
        wait_for(lambda: ("rolled_back", "0.2.0") in obs.updates("u-0004"), 60, "u-0004's rollback")
        for unit_id, n in made.items():  # the calls made on the pins = the calls stored, each once
            wait_for(lambda: len(stored(unit_id)) >= n, 120, f"{unit_id}'s {n} calls")
        time.sleep(3)
        for unit_id, n in made.items():
            ids = [(c["boot"], c["seq"]) for c in stored(unit_id)]
            assert len(ids) == n and len(set(ids)) == n, (unit_id, n, ids)
    finally:
        obs.close()
        for b in boards.values():
            b.stop()
        collector.stop(flush_timeout=5)
        broker.stop()
