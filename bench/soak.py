"""The soak: a floor through a compressed week with overlapping faults,
every event accounted for at the end.

    python -m bench.soak --seed 1            # the week (see docs/reliability.md for its wall time)
    python -m bench.soak --short --seed 1    # about 3 minutes: CI's run

It reuses the demo's floor (seatmon/demo.py): real Mosquitto and InfluxDB
(rig/servers.py), one collector or two on a shared subscription, virtual
desk units running the real firmware (`seatmon unit simulate`, here on a
roster of day, late and night shifts and a weekend, in Europe/Berlin over
the last Sunday of October 2026: the clocks go back inside a night shift;
not earlier: a unit takes no time before its firmware's epoch, 2026-01-01),
all on one compressed world clock that does not depend on today's date; and
desk units on virtual boards (real MicroPython, provisioned by `seatmon
flash provision` over TLS with the generated ACL, their own site and
database, in real time). A seeded schedule of faults runs beside them
(bench/soak_faults.py). At the end, once the collectors are idle and the
roll-ups done, it checks (bench/soak_checks.py) and writes a JSON summary on
stdout and an HTML page (soak.html) under the run's directory. Exit 1 on
any mismatch, each said with its unit, seq and kind.

A benchmark, not a `seatmon` command: it starts its own servers on
loopback with throw-away data and drives units, boards and faults no
installation has; an operator's own installation is checked by `seatmon
selfcheck` and the collector's /health.

`--plant NAME` starts the collectors or the units through bench/soak_plant.py,
which patches one function of the product to plant a known defect: the
soak must then fail, naming the cause.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import soak_checks, soak_faults, soak_html
from rig.servers import InfluxDB, Mosquitto, ServerError, free_port
from seatmon import demo
from virtual.units.fakes import world_ms

ROOT = Path(__file__).resolve().parent.parent
SITE = "soak"
DATABASE = "seatmon"
TZ = "Europe/Berlin"
# The roster: three groups of seats; Sunday has only the night shift of Saturday
# running into it (the clocks go back at 03:00 that night: a 9-hour shift).
ROSTER = {
    "day": {d: [["day", "06:00", "14:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["day", "08:00", "14:00"]]},
    "late": {d: [["late", "14:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": [["late", "14:00", "20:00"]]},
    "night": {d: [["night", "22:00", "06:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
}
GROUPS = ["late", "night", "day"]
# A week in the past with a DST change: Monday 2026-10-19 00:00 to Sunday 2026-10-25 11:00 local.
# Both runs end in a quiet time (Sunday has no shift after the night that
# ends at 06:00), so the units' drain at the end meets no shift.
WEEK_START = datetime(2026, 10, 19, 0, 0, tzinfo=ZoneInfo(TZ))
WEEK_HOURS = 6 * 24 + 12
# The short run: Saturday 19:00 to Sunday 06:30 (12.5 hours: the clocks go
# back), the end of a late shift and the night shift over the change.
SHORT_START = datetime(2026, 10, 24, 19, 0, tzinfo=ZoneInfo(TZ))
SHORT_HOURS = 12.5
SETTLE_S = 240  # at most this long for the collectors to become idle at the end


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="traffic and fault schedule seed (default: %(default)s)")
    p.add_argument("--short", action="store_true",
                   help=f"the short run: {SHORT_HOURS} simulated hours (Saturday evening over the night the "
                        "clocks go back), fewer units, boards and faults; about 3 minutes")
    p.add_argument("--units", type=int, help="virtual desk units (default: 40, --short: 4)")
    p.add_argument("--boards", type=int, help="desk units on virtual boards, real time (default: 4, --short: 2)")
    p.add_argument("--collectors", type=int, choices=(1, 2), default=1,
                   help="one collector, or two on a shared subscription (default: %(default)s)")
    p.add_argument("--speed", type=float, help="simulated time runs this many times faster (default: 60, "
                                                "--short: 240): each unit samples its pins every 10 simulated ms, "
                                                "so units x speed is what the CPU must keep up with")
    p.add_argument("--hours", type=float, help="simulated hours from the start (default: the week, --short: "
                                                f"{SHORT_HOURS})")
    p.add_argument("--faults", type=int, help="faults in the schedule (default: one per 2 real minutes, "
                                              "--short: 6)")
    p.add_argument("--plant", choices=sorted(PLANTS), help="plant a known defect (bench/soak_plant.py): the soak "
                                                           "must fail and name it")
    p.add_argument("--data-dir", default="var/soak", help="wiped at start (default: %(default)s)")


PLANTS = {
    "collector-forgets-quarantine-ack": "collector",
    "unit-skips-journal-record": "units",
}


class Floor:
    """The servers, the collectors, the units and the boards of one run, and
    what the fault schedule does to them."""

    def __init__(self, args, run_dir: Path):
        self.args, self.dir = args, run_dir
        self.broker = self.influx = None
        self.collectors: list = [None] * args.collectors
        self.sim = self.desks = self.board_collector = self.board_site = self.poison = None
        self.world = None
        self.password_backup: bytes | None = None

    # ---- start ----
    def start(self, start: datetime, span_h: float) -> None:
        args, d = self.args, self.dir
        port = free_port()
        board_broker = None
        if args.boards:
            from virtual.desks import board_units
            from virtual.labsite import loopback_site

            self.tls_port = free_port()
            (d / "boards").mkdir()
            self.board_site = loopback_site(d / "boards", self.tls_port, site_id="soak-boards", timezone=TZ,
                                            units=board_units(args.boards))
            board_broker = d / "boards" / "broker"
        conf = d / "mosquitto.conf"
        conf.write_text(demo.broker_config(d / "mosquitto", port, board_broker))
        self.broker = Mosquitto(d / "mosquitto", port, config_file=conf).start()
        self.influx = InfluxDB(d / "influxdb").start()
        self.health_ports = [free_port() for _ in self.collectors]
        for k in range(len(self.collectors)):
            self._collector_config(k)
        if demo._seatmon("collect", "--config", str(d / "collector-0.toml"), "init-db",
                         log=d / "collector-0.log").wait(60) != 0:
            raise ServerError(f"'seatmon collect init-db' failed; see {d / 'collector-0.log'}")
        if self.board_site is not None:
            from virtual.desks import BoardDesks

            bconf = d / "boards" / "collector.toml"
            demo._board_collector_config(bconf, self.board_site, self.tls_port, self.influx, d / "boards" / "spool.db")
            text = bconf.read_text().replace(demo.BOARD_DATABASE, "seatmon_boards")
            bconf.write_text(text)
            blog = d / "boards" / "collector.log"
            if demo._seatmon("collect", "--config", str(bconf), "init-db", log=blog).wait(60) != 0:
                raise ServerError(f"the boards' 'seatmon collect init-db' failed; see {blog}")
            self.board_collector = demo._seatmon("collect", "--config", str(bconf), log=blog)
            self.desks = BoardDesks(self.board_site, d / "boards", seed=args.seed).start()
        # One world clock for the floor: the units, the collectors, the poison unit.
        self.epoch = (time.time() + 3.0, int(start.timestamp() * 1000))
        self.world = (self.epoch, args.speed)
        for k in range(len(self.collectors)):
            self.start_collector(k)
        self.wait_subscribed()
        (d / "roster.json").write_text(json.dumps({"shifts": ROSTER, "groups": GROUPS}))
        self.duration_s = span_h * 3600 / args.speed
        cmd = ["unit", "simulate", "--units", str(args.units), "--site", SITE,
               "--broker", f"127.0.0.1:{self.broker.port}", "--speed", str(args.speed),
               "--duration", str(self.duration_s), "--data-dir", str(d / "units"), "--seed", str(args.seed),
               "--tz", TZ, "--roster", str(d / "roster.json"), "--faults", str(d / "unit-faults.json"),
               # No --hold: the units end with the drain, so nothing they do can escape the tally.
               "--drain", "--status-file", str(d / "units-status.json"),
               "--world-epoch", f"{self.epoch[0]}:{self.epoch[1]}", "--report", str(d / "simulation.json")]
        plant = PLANTS.get(args.plant or "")
        # The units keep the real clock: each runs its own world clock from --world-epoch.
        self.sim = self._start(cmd, d / "units.log", plant == "units", world=False)

    def _start(self, cmd: list[str], log: Path, planted: bool, world: bool = True):
        if planted:
            # The planted defect: the same command through the wrapper that patches one function.
            (real_s, sim_ms), speed = self.world
            clock = [f"{real_s}:{sim_ms}", str(speed)] if world else ["-", "-"]
            out = open(log, "ab")
            return subprocess.Popen([sys.executable, "-m", "bench.soak_plant", self.args.plant, *clock, *cmd],
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    process_group=0)
        return demo._seatmon(*cmd, log=log, world=self.world if world else None)

    def _collector_config(self, k: int) -> None:
        shared = 'shared_group = "soak"\n' if len(self.collectors) > 1 else ""
        (self.dir / f"collector-{k}.toml").write_text(
            "[mqtt]\n"
            f'host = "127.0.0.1"\nport = {self.broker.port}\nclient_id = "soak-collector-{k}"\nsite = "{SITE}"\n{shared}'
            "[influx]\n"
            f'url = "{self.influx.url}"\ndatabase = "{DATABASE}"\n'
            "[spool]\n"
            f'path = "{self.dir / f"spool-{k}.db"}"\n'
            "[health]\n"
            f"port = {self.health_ports[k]}\n")

    def start_collector(self, k: int) -> None:
        plant = PLANTS.get(self.args.plant or "")
        self.collectors[k] = self._start(["collect", "--config", str(self.dir / f"collector-{k}.toml")],
                                         self.dir / f"collector-{k}.log", plant == "collector")

    def health(self, k: int) -> dict:
        return demo._health(f"http://127.0.0.1:{self.health_ports[k]}/health") or {}

    def wait_subscribed(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for k in range(len(self.collectors)):
            while not self.health(k).get("subscribed"):
                if time.monotonic() > deadline:
                    raise ServerError(f"collector {k} did not subscribe; see {self.dir / f'collector-{k}.log'}")
                time.sleep(0.2)

    def world_now_ms(self) -> float:
        return world_ms(self.epoch, self.args.speed, time.time())

    def stop(self) -> None:
        procs = [self.sim, self.board_collector, *self.collectors]
        for proc in procs:
            if proc is not None:
                demo._signal_group(proc, signal.SIGTERM)
        if self.poison is not None:
            self.poison.stop()
        if self.desks is not None:
            for unit, board in zip(self.board_site.units, self.desks.boards):
                # what each board wrote on its serial port, and why it booted each time
                (self.dir / "boards" / f"{unit['id']}.console").write_bytes(bytes(board.console))
                (self.dir / "boards" / f"{unit['id']}.boots").write_text(json.dumps(board.boots))
            self.desks.stop()
        demo._stop_all(procs, 60)
        for server in (self.influx, self.broker):
            if server is not None:
                try:
                    os.kill(server.proc.pid, signal.SIGCONT)  # a SIGSTOPped server cannot stop
                except (AttributeError, ProcessLookupError):
                    pass
                server.stop(10)


def plan_of(args) -> tuple[datetime, float]:
    if args.short:
        return SHORT_START, args.hours or SHORT_HOURS
    return WEEK_START, args.hours or WEEK_HOURS


def defaults(args) -> None:
    args.units = args.units or (4 if args.short else 40)
    args.boards = args.boards if args.boards is not None else (2 if args.short else 4)
    args.speed = args.speed or (240.0 if args.short else 60.0)


def run(args) -> int:
    os.environ.pop("SEATMON_SITE", None)
    defaults(args)
    start, span_h = plan_of(args)
    run_dir = (ROOT / args.data_dir) if not os.path.isabs(args.data_dir) else Path(args.data_dir)
    if run_dir.exists():
        if not (run_dir / ".seatmon-soak").exists() and any(run_dir.iterdir()):
            print(f"bench.soak: --data-dir {run_dir} holds files the soak did not write", file=sys.stderr)
            return 2
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / ".seatmon-soak").write_text("written by bench/soak.py; the next run wipes this directory\n")
    duration_s = span_h * 3600 / args.speed
    n_faults = args.faults if args.faults is not None else (6 if args.short else max(6, int(duration_s / 120)))
    rng = random.Random(args.seed)
    schedule = soak_faults.schedule(rng, duration_s, n_faults, args.units, args.boards, args.collectors, args.short)
    log = lambda text: print(f"  {text}", file=sys.stderr, flush=True)  # noqa: E731 (stdout is the JSON)
    log(f"bench.soak: seed {args.seed}, {args.units} units on a roster in {TZ} from {start:%a %Y-%m-%d %H:%M} "
        f"for {span_h:g} simulated hours at {args.speed:g}x ({duration_s / 60:.1f} min), {args.boards} boards, "
        f"{args.collectors} collector(s), {len(schedule)} faults; under {run_dir}")
    floor = Floor(args, run_dir)
    signal.signal(signal.SIGTERM, demo._interrupt)
    t_start = time.monotonic()
    try:
        soak_faults.write_unit_faults(run_dir / "unit-faults.json", schedule, start, args.speed)
        floor.start(start, span_h)
        runner = soak_faults.Runner(floor, schedule, log)
        runner.run_until(lambda: (run_dir / "simulation.json").exists(), floor)
        generated = json.loads((run_dir / "simulation.json").read_text())
        runner.finish()
        log("the floor's run is over; settling")
        result = soak_checks.settle_and_check(floor, generated, runner, start, span_h, log)
        result["faults"] = runner.timeline
        result["units_behind_s"] = round(runner.max_lag_s, 1)
        if runner.max_lag_s > soak_faults.LAG_WARN_S and result["failures"]:
            result["failures"].append(f"(the units fell up to {runner.max_lag_s:.0f} s behind real time: the "
                                      "machine was too slow for this run; see --speed)")
        result["wall_s"] = round(time.monotonic() - t_start, 1)
        result["config"] = {"seed": args.seed, "short": args.short, "units": args.units, "boards": args.boards,
                            "collectors": args.collectors, "speed": args.speed, "start": start.isoformat(),
                            "hours": span_h, "tz": TZ, "plant": args.plant}
        html = run_dir / "soak.html"
        html.write_text(soak_html.page(result))
        result["html"] = str(html)
        print(json.dumps({k: v for k, v in result.items() if k not in ("series",)}, indent=1))
        for line in result["failures"]:
            print(f"bench.soak: FAILED: {line}", file=sys.stderr)
        print(f"bench.soak: {'passed' if result['ok'] else 'FAILED'} ({result['wall_s']:.0f} s; {html})",
              file=sys.stderr)
        return 0 if result["ok"] else 1
    except KeyboardInterrupt:
        print("bench.soak: interrupted", file=sys.stderr)
        return 130
    except (ServerError, RuntimeError, OSError) as exc:
        print(f"bench.soak: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second signal must not cut the clean-up short and leave units running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        floor.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
