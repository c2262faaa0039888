"""`seatmon demo`: the whole system on one machine, checked against itself.

Starts Mosquitto and InfluxDB on loopback with their data under a local dir,
initialises the database, starts the collector, `seatmon web` (the wallboard,
the reports and the agents' pages, behind logins) and a floor of
virtual desk units running the real firmware (an early and a late shift and
the shift-end checks, compressed by --speed, all on one world clock that
starts the day at 07:00 local and ends it before the real time), shows a live line with
warnings, and at the end, while the units are still online, prints the
answer-time, safety and unit-health reports, writes the monthly-style HTML
report, and checks that what the simulator generated is exactly what
InfluxDB stored.

Beside the floor, a few desk units run on virtual boards (real MicroPython,
virtual/board.py, each modelling the stock image its hardware revision
names: rev-a ESP32_GENERIC-SPIRAM, rev-b ESP32_GENERIC_S3), provisioned by
`seatmon flash provision` from a site file
of their own through `seatmon broker config`'s accounts on the same broker
(its TLS listener). They live in real time, not on the floor's clock: their
own collector stores them in a database of their own, and the demo reports
them in a section of their own.
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
from datetime import datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from seatmon import options
from rig.servers import InfluxDB, Mosquitto, ServerError, find_binary, free_port

ROOT = Path(__file__).resolve().parent.parent
SITE = "demo"
DATABASE = "seatmon"
BOARD_SITE = "demo-boards"  # the boards' site: real time, their own collector and database
BOARD_DATABASE = "seatmon_boards"
MAX_BOARDS = 8  # each is a MicroPython process driven in real time
BOARD_CALL_S = 20  # the longest call a board desk makes (virtual/desks.py CALLS), with its pause
# The seats' shifts repeat daily, from an hour before the start: the run and
# the reports after it must end before the next day's first shift begins.
MAX_FLOOR_S = 21 * 3600
MARKER = ".seatmon-demo"  # only a directory holding this (or an empty one) is wiped
STOP_S = 3  # after Ctrl-C, what still runs this long after its SIGTERM is killed
KEPT = "kept.json"  # a finished run's dates and report, for `seatmon demo serve`


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--units", type=options.positive_int, default=40, help="virtual desk units (default: %(default)s)")
    p.add_argument("--boards", type=_boards, default=2, metavar="N",
                   help="desk units on virtual boards running real MicroPython, provisioned like real ones and "
                        f"rung in real time; reported in a section of their own (0-{MAX_BOARDS}, 0: none; "
                        "default: %(default)s)")
    p.add_argument("--speed", type=options.positive_float, default=120.0,
                   help="simulated time runs this many times faster than real time (default: %(default)s)")
    p.add_argument("--duration", type=options.duration, default=options.duration("10m"), metavar="TIME",
                   help="real time the floor runs, e.g. 90s, 10m (default: 10m; at most 21 simulated hours, "
                        "10.5 minutes at 120x); setup, draining and the reports add about half a minute")
    p.add_argument("--data-dir", default="var/demo",
                   help="servers' data, unit journals, logs and reports go here; wiped at start, so it must be new, "
                        "empty or one the demo wrote (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="traffic model seed (default: %(default)s)")
    p.add_argument("--tz", type=options.time_zone, default=None, metavar="AREA/CITY",
                   help="the floor's time zone: the units keep their shifts in it and announce it, so the "
                        "reports use it (default: this machine's zone, else UTC)")
    p.add_argument("--board-port", type=_port, default=8080,
                   help="serve the wallboard on 127.0.0.1:PORT (default: %(default)s, or a free port if taken)")
    p.add_argument("--broker-outage", type=_outage, metavar="AT+LENGTH",
                   help="stop the broker AT into the run for LENGTH, e.g. 30s+20s, to watch the floor ride it out")
    p.add_argument("--no-browser", action="store_true", help="skip opening the HTML report in headless Chromium")
    sub = p.add_subparsers(dest="demo_action", metavar="ACTION")
    serve_p = sub.add_parser("serve", help="after a run: serve its kept data again (its InfluxDB and broker) "
                                           "until Ctrl-C, and print the report commands that reach it")
    # SUPPRESS: given before `serve`, the demo's own option stands
    serve_p.add_argument("--data-dir", default=argparse.SUPPRESS, help="the run's directory (default: var/demo)")


def _port(text: str) -> int:
    value = options.positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {value}")
    return value


def _boards(text: str) -> int:
    value = options.whole_number(text)
    if value > MAX_BOARDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_BOARDS} boards, got {value}")
    return value


def _outage(text: str) -> tuple[float, float]:
    at, sep, length = text.partition("+")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected AT+LENGTH such as 30s+20s, got {text!r}")
    return options.duration(at), options.duration(length)


# ---- the floor's plan and the progress line (pure) ---------------------------------------------------

class Plan:
    """The simulated day, in simulated seconds from the units' start: the
    early shift until `change_s`, the late one until `end_s` (no call starts
    after it), then the shift-end checks until `sim_s`, the end of the run.
    The world's clock starts at 07:00 local on the latest day whose run ends
    at least `margin_s` real seconds before the real time: the floor replays
    a day just past, so nothing the reports show lies in the future."""

    DAY_STARTS = time_of_day(7)  # local: the units start at 07:00, their early shift from 06:00

    def __init__(self, duration_s: float, speed: float, margin_s: float = 30.0):
        self.duration_s = duration_s
        self.speed = speed
        self.sim_s = duration_s * speed
        quiet = min(max(0.1 * self.sim_s, 1200.0), 0.5 * self.sim_s)  # room for the reminders to run out
        self.end_s = self.sim_s - quiet
        self.change_s = 0.45 * self.sim_s
        self.margin_s = margin_s

    def epoch(self, real_start_s: float, tz: str = "UTC") -> tuple[float, int]:
        """(real s, world ms): the world clock reads 07:00 in `tz` at
        `real_start_s`, on the latest day whose run ends, `duration_s +
        margin_s` later, no later than the real time then. The shifts then
        read as a roster's (early from 06:00), and nothing lies in the future."""
        span = self.duration_s + self.margin_s
        latest = datetime.fromtimestamp(real_start_s + span - span * self.speed, ZoneInfo(tz))
        start = datetime.combine(latest.date(), self.DAY_STARTS, ZoneInfo(tz))
        if start > latest:
            start -= timedelta(days=1)
        return real_start_s, int(start.timestamp() * 1000)

    def phase(self, sim_elapsed_s: float) -> str:
        if sim_elapsed_s < self.change_s:
            return "early shift"
        if sim_elapsed_s < self.end_s:
            return "late shift"
        if sim_elapsed_s < self.sim_s:
            return "shift-end checks"
        return "draining"


