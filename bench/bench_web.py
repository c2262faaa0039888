"""Benchmark: `seatmon web` page loads on the 500-seat month of
bench_reports.py (1.2 M calls, with bench_reports_evidence.py's full
roster), and the wallboard's update latency through the web app's
server-sent events.

    python bench/bench_web.py [--influx URL] [--repeat 5] [--seconds 6] [--rate 200]

Without --influx it starts the InfluxDB of bench_reports.py (the same data
folder: the month and its roster are generated once and shared).

Page loads: a logged-in head's GET of each page over HTTP from a real
`seatmon web` process (the audit line of the agent pages included), --repeat
times each: answers by seat for the month, the monthly page, one agent's
page, one agent's month of calls, the wallboard page. Baseline, same run:
the same report through the command's own code in-process (`seatmon report
... --out FILE`), so the ratio is what the web adds.

Wallboard: a steady publisher of live state changes on a 200-seat floor
(bench_board.py's), latency from the publish to the change on the update
stream, for a bare paho subscriber (the baseline), the stand-alone
`seatmon board`, and `seatmon web`'s /board/SITE/events, both boards at
the same update period.

Prints one JSON document: p50/p95/max, the ratios, the bars (page p95 < 1 s;
web stream p50 within 1.5x of the bare subscriber's and of the stand-alone
board's).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_board import SITE as BOARD_SITE, Pending, Publisher, bare_subscriber, figures  # noqa: E402
from bench.bench_reports import PLAN, SCHEMA_KEY, ensure, kept_influx, report_cli, timed  # noqa: E402
from bench.bench_reports_evidence import AGENT, ensure_roster  # noqa: E402
from collector.influx import InfluxV1  # noqa: E402
from rig.servers import Mosquitto, free_port  # noqa: E402
from seatmon.web.accounts import Accounts  # noqa: E402
from seatmon.web.demo import site_file  # noqa: E402

MONTH = PLAN.start.strftime("%Y-%m")
FIRST, LAST = PLAN.start.isoformat(), "2026-11-30"
PASSWORD = "bench-password-1"
FLOOR_SEATS = 200
UPDATE_MS = 200  # the wallboard's shipped update period, for both boards
PAGE_BAR_S = 1.0
STREAM_BAR = 1.5


def pages(site: str) -> dict[str, tuple[str, list[str] | None]]:
    """name -> (URL, the `seatmon report` arguments of the same figures, or None)."""
    return {
        "answers by seat, month": (f"/reports/answers?site={site}&range=month&month={MONTH}&by=seat",
                                   ["answers", "--site", site, "--from", FIRST, "--to", LAST, "--by", "seat",
                                    "--format", "html"]),
        "monthly page": (f"/reports/monthly?site={site}&month={MONTH}", ["monthly", "--site", site, "--month", MONTH]),
        "agent page": (f"/agents/{AGENT}?site={site}&month={MONTH}",
                       ["agent", "--site", site, "--agent", AGENT, "--month", MONTH]),
        "calls of an agent's month": (f"/calls?site={site}&agent={AGENT}&from={FIRST}&to={LAST}",
                                      ["calls", "--site", site, "--agent", AGENT, "--from", FIRST, "--to", LAST]),
        "wallboard page": (f"/board/{BOARD_SITE}/", None),
    }


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict:
    return {"p50_s": round(statistics.median(xs), 3), "p95_s": round(quantile(xs, 0.95), 3),
            "max_s": round(max(xs), 3), "n": len(xs)}


class WebServer:
    """A `seatmon web` process whose site file names `site` (its zone: the month's own, as on a real server)."""

    def __init__(self, tmp: Path, site: str, influx_url: str, broker_port: int, database: str = "bench_reports"):
        folder = tmp / f"web-{site}"
        folder.mkdir()
        self.site = site_file(folder, site, PLAN.tz, broker_port, influx_url, database, 0,
                              [["day", "07:00", "15:00"]], "bench floor")
        self.site.write_text(self.site.read_text().replace("[wallboard]\n", f"[wallboard]\nupdate_ms = {UPDATE_MS}\n"))
        accounts = Accounts(folder / "accounts.db")
        accounts.add("boss", "head", PASSWORD)
        accounts.close()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "web.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEATMON_")}
        self.proc = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "web", "--site", str(self.site),
                                      "--accounts", str(folder / "accounts.db"), "--port", str(self.port),
                                      "--audit-log", str(folder / "audit.jsonl"), "--log-level", "WARNING"],
                                     cwd=ROOT, env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/login", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("seatmon web did not start: " + self.log.read_text())
                time.sleep(0.2)

    def client(self) -> httpx.Client:
        """A client logged in as the head (close it after use)."""
        c = httpx.Client(base_url=self.url, timeout=600)
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": token, "next": ""})
        assert r.status_code == 303, r.text
        return c

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def measure_pages(web: WebServer, board_web: WebServer, db: InfluxV1, repeat: int, tmp: str) -> dict:
    out = {}
    with contextlib.closing(web.client()) as c, contextlib.closing(board_web.client()) as board_c:
        for name, (url, cli_args) in pages(PLAN.site).items():
            if url.startswith("/board/"):
                c = board_c
            first = c.get(url)
            assert first.status_code == 200, (url, first.status_code, first.text[:300])
            times, base = [], []
            for _ in range(repeat):  # the page and the command in turn: both see the machine's same moments
                t = time.perf_counter()
                r = c.get(url)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200
                if cli_args:
                    out_file = os.path.join(tmp, "out.html")
                    base.append(timed(lambda: report_cli(db, out_file, *cli_args, "--tz", PLAN.tz)))
            row = {"url": url, "web": summary(times), "bar_s": PAGE_BAR_S,
                   "meets_bar": quantile(times, 0.95) < PAGE_BAR_S}
            if cli_args:
                row["baseline_command"] = summary(base)
                row["ratio_p50_web_to_command"] = round(statistics.median(times) / statistics.median(base), 2)
            out[name] = row
            print(json.dumps({name: row}), file=sys.stderr, flush=True)
    return out


