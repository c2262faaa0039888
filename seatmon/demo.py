"""`seatmon demo`: the whole system on one machine, checked against itself.

Starts Mosquitto and InfluxDB on loopback with their data under a local dir,
initialises the database, starts the collector and a floor of virtual desk
units running the real firmware (a shift with a shift change and a shift end,
compressed by --speed), shows live progress, and at the end prints the
answer-time and safety reports, writes the monthly-style HTML report, and
checks that what the simulator generated is exactly what InfluxDB stored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from seatmon import options
from tools.servers import InfluxDB, Mosquitto, ServerError, find_binary, free_port

ROOT = Path(__file__).resolve().parent.parent
SITE = "demo"
DATABASE = "seatmon"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--units", type=options.positive_int, default=40, help="virtual desk units (default: %(default)s)")
    p.add_argument("--speed", type=options.positive_float, default=120.0,
                   help="simulated time runs this many times faster than real time (default: %(default)s)")
    p.add_argument("--duration", type=options.duration, default=options.duration("10m"), metavar="TIME",
                   help="real time the floor runs, e.g. 90s, 10m (default: 10m)")
    p.add_argument("--data-dir", default="var/demo",
                   help="servers' data, unit journals, logs and reports go here; wiped at start (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="traffic model seed (default: %(default)s)")
    p.add_argument("--no-browser", action="store_true", help="skip opening the HTML report in headless Chromium")


class Progress:
    """Counts what the floor does, from the units' own MQTT traffic."""

    def __init__(self, host: str, port: int):
        import paho.mqtt.client as mqtt

        from shared import protocol

        self.protocol = protocol
        self.lock = threading.Lock()
        self.calls: set[tuple[str, int]] = set()
        self.timely = 0
        self.live: dict[str, str] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seatmon-demo-progress")
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.subscribe([(protocol.subscription(protocol.EVENT), 0), (protocol.subscription(protocol.LIVE), 0)])
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        p = self.protocol
        try:
            _site, unit, channel = p.parse_topic(msg.topic)
            body = p.decode(channel, msg.payload)
        except p.ProtocolError:
            return
        with self.lock:
            if channel == p.LIVE:
                self.live[unit] = body["state"]
            elif body["kind"] == p.CALL and (unit, body["seq"]) not in self.calls:
                self.calls.add((unit, body["seq"]))
                self.timely += 1 if body["within_limit"] else 0

    def line(self, health: dict | None) -> str:
        with self.lock:
            calls, timely = len(self.calls), self.timely
            ringing = sum(1 for s in self.live.values() if s == "ringing")
            talking = sum(1 for s in self.live.values() if s in ("talking", "outgoing"))
        rate = f"{100 * timely / calls:5.1f} %" if calls else "   -   "
        stored = health.get("events", 0) if health else 0
        depth = health.get("spool_depth", 0) if health else 0
        return (f"calls {calls:6d}  ringing now {ringing:3d}  on a call {talking:3d}  timeliness {rate}  "
                f"events stored {stored:7d}  spool {depth:5d}")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _seatmon(*args: str, log: Path | None = None, **kwargs) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "seatmon.cli", *args], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT if log else None, stdin=subprocess.DEVNULL, **kwargs)


def _stop(proc: subprocess.Popen | None, timeout: float = 60) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _collector_config(path: Path, broker: Mosquitto, influx: InfluxDB, spool: Path, health_port: int) -> None:
    path.write_text(
        "[mqtt]\n"
        f'host = "127.0.0.1"\nport = {broker.port}\nclient_id = "seatmon-demo-collector"\n'
        "[influx]\n"
        f'url = "{influx.url}"\ndatabase = "{DATABASE}"\n'
        "[spool]\n"
        f'path = "{spool}"\n'
        "[health]\n"
        f"port = {health_port}\n"
    )


