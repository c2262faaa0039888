"""Reconnect spread of real-MicroPython desk units after a broker restart.

    python -m bench.bench_reconnect_boards [--boards 4]

Provisions N virtual boards (virtual/board.py: the MicroPython unix port,
the unit as shipped, TLS to the site's broker), waits until every unit is
online, restarts the broker and records when each unit's `online` birth
arrives again. Prints JSON: seconds from the broker's return to each birth,
and their spread. There is no baseline run here: before the jitter every
unit waited the same fixed step, and the virtual units of
tests/test_link_backoff.py (the same firmware code in CPython, 40 units)
measured that: all 40 back within the same 10 ms. 40 boards (40 MicroPython
processes in real time) do not fit a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from shared import protocol as p
from tools import flash
from rig.servers import Mosquitto, free_port
from virtual.board import UnixBoard
from virtual.labsite import loopback_site


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reconnect-"))
    port = free_port()
    units = [("u-%04d" % i, "S-%02d" % i, "rev-a") for i in range(1, args.boards + 1)]
    site = loopback_site(tmp, port, units=units)
    broker = Mosquitto(tmp / "mq", port=port, config_file=tmp / "broker" / "mosquitto.conf").start()
    creds = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())
    births: list[tuple[float, str]] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        body = json.loads(msg.payload)
        if body.get("state") == "online" and not msg.retain:
            with lock:
                births.append((time.monotonic(), body["unit"]))

    obs = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-observer", protocol=mqtt.MQTTv5)
    obs.username_pw_set("collector", creds["collector"])
    obs.tls_set(ca_certs=str(tmp / "tls" / "ca.pem"))
    obs.on_message = on_message
    obs.on_connect = lambda c, u, f, rc, props=None: c.subscribe(p.subscription(p.STATUS, site=site.id), qos=1)
    obs.reconnect_delay_set(0.05, 0.2)
    obs.connect("127.0.0.1", port)
    obs.loop_start()
    boards = []
    try:
        for uid, _, _ in units:
            board = UnixBoard(tmp / f"{uid}.img", chip="esp32", firmware="ESP32_GENERIC-SPIRAM",  # rev-a's image
                              uid="24a160c0%04x" % len(boards)).start()
            boards.append(board)
            board.wait_console(">>> ", 60)
            result = flash.provision(site, site.unit(uid), board.port, timeout=120, show_progress=False,
                                    out=io.StringIO())
            if not result.ok:
                raise SystemExit(f"{uid}: {result.error or result.selftest.output}")
        deadline = time.monotonic() + 120
        while len({u for _, u in births}) < len(units) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        broker.stop()
        broker.start()
        back = time.monotonic()
        with lock:
            births.clear()
        deadline = time.monotonic() + 60
        while len({u for _, u in births}) < len(units) and time.monotonic() < deadline:
            time.sleep(0.05)
        with lock:
            first = {}
            for t, u in births:
                first.setdefault(u, round(t - back, 2))
        times = sorted(first.values())
        print(json.dumps({"boards": len(units), "reconnected": len(first),
                          "seconds_after_broker_back": times,
                          "spread_s": round(times[-1] - times[0], 2) if times else None}))
    finally:
        obs.loop_stop()
        for b in boards:
            b.stop()
        broker.stop()


if __name__ == "__main__":
    main()