def web_sse_reader(url: str, cookie: str, pending: Pending, ready: threading.Event, stop: threading.Event,
                   path: str = f"/board/{BOARD_SITE}/events"):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie})
    resp = conn.getresponse()
    event = None
    while not stop.is_set():
        line = resp.fp.readline()
        if not line:
            break
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: "):
            t = time.time()
            body = json.loads(line[6:])
            if event == b"snapshot":
                ready.set()
                continue
            for tile in body["tiles"]:
                pending.seen(tile["seat"], tile["status"], t)


def board_sse_reader(port: int, pending: Pending, ready: threading.Event, stop: threading.Event):
    web_sse_reader(f"http://127.0.0.1:{port}", "", pending, ready, stop, "/events")


def stream_run(pub: Publisher, states, pending: Pending, rate: int, seconds: float) -> dict:
    pending.reset()
    t0 = time.monotonic()
    achieved = pub.run(FLOOR_SEATS, states, rate, seconds, pending.sent)
    time.sleep(1.5)
    return figures(pending, achieved, time.monotonic() - t0)


def measure_stream(web: WebServer, broker_port: int, tmp: Path, rate: int, seconds: float) -> dict:
    states = ["idle"] * FLOOR_SEATS
    pub = Publisher(broker_port, "bench-web-pub")
    pub.retained_floor(FLOOR_SEATS, states)
    out = {"seats": FLOOR_SEATS, "rate_per_s": rate, "update_ms": UPDATE_MS}
    try:
        pending = Pending()
        bare = bare_subscriber(broker_port, pending)
        time.sleep(1.0)
        out["bare_subscriber"] = stream_run(pub, states, pending, rate, seconds)
        bare.loop_stop()
        bare.disconnect()

        # The stand-alone board (its own web server), same broker, same update period.
        port = free_port()
        cfg = tmp / "board.toml"
        cfg.write_text(f'[mqtt]\nport = {broker_port}\nclient_id = "bench-web-board"\n'
                       f'[board]\nlisten = "127.0.0.1:{port}"\nupdate_ms = {UPDATE_MS}\n')
        board = subprocess.Popen([sys.executable, "-m", "seatmon.cli", "board", "--config", str(cfg), "--log-level",
                                  "WARNING"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            pending, ready, stop = Pending(), threading.Event(), threading.Event()
            threading.Thread(target=board_sse_reader, args=(port, pending, ready, stop), daemon=True).start()
            ready.wait(20)
            time.sleep(0.5)
            out["seatmon_board"] = stream_run(pub, states, pending, rate, seconds)
            stop.set()
        finally:
            board.terminate()
            board.wait(10)

        with contextlib.closing(web.client()) as c:
            cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
            pending, ready, stop = Pending(), threading.Event(), threading.Event()
            threading.Thread(target=web_sse_reader, args=(web.url, cookie, pending, ready, stop), daemon=True).start()
            ready.wait(20)
            time.sleep(0.5)
            out["seatmon_web"] = stream_run(pub, states, pending, rate, seconds)
            stop.set()
    finally:
        pub.close()
    bare_p50, board_p50 = out["bare_subscriber"].get("p50_ms"), out["seatmon_board"].get("p50_ms")
    web_p50 = out["seatmon_web"].get("p50_ms")
    if bare_p50 and web_p50:
        out["ratio_p50_web_to_bare"] = round(web_p50 / bare_p50, 2)
    if board_p50 and web_p50:
        out["ratio_p50_web_to_board"] = round(web_p50 / board_p50, 2)
        out["meets_bar_vs_board"] = web_p50 <= STREAM_BAR * board_p50
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influx", help="use this running server instead of starting one")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rate", type=int, default=200, help="live changes and events per second on the floor")
    ap.add_argument("--only", choices=("pages", "stream"), help="one half only")
    args = ap.parse_args()
    with kept_influx(args.influx) as url:
        db = InfluxV1(url, "bench_reports", timeout=600)
        load_s = ensure(db, PLAN)
        roster_s = ensure_roster(db, PLAN)
        with tempfile.TemporaryDirectory() as tmp:
            broker = Mosquitto(Path(tmp) / "mosquitto", max_queued_messages=0, persistence=False).start()
            web = WebServer(Path(tmp), PLAN.site, url, broker.port)  # the reports' site: its zone, its roll-ups
            # bench_board.py's floor, on a database of its own: the board then loads no stored shift, as the
            # stand-alone board it is compared with (no InfluxDB) does not either.
            board_web = WebServer(Path(tmp), BOARD_SITE, url, broker.port, "bench_web_board")
            try:
                os.environ["SEATMON_AUDIT_LOG"] = os.path.join(tmp, "audit-cli.jsonl")
                doc = {"schema_key": SCHEMA_KEY, "load_avg_at_start": os.getloadavg(), "load_s": load_s,
                       "roster_load_s": roster_s}
                if args.only != "stream":
                    doc["pages_500_seats"] = measure_pages(web, board_web, db, args.repeat, tmp)
                if args.only != "pages":
                    doc["wallboard_stream"] = measure_stream(board_web, broker.port, Path(tmp), args.rate,
                                                             args.seconds)
                doc["load_avg_at_end"] = os.getloadavg()
            finally:
                web.stop()
                board_web.stop()
                broker.stop()
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