def stored_counts(db) -> dict[str, int]:
    """What InfluxDB holds, in the simulator's tally terms."""
    def one(q: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for series in db.query(q)[0].get("series", []):
            key = (series.get("tags") or {}).get("outcome", series["name"])
            out[key] = int(series["values"][0][1] or 0)
        return out

    calls = one("SELECT count(ring_ms) FROM call GROUP BY outcome")
    late = one("SELECT sum(late) FROM call")
    outgoing = one("SELECT count(talk_ms) FROM outgoing")
    left_on = one("SELECT sum(left_on) FROM shift_end")
    off = one("SELECT sum(off_in_time) FROM shift_end")  # handovers at a shift change count as neither
    return {
        "answered": calls.get("answered", 0),
        "answered_late": late.get("call", 0),
        "unanswered": calls.get("missed", 0) + calls.get("abandoned", 0),
        "outgoing": outgoing.get("outgoing", 0),
        "shift_end_left_on": left_on.get("shift_end", 0),
        "shift_end_off": off.get("shift_end", 0),
    }


TALLY_KEYS = ("answered", "answered_late", "unanswered", "outgoing", "shift_end_left_on", "shift_end_off")


def _check_html(path: Path) -> str:
    """Open the report in headless Chromium; return '' if fine, else the problem."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "skipped (playwright not installed)"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        return "skipped (chromium not installed)"
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        charts = page.locator("svg").count()
        browser.close()
    if errors:
        return "console errors: " + "; ".join(errors)
    if charts == 0:
        return "no charts rendered"
    return ""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    try:
        find_binary("mosquitto")
        find_binary("influxd")
    except ServerError as exc:
        print(f"seatmon demo: {exc}", file=sys.stderr)
        return 2
    from collector.influx import InfluxV1
    from seatmon import cli

    run_dir = (ROOT / args.data_dir) if not os.path.isabs(args.data_dir) else Path(args.data_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # every run starts clean: no cleanup needed between runs
    run_dir.mkdir(parents=True)
    sim_seconds = args.duration * args.speed
    print(f"seatmon demo: {args.units} virtual desk units, {args.duration:.0f} s real time at {args.speed:g}x "
          f"= {sim_seconds / 3600:.1f} h of simulated floor; everything under {run_dir}")

    # SIGTERM ends the demo like Ctrl-C: everything below is stopped in `finally`.
    signal.signal(signal.SIGTERM, _interrupt)
    broker = influx = collector = sim = progress = None
    ok = False
    try:
        broker = Mosquitto(run_dir / "mosquitto", extra_config=(ROOT / "deploy/mosquitto/seatmon.conf").read_text())
        broker.start()
        influx = InfluxDB(run_dir / "influxdb")
        influx.start()
        print(f"  Mosquitto on 127.0.0.1:{broker.port}, InfluxDB on {influx.url}")
        health_port = free_port()
        conf = run_dir / "collector.toml"
        _collector_config(conf, broker, influx, run_dir / "spool.db", health_port)
        init = _seatmon("collect", "--config", str(conf), "init-db", log=run_dir / "collector.log")
        if init.wait(60) != 0:
            print(f"seatmon demo: 'seatmon collect init-db' failed; see {run_dir / 'collector.log'}", file=sys.stderr)
            return 1
        collector = _seatmon("collect", "--config", str(conf), log=run_dir / "collector.log")
        health_url = f"http://127.0.0.1:{health_port}/health"
        progress = Progress(broker.host, broker.port)
        tally_path = run_dir / "simulation.json"
        started = datetime.now(timezone.utc)
        sim = _seatmon("unit", "simulate", "--units", str(args.units), "--site", SITE,
                       "--broker", f"127.0.0.1:{broker.port}", "--speed", str(args.speed),
                       "--duration", str(args.duration), "--data-dir", str(run_dir / "units"),
                       "--seed", str(args.seed), "--shift-end-min", str(0.8 * sim_seconds / 60),
                       "--shift-change-min", str(0.4 * sim_seconds / 60), "--drain",
                       "--report", str(tally_path), log=run_dir / "units.log")
        tty = sys.stdout.isatty()
        last_print = 0.0
        while sim.poll() is None:
            time.sleep(0.5)
            if collector.poll() is not None:
                print(f"\nseatmon demo: the collector stopped; see {run_dir / 'collector.log'}", file=sys.stderr)
                return 1
            now = time.monotonic()
            if tty or now - last_print >= 10:
                line = progress.line(_health(health_url))
                print(("\r  " + line) if tty else ("  " + line), end="" if tty else "\n", flush=True)
                last_print = now
        if tty:
            print()
        if sim.returncode != 0 or not tally_path.exists():
            print(f"seatmon demo: the virtual units failed; see {run_dir / 'units.log'}", file=sys.stderr)
            return 1
        generated = json.loads(tally_path.read_text())["tally"]

        # Wait until the collector has everything in InfluxDB.
        db = InfluxV1(influx.url, DATABASE)
        deadline = time.monotonic() + 120
        stored = stored_counts(db)
        while time.monotonic() < deadline:
            health = _health(health_url) or {}
            stored = stored_counts(db)
            if health.get("spool_depth", 1) == 0 and all(stored[k] >= generated.get(k, 0) for k in TALLY_KEYS):
                break
            time.sleep(1)
        print("  " + progress.line(_health(health_url)))

        first_day = started.date().isoformat()
        last_day = datetime.fromtimestamp(started.timestamp() + sim_seconds + 3600, timezone.utc).date().isoformat()
        common = ["--influx", influx.url, "--db", DATABASE, "--tz", "UTC", "--from", first_day, "--to", last_day]
        print("\n== Answer times per shift (per seat: answers.csv beside the HTML report)")
        cli.main(["report", "answers", *common, "--by", "shift"])
        cli.main(["report", "answers", *common, "--by", "seat", "--format", "csv", "--out", str(run_dir / "answers.csv")])
        print("\n== Shift-end safety, worst first")
        cli.main(["report", "safety", *common])
        month = started.strftime("%Y-%m")
        html = run_dir / f"report-{month}.html"
        cli.main(["report", "monthly", "--influx", influx.url, "--db", DATABASE, "--tz", "UTC",
                  "--month", month, "--out", str(html)])

        print("\n== Self-check: generated by the simulator = stored in InfluxDB")
        ok = True
        for key in TALLY_KEYS:
            same = generated.get(key, 0) == stored[key]
            ok &= same
            print(f"  {key:18s} generated {generated.get(key, 0):6d}  stored {stored[key]:6d}  {'ok' if same else 'MISMATCH'}")
        if not html.exists():
            ok = False
            print("  HTML report: not written")
        elif args.no_browser:
            print(f"  HTML report: {html}")
        else:
            problem = _check_html(html)
            ok &= not problem or problem.startswith("skipped")
            print(f"  HTML report: {html} ({problem or 'opens in headless Chromium without errors'})")
        print("demo passed: every generated event was stored exactly once" if ok else "demo FAILED")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nseatmon demo: interrupted, stopping everything", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if progress is not None:
            progress.close()
        _stop(sim)
        _stop(collector)
        for server in (influx, broker):
            if server is not None:
                server.stop()