def local_zone(environ=os.environ, etc: Path = Path("/etc")) -> str:
    """This machine's IANA zone: $TZ, /etc/timezone or the /etc/localtime
    link (Debian keeps both); UTC when none names a zone this host knows."""
    names = [environ.get("TZ", "").lstrip(":")]
    try:
        names.append((etc / "timezone").read_text().strip())
    except OSError:
        pass
    try:
        names.append(os.readlink(etc / "localtime").partition("zoneinfo/")[2])
    except OSError:
        pass
    for name in filter(None, names):
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):  # also a path such as TZ=/usr/share/zoneinfo/...
            continue
        return name
    return "UTC"


def progress_line(world_ms: float, phase: str, left_s: float, calls: int, timely: int, ringing: int,
                  talking: int, connected: int | None, units: int, stored: int, spool: int, tz: str = "UTC") -> str:
    clock = datetime.fromtimestamp(world_ms / 1000, ZoneInfo(tz)).strftime("%a %H:%M")
    left = f"{int(left_s) // 60:2d}m{int(left_s) % 60:02d}s left" if left_s > 0 else "finishing calls"
    rate = f"{100 * timely / calls:5.1f} %" if calls else "    - "
    conn = "?" if connected is None else str(connected)
    return (f"{clock} {tz} {phase:16s} {left:15s} calls {calls:5d} in time {rate}  ringing {ringing:2d} "
            f"talking {talking:3d}  units online {conn:>3s}/{units}  stored {stored:6d} spool {spool:5d}")


class Watch:
    """Turns the floor's readings into warnings, once per change: units that
    lost the broker (and their return), the simulation falling behind real
    time, the demo's own broker connection."""

    LAG_WARN_S = 2.0  # behind by this much real time: the machine is too slow for the floor
    LAG_OK_S = 0.5

    def __init__(self, units: int):
        self.units = units
        self.all_seen = False  # every unit was connected at least once
        self.down: int = 0
        self.down_since: float | None = None
        self.behind = False
        self.broker_ok = True

    def update(self, t: float, connected: int | None, lag_s: float, broker_ok: bool) -> list[str]:
        out = []
        if broker_ok != self.broker_ok:
            out.append("the demo lost its connection to the broker" if not broker_ok
                       else "the demo is connected to the broker again")
            self.broker_ok = broker_ok
        if connected is not None:
            if connected >= self.units:
                if self.down and self.down_since is not None:
                    out.append(f"all {self.units} units are back on the broker after {t - self.down_since:.0f} s")
                self.all_seen, self.down, self.down_since = True, 0, None
            elif self.all_seen and self.units - connected > self.down:
                if not self.down:
                    self.down_since = t
                self.down = self.units - connected
                out.append(f"{self.down} of {self.units} units lost the broker; they keep journaling and "
                           "send everything when it is back")
        if lag_s >= self.LAG_WARN_S and not self.behind:
            self.behind = True
            out.append(f"the simulation is {lag_s:.1f} s behind real time: this machine is too slow for "
                       f"{self.units} units at this speed (try fewer --units or a lower --speed)")
        elif self.behind and lag_s < self.LAG_OK_S:
            self.behind = False
            out.append("the simulation has caught up with real time")
        return out


