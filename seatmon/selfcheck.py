"""`seatmon selfcheck`: prove this installation works end to end with what is
built so far: the protocol under CPython and real MicroPython, mpy-cross on
every device file, and a sample event through a real Mosquitto into a real
InfluxDB started on loopback under a local data dir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default="var/selfcheck",
                   help="where the servers keep their data (default: %(default)s, wiped each run)")
    p.add_argument("--no-servers", action="store_true", help="skip the Mosquitto/InfluxDB round trip")


def _step(name: str, fn) -> bool:
    t0 = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # a failed step is reported, and the others still run
        print(f"  FAIL  {name}: {exc}")
        return False
    print(f"  ok    {name} ({time.monotonic() - t0:.1f} s){': ' + detail if detail else ''}")
    return True


def _protocol_cpython() -> str:
    from tools.micropython import ROOT, run_cases_cpython

    if str(ROOT) not in sys.path:  # the portable cases live in the checkout's tests/
        sys.path.insert(0, str(ROOT))
    from tests.portable import protocol_cases

    res = run_cases_cpython(protocol_cases)
    bad = {k: v for k, v in res.items() if v[0] != "ok"}
    if bad:
        raise RuntimeError(f"{len(bad)} cases failed: {bad}")
    return f"{len(res)} cases"


def _protocol_micropython() -> str:
    from tools.micropython import run_cases

    res = run_cases("tests.portable.protocol_cases")
    bad = {k: v for k, v in res.items() if v[0] != "ok"}
    if bad:
        raise RuntimeError(f"{len(bad)} cases failed: {bad}")
    return f"{len(res)} cases in the MicroPython VM"


def _mpy_cross() -> str:
    from tools.micropython import compile_all, device_files

    failures = compile_all()
    if failures:
        raise RuntimeError(json.dumps(failures, indent=1))
    return f"{len(device_files())} files"


def _round_trip(data_dir: Path) -> str:
    import paho.mqtt.client as mqtt
    from influxdb_client import Point, WritePrecision

    from collector.influx import InfluxV1
    from shared import protocol
    from tools.servers import InfluxDB, Mosquitto

    if data_dir.exists():
        shutil.rmtree(data_dir)
    with Mosquitto(data_dir / "mosquitto") as broker, InfluxDB(data_dir / "influxdb") as influx:
        event = {"v": 1, "kind": "call", "site": "demo", "unit": "u-0001", "seat": "A-01", "boot": 1,
                 "seq": 1, "ts": int(time.time() * 1000), "clock": "ntp", "outcome": "answered",
                 "rings": 2, "ring_ms": 6400, "answer_ms": 6400, "within_limit": True,
                 "limit_ms": 10000, "apology_prompted": False}
        topic = protocol.topic("demo", "u-0001", protocol.EVENT)
        got: list[bytes] = []
        arrived = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seatmon-selfcheck",
                             protocol=mqtt.MQTTv5)
        client.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
        client.connect(broker.host, broker.port)
        client.subscribe(protocol.subscription(protocol.EVENT), qos=1)
        client.loop_start()
        time.sleep(0.2)
        client.publish(topic, protocol.encode(protocol.EVENT, event), qos=1).wait_for_publish(5)
        if not arrived.wait(5):
            raise RuntimeError("the event did not come back through Mosquitto")
        client.loop_stop()
        client.disconnect()
        received = protocol.decode(protocol.EVENT, got[0])

        db = InfluxV1(influx.url, "selfcheck")
        db.create_database()
        point = (Point("call").tag("unit", received["unit"]).tag("seat", received["seat"])
                 .field("answer_ms", received["answer_ms"]).time(received["ts"], WritePrecision.MS))
        db.write_lines([point.to_line_protocol()])
        rows = db.query("SELECT answer_ms FROM call")[0]["series"][0]["values"]
        if rows != [[received["ts"], received["answer_ms"]]]:
            raise RuntimeError(f"InfluxDB returned {rows}")
        return (f"Mosquitto on 127.0.0.1:{broker.port} -> InfluxDB {db.ping()} on 127.0.0.1:{influx.port}, "
                f"data under {data_dir}")


def main(args: argparse.Namespace) -> int:
    print("seatmon selfcheck: what is built so far, checked for real")
    ok = _step("protocol cases under CPython", _protocol_cpython)
    ok &= _step("protocol cases under MicroPython", _protocol_micropython)
    ok &= _step("mpy-cross compiles every firmware/shared file", _mpy_cross)
    if not args.no_servers:
        ok &= _step("an event through Mosquitto into InfluxDB", lambda: _round_trip(Path(args.data_dir)))
    print("all checks passed" if ok else "some checks FAILED")
    return 0 if ok else 1