def read_floor(status_file: Path, now: float | None = None) -> tuple[int | None, float]:
    """(units connected, worst lag in s) from the simulator's status files
    (None while there is none yet). A worker too busy to write its file
    every second is behind by at least the file's age."""
    now = time.time() if now is None else now
    connected, lag, units = 0, 0.0, 0
    for path in status_file.parent.glob(status_file.name + ".*"):
        if path.suffix == ".tmp":
            continue
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        connected += st["connected"]
        units += st["units"]
        lag = max(lag, st["lag_ms"] / 1000, now - st["real_s"] - 1.0)
    return (connected if units else None), lag


class Progress:
    """Counts what the floor does, from the units' own MQTT traffic."""

    def __init__(self, host: str, port: int):
        import paho.mqtt.client as mqtt

        from shared import protocol

        self.protocol = protocol
        self.lock = threading.Lock()
        self.calls: set[tuple[str, int, int]] = set()
        self.timely = 0
        self.live: dict[str, str] = {}
        self.connected = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seatmon-demo-progress")
        self.client.reconnect_delay_set(1, 2)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: setattr(self, "connected", False)
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        p = self.protocol
        client.subscribe([(p.subscription(p.EVENT, site=SITE), 0), (p.subscription(p.LIVE, site=SITE), 0)])
        self.connected = True

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
            elif body["kind"] == p.CALL and (unit, body["boot"], body["seq"]) not in self.calls:
                self.calls.add((unit, body["boot"], body["seq"]))
                self.timely += 1 if body["within_limit"] else 0

    def counts(self) -> tuple[int, int, int, int]:
        """(calls, timely, ringing now, on a call now)"""
        with self.lock:
            ringing = sum(1 for s in self.live.values() if s == "ringing")
            talking = sum(1 for s in self.live.values() if s in ("talking", "outgoing"))
            return len(self.calls), self.timely, ringing, talking

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _seatmon(*args: str, log: Path | None = None, world: tuple[tuple[float, int], float] | None = None,
             **kwargs) -> subprocess.Popen:
    """Start a seatmon command; with `world` ((epoch), speed) on the floor's clock."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    head = [sys.executable, "-m", "seatmon.cli"]
    if world is not None:
        (real_s, sim_ms), speed = world
        head = [sys.executable, "-m", "seatmon.worldclock", f"{real_s}:{sim_ms}", str(speed)]
    # A process group of its own: Ctrl-C at the terminal reaches the demo
    # alone, which stops the others itself (the units' simulator would
    # otherwise die of it and look failed).
    return subprocess.Popen([*head, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if log else None,
                            stdin=subprocess.DEVNULL, process_group=0, **kwargs)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """`sig` to the process and its own children (its group: see _seatmon),
    while it runs (once reaped, its id may be another's)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_all(procs, timeout: float) -> None:
    """SIGTERM to every process (with its children) at once, then SIGKILL to
    any still running after `timeout` s (the collector's spool keeps what it
    did not write)."""
    running = [p for p in procs if p is not None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)  # again for those signalled before: harmless
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # (not reaped yet, so its group is still its own)
            _signal_group(proc, signal.SIGKILL)  # with its children: the simulator's workers
            proc.wait(10)


def _web_setup(run_dir: Path, plan: Plan, epoch: tuple[float, int], tz: str, broker: Mosquitto, influx: InfluxDB,
               units: int) -> tuple[Path, list[tuple[str, str, str]]]:
    """The floor's site file, its roster (imported as a site imports its
    shift plan) and one web account per role: (site file, [(name, role, password)])."""
    import contextlib
    import io

    from seatmon import cli
    from seatmon.web import demo as web_demo

    folder = run_dir / "web"
    folder.mkdir()
    shifts = web_demo.shifts(epoch[1], plan.change_s, plan.sim_s, tz)
    site_path = web_demo.site_file(folder, SITE, tz, broker.port, influx.url, DATABASE, units, shifts,
                                   "seatmon demo floor")
    day = datetime.fromtimestamp(epoch[1] / 1000, ZoneInfo(tz)).date().isoformat()
    plan_csv = web_demo.roster_csv(folder / "roster.csv", day, units)
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = cli.main(["roster", "import", str(plan_csv), "--site", str(site_path)])
    if code != 0:
        raise RuntimeError(f"the demo's roster import failed: {said.getvalue().strip()}")
    return site_path, web_demo.accounts(folder / "accounts.db", SITE)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def _collector_config(path: Path, broker: Mosquitto, influx: InfluxDB, spool: Path, health_port: int) -> None:
    path.write_text(
        "[mqtt]\n"
        f'host = "127.0.0.1"\nport = {broker.port}\nclient_id = "seatmon-demo-collector"\nsite = "{SITE}"\n'
        "[influx]\n"
        f'url = "{influx.url}"\ndatabase = "{DATABASE}"\n'
        "[spool]\n"
        f'path = "{spool}"\n'
        "[health]\n"
        f"port = {health_port}\n"
    )


def _board_collector_config(path: Path, site, tls_port: int, influx: InfluxDB, spool: Path) -> None:
    """The boards' collector: over TLS with the collector's account, as a site's is."""
    password = json.loads(site.relative(site.data["broker"]["credentials"]).read_text())["collector"]
    path.write_text(
        "[mqtt]\n"
        f'host = "127.0.0.1"\nport = {tls_port}\nclient_id = "seatmon-demo-boards-collector"\n'
        f'username = "collector"\npassword = "{password}"\ntls = true\n'
        f'ca_file = "{site.relative(site.data["broker"]["ca"])}"\nsite = "{site.id}"\n'
        "[influx]\n"
        f'url = "{influx.url}"\ndatabase = "{BOARD_DATABASE}"\n'
        "[spool]\n"
        f'path = "{spool}"\n'
        "[health]\nport = 0\n"
    )


def broker_config(data_dir: Path, port: int, board_broker: Path | None) -> str:
    """The demo's Mosquitto: the floor's listener (loopback, anonymous), and
    with boards the TLS listener `seatmon broker config` wrote for their site
    (`board_broker`: its folder), with its passwords and ACL for that listener
    only."""
    lines = [
        "per_listener_settings true",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:  # as rig/servers.py does: root would drop to a user who cannot enter the data dir
        lines.append("user root")
    lines += [(ROOT / "deploy/mosquitto/seatmon.conf").read_text(), f"listener {port} 127.0.0.1", "allow_anonymous true"]
    if board_broker is not None:
        generated = (board_broker / "mosquitto.conf").read_text().splitlines()
        at = next(i for i, line in enumerate(generated) if line.startswith("listener "))
        lines.append(generated[at] + " 127.0.0.1")
        lines += [line for line in generated[:at]
                  if line.split(" ")[0] in ("allow_anonymous", "password_file", "acl_file")]
        lines += [line for line in generated[at + 1:] if line.strip() and line.split(" ")[0] != "user"]
    return "\n".join(lines) + "\n"


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


class _Terminal:
    """The live line: rewritten in place on a terminal (every 0.5 s), a new
    line every 10 s otherwise; warnings always on a line of their own."""

    def __init__(self):
        self.tty = sys.stdout.isatty()
        self.last = 0.0
        self.open = False

    def line(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            width = shutil.get_terminal_size().columns - 3
            print("\r  " + text[:width].ljust(width), end="", flush=True)
            self.open = True
        elif force or now - self.last >= 10:
            print("  " + text, flush=True)
            self.last = now

    def warn(self, text: str) -> None:
        self.end()
        print(f"  warning: {text}", flush=True)

    def note(self, text: str) -> None:
        self.end()
        print(f"  {text}", flush=True)

    def end(self) -> None:
        if self.open:
            print()
            self.open = False


def _run_dir(data_dir: str) -> Path:
    return (ROOT / data_dir) if not os.path.isabs(data_dir) else Path(data_dir)


def _free_or_any(port: int) -> int:
    return port if _free(port) else free_port()


def _keep(run_dir: Path, first: str, last: str, tz: str, html: Path, boards: tuple[str, str] | None) -> None:
    """What `seatmon demo serve` needs to reach this run's data later; `boards`:
    the first and last (real) day of the boards' calls."""
    (run_dir / KEPT).write_text(json.dumps({"from": first, "to": last, "tz": tz, "html": str(html),
                                            "boards": boards}))


def report_commands(influx_url: str, kept: dict) -> list[str]:
    """The report command lines that reach a kept run's data."""
    common = f"--influx {influx_url} --db {DATABASE} --from {kept['from']} --to {kept['to']}"
    lines = [f"seatmon report answers {common} --by shift", f"seatmon report safety {common}",
             f"seatmon report units {common}"]
    if kept.get("boards"):
        first, last = kept["boards"]
        lines.append(f"seatmon report answers --influx {influx_url} --db {BOARD_DATABASE} --from {first} "
                     f"--to {last} --by seat   # the desk units on virtual boards (real time)")
    return lines


def serve(args: argparse.Namespace) -> int:
    """Serve a finished run's data again, until Ctrl-C: its InfluxDB (on 8086
    when free, the reports' default) and its broker (its retained unit status
    and configs; no unit runs, so the wallboard would show nothing live)."""
    run_dir = _run_dir(args.data_dir)
    try:
        kept = json.loads((run_dir / KEPT).read_text())
    except (OSError, ValueError):
        print(f"seatmon demo serve: no finished demo run under {run_dir}: run `seatmon demo` first",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    influx = broker = None
    try:
        influx = InfluxDB(run_dir / "influxdb", _free_or_any(8086))
        influx.start()
        broker = Mosquitto(run_dir / "mosquitto", free_port(), config_file=run_dir / "mosquitto-serve.conf")
        (run_dir / "mosquitto-serve.conf").write_text(broker_config(run_dir / "mosquitto", broker.port, None))
        broker.start()
        print(f"seatmon demo serve: the data of the demo run under {run_dir}, until Ctrl-C")
        print(f"  InfluxDB: {influx.url} (database {DATABASE}); its broker: 127.0.0.1:{broker.port}")
        print(f"  the HTML report: {kept['html']}")
        print("  the reports, in another terminal:")
        for line in report_commands(influx.url, kept):
            print(f"    {line}")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("seatmon demo serve: stopped", file=sys.stderr)
        return 0
    except ServerError as exc:
        print(f"seatmon demo serve: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for server in (influx, broker):
            if server is not None:
                server.stop()


def main(args: argparse.Namespace) -> int:
    # The demo runs its own site on its own servers: a site file named in the
    # environment (an installation's) must not reach its collector, board or reports.
    os.environ.pop("SEATMON_SITE", None)
    if getattr(args, "demo_action", None) == "serve":
        return serve(args)
    try:
        find_binary("mosquitto")
        find_binary("influxd")
    except ServerError as exc:
        print(f"seatmon demo: {exc}", file=sys.stderr)
        return 2
    if args.boards:
        from virtual.board import BoardError, micropython_binary

        try:
            micropython_binary()
        except BoardError as exc:
            print(f"seatmon demo: --boards {args.boards}: {exc}; or run the floor alone with --boards 0",
                  file=sys.stderr)
            return 2
    from collector.influx import InfluxV1
    from seatmon import cli
    from seatmon.web import demo as web_demo
    from virtual.units.fakes import world_ms

    if args.duration * args.speed > MAX_FLOOR_S:
        print(f"seatmon demo: the floor is one working day: --duration x --speed must stay within "
              f"{MAX_FLOOR_S / 3600:.0f} simulated hours (at {args.speed:g}x: {MAX_FLOOR_S / args.speed / 60:.1f} "
              "minutes); the next day's shifts would start otherwise", file=sys.stderr)
        return 2
    run_dir = _run_dir(args.data_dir)
    ours = (run_dir / MARKER).exists() or run_dir == ROOT / "var" / "demo"  # the default, also from older runs
    if run_dir.exists() and not ours and any(run_dir.iterdir()):
        print(f"seatmon demo: --data-dir {run_dir} holds files the demo did not write; it wipes its "
              "directory at start, so give it a new or empty one", file=sys.stderr)
        return 2
    if run_dir.exists():
        shutil.rmtree(run_dir)  # every run starts clean: no cleanup needed between runs
    run_dir.mkdir(parents=True)
    (run_dir / MARKER).write_text("written by seatmon demo; the next run wipes this directory\n")
    plan = Plan(args.duration, args.speed)
    tz = args.tz or local_zone()
    zone = ZoneInfo(tz)
    print(f"seatmon demo: {args.units} virtual desk units, {args.duration:.0f} s real time at {args.speed:g}x "
          f"= {plan.sim_s / 3600:.1f} h of simulated floor in {tz}; everything under {run_dir}")
    if args.boards:
        print(f"  and {args.boards} desk units on virtual boards running real MicroPython, in real time "
              "(the stock images of rev-a and rev-b: ESP32_GENERIC-SPIRAM, ESP32_GENERIC_S3)")

    # SIGTERM ends the demo like Ctrl-C: everything below is stopped in `finally`.
    signal.signal(signal.SIGTERM, _interrupt)
    broker = influx = collector = board = sim = progress = None
    desks = board_collector = board_site = None
    term = _Terminal()
    ok = interrupted = False
    try:
        port = free_port()
        board_broker = None
        if args.boards:
            # The boards' site file, CA, broker certificate, accounts and ACL, as a technician makes them.
            from virtual.desks import board_units
            from virtual.labsite import loopback_site

            tls_port = free_port()
            (run_dir / "boards").mkdir()
            board_site = loopback_site(run_dir / "boards", tls_port, site_id=BOARD_SITE, timezone=tz,
                                       units=board_units(args.boards))
            board_broker = run_dir / "boards" / "broker"
        broker_conf = run_dir / "mosquitto.conf"
        broker_conf.write_text(broker_config(run_dir / "mosquitto", port, board_broker))
        broker = Mosquitto(run_dir / "mosquitto", port, config_file=broker_conf)
        broker.start()
        influx = InfluxDB(run_dir / "influxdb")
        influx.start()
        print(f"  Mosquitto on 127.0.0.1:{broker.port}" + (f" (the boards' TLS listener: {tls_port})" if args.boards
                                                           else "") + f", InfluxDB on {influx.url}")
        health_port = free_port()
        conf = run_dir / "collector.toml"
        _collector_config(conf, broker, influx, run_dir / "spool.db", health_port)
        init = _seatmon("collect", "--config", str(conf), "init-db", log=run_dir / "collector.log")
        if init.wait(60) != 0:
            print(f"seatmon demo: 'seatmon collect init-db' failed; see {run_dir / 'collector.log'}", file=sys.stderr)
            return 1
        if board_site is not None:
            from virtual.desks import BoardDesks

            board_conf = run_dir / "boards" / "collector.toml"
            _board_collector_config(board_conf, board_site, tls_port, influx, run_dir / "boards" / "spool.db")
            board_log = run_dir / "boards" / "collector.log"
            if _seatmon("collect", "--config", str(board_conf), "init-db", log=board_log).wait(60) != 0:
                print(f"seatmon demo: the boards' 'seatmon collect init-db' failed; see {board_log}", file=sys.stderr)
                return 1
            board_collector = _seatmon("collect", "--config", str(board_conf), log=board_log)  # real time
            # Power on and provision the boards while the floor runs; each desk rings once provisioned.
            desks = BoardDesks(board_site, run_dir / "boards", seed=args.seed).start()
        # One clock for the whole floor: the units, the collector and the board.
        epoch = plan.epoch(time.time(), tz)
        world = (epoch, args.speed)
        collector = _seatmon("collect", "--config", str(conf), log=run_dir / "collector.log", world=world)
        board_port = args.board_port if _free(args.board_port) else free_port()
        web_url = f"http://127.0.0.1:{board_port}/"
        board_url = f"{web_url}board/{SITE}/"
        try:
            site_path, logins = _web_setup(run_dir, plan, epoch, tz, broker, influx, args.units)
        except RuntimeError as exc:
            print(f"seatmon demo: {exc}", file=sys.stderr)
            return 1
        board = _seatmon("web", "--site", str(site_path), "--accounts", str(run_dir / "web" / "accounts.db"),
                         "--audit-log", str(run_dir / "audit.jsonl"), "--port", str(board_port),
                         log=run_dir / "web.log", world=world)
        health_url = f"http://127.0.0.1:{health_port}/health"
        # The units start once the collector has subscribed: what they send first is
        # then received at once, not queued (a delay the floor's clock would
        # multiply into a clock skew that is not there).
        deadline = time.monotonic() + 30
        while not (_health(health_url) or {}).get("subscribed"):
            if collector.poll() is not None or time.monotonic() > deadline:
                print(f"seatmon demo: the collector did not connect; see {run_dir / 'collector.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        if _answers(web_url + "login", 30):
            print(f"  seatmon web: {web_url}  (open it in a browser while the floor runs; log in as one of:)")
            for name, role, password in logins:
                print(f"    {name:<10} {password}  ({role})")
            print(f"  the wallboard: {board_url}  (after logging in as head or leader)")
        else:
            print(f"  seatmon web did not start; see {run_dir / 'web.log'}")
        progress = Progress(broker.host, broker.port)
        tally_path = run_dir / "simulation.json"
        status_file = run_dir / "units-status.json"
        sim = _seatmon("unit", "simulate", "--units", str(args.units), "--site", SITE,
                       "--broker", f"127.0.0.1:{broker.port}", "--speed", str(args.speed),
                       "--duration", str(args.duration), "--data-dir", str(run_dir / "units"),
                       "--seed", str(args.seed), "--tz", tz, "--shift-end-min", str(plan.end_s / 60),
                       "--shift-change-min", str(plan.change_s / 60), "--drain", "--hold",
                       "--status-file", str(status_file), "--world-epoch", f"{epoch[0]}:{epoch[1]}",
                       "--report", str(tally_path), log=run_dir / "units.log")
        started = time.monotonic()
        watch = Watch(args.units)
        outage = args.broker_outage
        broker_down = False
        while not tally_path.exists():
            time.sleep(0.5)
            if sim.poll() is not None:
                term.end()
                print(f"seatmon demo: the virtual units failed; see {run_dir / 'units.log'}", file=sys.stderr)
                return 1
            if collector.poll() is not None:
                term.end()
                print(f"seatmon demo: the collector stopped; see {run_dir / 'collector.log'}", file=sys.stderr)
                return 1
            elapsed = time.monotonic() - started
            if desks is not None and elapsed >= args.duration - BOARD_CALL_S:
                desks.stop_calling(wait=False)  # their last calls end with the floor's
            if outage and elapsed >= outage[0] and not broker_down:
                term.note(f"injected fault: the broker stops for {outage[1]:.0f} s")
                broker.stop()
                broker_down = True
            elif outage and broker_down and elapsed >= outage[0] + outage[1]:
                broker.start()
                term.note("injected fault over: the broker is back")
                outage, broker_down = None, False
            connected, lag = read_floor(status_file)
            for text in watch.update(elapsed, connected, lag, progress.connected):
                term.warn(text)
            calls, timely, ringing, talking = progress.counts()
            health = _health(health_url) or {}
            sim_elapsed = min(elapsed, args.duration) * args.speed
            term.line(progress_line(world_ms(epoch, args.speed, time.time()), plan.phase(sim_elapsed),
                                    args.duration - elapsed, calls, timely, ringing, talking, connected,
                                    args.units, health.get("events", 0), health.get("spool_depth", 0), tz))
        term.end()
        generated = json.loads(tally_path.read_text())["tally"]
        if desks is not None:
            desks.stop_calling()

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
        calls, timely, ringing, talking = progress.counts()
        connected, _ = read_floor(status_file)
        health = _health(health_url) or {}
        term.line(progress_line(world_ms(epoch, args.speed, time.time()), "done", 0, calls, timely, ringing,
                                talking, connected, args.units, health.get("events", 0),
                                health.get("spool_depth", 0), tz), force=True)
        term.end()

        # The reports, while the units are still online (as a real floor's are), in
        # the zone the units announced (no --tz: as a supervisor would run them).
        first = datetime.fromtimestamp(epoch[1] / 1000 - 3600, zone)
        last = datetime.fromtimestamp(world_ms(epoch, args.speed, time.time()) / 1000, zone)
        common = ["--influx", influx.url, "--db", DATABASE,
                  "--from", first.date().isoformat(), "--to", last.date().isoformat()]
        print("\n== Answer times per shift (per seat: answers.csv beside the HTML report)")
        cli.main(["report", "answers", *common, "--by", "shift"])
        cli.main(["report", "answers", *common, "--by", "seat", "--format", "csv", "--out", str(run_dir / "answers.csv")])
        print("\n== Shift-end safety, worst first")
        cli.main(["report", "safety", *common])
        units_json = run_dir / "units.json"
        cli.main(["report", "units", *common, "--format", "json", "--out", str(units_json)])
        health_of_units = unit_health(units_json, args.speed)
        print("\n== Unit health (all of it: report units, or the HTML report)")
        print("  " + health_of_units["line"])
        # The month of the floor's middle: it has calls even when the day crosses a month's end.
        month = datetime.fromtimestamp(epoch[1] / 1000 + plan.sim_s / 2, zone).strftime("%Y-%m")
        html = run_dir / f"report-{month}.html"
        cli.main(["report", "monthly", "--influx", influx.url, "--db", DATABASE, "--month", month,
                  "--out", str(html)])
        boards_days = None if desks is None else (
            datetime.fromtimestamp(desks.started_s, zone).date().isoformat(), datetime.now(zone).date().isoformat())
        _keep(run_dir, first.date().isoformat(), last.date().isoformat(), tz, html, boards_days)

        boards_ok = True
        if desks is not None:
            boards_ok = report_boards(desks, influx.url, zone)

        print("\n== Self-check: generated by the simulator = stored in InfluxDB")
        ok = True
        for key in TALLY_KEYS:
            same = generated.get(key, 0) == stored[key]
            ok &= same
            print(f"  {key:18s} generated {generated.get(key, 0):6d}  stored {stored[key]:6d}  {'ok' if same else 'MISMATCH'}")
        offline_ok = health_of_units["offline"] == 0 and health_of_units["units"] == args.units
        ok &= offline_ok
        print(f"  units reporting    {health_of_units['units']:6d}  offline {health_of_units['offline']:3d}"
              f"{'':10s}{'ok' if offline_ok else 'MISMATCH'}")
        if not html.exists():
            ok = False
            print("  HTML report: not written")
        elif args.no_browser:
            print(f"  HTML report: {html}")
        else:
            problem = _check_html(html)
            ok &= not problem or problem.startswith("skipped")
            print(f"  HTML report: {html} ({problem or 'opens in headless Chromium without errors'})")
        web_ok, web_line = web_demo.check(web_url, logins, month, args.units)
        ok &= web_ok
        print(f"  seatmon web: {web_line}")
        if desks is not None:
            print(f"  desk units on virtual boards: {'ok' if boards_ok else 'MISMATCH'} (their section above)")
            ok &= boards_ok
        print("demo passed: every generated event was stored exactly once" if ok else "demo FAILED")
        print(f"\nThe data stays under {run_dir} until the next run. To look at it again (its servers stop now): "
              f"`seatmon demo serve{'' if args.data_dir == 'var/demo' else ' --data-dir ' + args.data_dir}` "
              "serves it and prints the report commands that reach it.")
        return 0 if ok else 1
    except KeyboardInterrupt:
        term.end()
        print("\nseatmon demo: interrupted, stopping everything", file=sys.stderr, flush=True)
        interrupted = True
        return 130
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave servers running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs = [sim, board, board_collector, collector]
        for proc in procs:  # all at once: each takes its time to stop
            if proc is not None:
                _signal_group(proc, signal.SIGTERM)  # _stop_all waits for them below
        if progress is not None:
            progress.close()
        if desks is not None:
            desks.stop()
        # Interrupted, nothing is waited for long: the next run wipes the data anyway.
        _stop_all(procs, STOP_S if interrupted else 60)
        for server in (influx, broker):
            if server is not None:
                server.stop(STOP_S if interrupted else 10)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if interrupted:
            print("seatmon demo: stopped", file=sys.stderr, flush=True)


def report_boards(desks, influx_url: str, zone: ZoneInfo) -> bool:
    """The boards' own section: their calls as `seatmon report answers`
    shows them (real dates and times), and made by the desks = stored."""
    from collector.influx import InfluxV1
    from seatmon import cli

    print(f"\n== Desk units on virtual boards (real MicroPython, real time; site {BOARD_SITE}, "
          f"database {BOARD_DATABASE}, not in the floor's reports)")
    for line in desks.errors:
        print(f"  {line}")
    made = desks.made
    expected = {"answered": made["in_time"] + made["late"], "answered_late": made["late"],
                "unanswered": made["unanswered"]}
    db = InfluxV1(influx_url, BOARD_DATABASE)
    deadline = time.monotonic() + 60
    stored = stored_counts(db)
    while time.monotonic() < deadline and any(stored[k] < v for k, v in expected.items()):
        time.sleep(1)
        stored = stored_counts(db)
    by_unit = {}
    for series in db.query('SELECT count(ring_ms) FROM call GROUP BY "unit"')[0].get("series", []):
        by_unit[series["tags"]["unit"]] = int(series["values"][0][1] or 0)
    today = datetime.now(zone).date().isoformat()
    started = datetime.fromtimestamp(desks.started_s, zone).date().isoformat()
    cli.main(["report", "answers", "--influx", influx_url, "--db", BOARD_DATABASE, "--from", started,
              "--to", today, "--by", "seat"])
    ok = not desks.errors
    for key, want in expected.items():
        same = stored[key] == want
        ok &= same
        print(f"  {key:18s} made {want:9d}  stored {stored[key]:6d}  {'ok' if same else 'MISMATCH'}")
    silent = [u for u in desks.provisioned if not by_unit.get(u)]
    every = len(desks.provisioned) == len(desks.boards) and not silent
    ok &= every
    print(f"  boards provisioned {len(desks.provisioned):6d}  of {len(desks.boards)}, with calls stored: "
          f"{len(desks.provisioned) - len(silent)}{'':4s}{'ok' if every else 'MISMATCH'}")
    return ok


def unit_health(path: Path, speed: float) -> dict:
    """The units report (JSON) in one line: units, offline now, worst skew."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"units": 0, "offline": 0, "skew_s": None, "line": "no unit-health report"}
    units = data.get("units", [])
    skews = [abs(u["skew_worst_ms"]) for u in units if u.get("skew_worst_ms") is not None]
    skew = max(skews) / 1000 if skews else None
    line = (f"{len(units)} units, {data.get('offline', 0)} offline now, "
            f"{sum(u.get('lost_events', 0) for u in units)} events lost, worst clock skew "
            + (f"{skew:.1f} s" if skew is not None else "-")
            + f" (the simulation starts each unit's clock up to 5 s off until NTP sets it; at {speed:g}x every "
              f"real millisecond an event takes to arrive counts as {speed / 1000:.2g} s)")
    return {"units": len(units), "offline": data.get("offline", 0), "skew_s": skew, "line": line}
