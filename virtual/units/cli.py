"""`seatmon unit simulate`: N virtual desk units against a real broker.

    seatmon unit simulate --units N --site S --broker HOST:PORT [--speed X]
                          [--scenario FILE] [--data-dir DIR] [--procs P] [--duration S]

Units are spread over `--procs` processes (default: one per core), each an
asyncio loop. Every unit samples at 10 ms of simulated time, but its sampler
wakes only about every 100 ms of real time and steps the core through the
samples since (the wires are replayed at each sample's tick), so idle units
cost one core step per sample and no extra wake-ups. At the end (duration,
SIGINT or SIGTERM) it prints one JSON object: the ground-truth tally of what
the traffic model generated, per outcome, the events journaled, and per
process CPU, memory and the sampler's lag behind real time."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time

from seatmon import options
from virtual.units.traffic import script_from
from virtual.units.unit import VirtualUnit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", type=options.positive_int, default=1, help="number of virtual units")
    parser.add_argument("--first", type=options.positive_int, default=1, help="index of the first unit (ids u-NNNN)")
    parser.add_argument("--site", required=True, type=options.site_id, help="site id")
    parser.add_argument("--broker", required=True, type=options.broker, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--speed", type=options.positive_float, default=1.0,
                        help="simulated time runs this many times faster")
    parser.add_argument("--scenario", help="JSON file: scripted calls per unit instead of the traffic model")
    parser.add_argument("--data-dir", help="per-unit data dirs (config, journal) go under it (default: a temp dir)")
    parser.add_argument("--procs", type=_procs, default=0, help="worker processes (default: one per core)")
    parser.add_argument("--duration", type=options.duration_or_zero, default=0, metavar="TIME",
                        help="stop after this much real time, e.g. 90, 90s, 2m (0: run until stopped)")
    parser.add_argument("--seed", type=int, default=1, help="traffic model seed")
    parser.add_argument("--tz", type=options.time_zone, default="UTC", metavar="AREA/CITY",
                        help="the site's time zone: the units keep local time (shifts) in it and announce it "
                             "(default: UTC)")
    parser.add_argument("--calls-per-hour", type=float, default=12.0, help="incoming calls per seat and hour")
    parser.add_argument("--outgoing-per-hour", type=float, default=4.0, help="outgoing calls per seat and hour")
    parser.add_argument("--shift-end-min", type=options.positive_float, default=None,
                        help="the seats' shift ends this many simulated minutes after start; no call starts after it")
    parser.add_argument("--shift-change-min", type=options.positive_float, default=None,
                        help="with --shift-end-min: an early and a late shift, changing this many simulated minutes after start")
    parser.add_argument("--drain", action="store_true",
                        help="at the end, start no new calls, finish those in progress and wait until every "
                             "journaled event is acknowledged (needs a collector)")
    parser.add_argument("--hold", action="store_true",
                        help="after the end (and the drain), write the summary but keep the units online "
                             "until SIGINT or SIGTERM")
    parser.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive, seconds")
    parser.add_argument("--heartbeat-s", type=float, default=60, help="heartbeat period, simulated seconds")
    parser.add_argument("--report", help="also write the final JSON to this file")
    parser.add_argument("--status-file", metavar="FILE",
                        help="every second, write each process's state (units connected, lag) to FILE.<n> as JSON")
    parser.add_argument("--roster", metavar="FILE",
                        help="JSON: {\"shifts\": {GROUP: {weekday: [[name, HH:MM, HH:MM], ...]}}, \"groups\": [GROUP, ...]}: "
                             "unit i works GROUP groups[i %% len(groups)]'s shifts, its traffic follows them "
                             "(instead of --shift-end-min)")
    parser.add_argument("--faults", metavar="FILE",
                        help="JSON: [{\"kind\": \"wifi\"|\"ntp\", \"units\": [i, ...], \"at_ms\": MS, \"until_ms\": MS}, ...]: "
                             "the units' Wi-Fi, or the site's NTP servers, are gone between those world times (epoch ms)")
    parser.add_argument("--world-epoch", type=_epoch, metavar="REAL_S:SIM_MS",
                        help="the simulated world's clock reads SIM_MS (epoch ms) at real time REAL_S (epoch s); "
                             "default: it starts at the real time")


def _procs(text: str) -> int:
    return options.whole_number(text, 0, "0 (one per core)")


def _epoch(text: str) -> tuple[float, int]:
    real, sep, sim = text.partition(":")
    try:
        return float(real), int(sim)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected REAL_S:SIM_MS, got {text!r}") from None


class UsageError(Exception):
    """Bad input found after parsing (e.g. in the scenario file): exit 2."""


def _parse_broker(text: str) -> tuple[str, int]:
    return options.host_port(text)


def _load_scenario(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        with open(path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise UsageError("%s: line %d column %d: %s" % (path, exc.lineno, exc.colno, exc.msg))
    except OSError as exc:
        raise UsageError("--scenario %s: %s" % (path, exc.strerror or exc))
    if not isinstance(data, dict) or not isinstance(data.get("units", {}), dict):
        raise UsageError("%s: expected {\"units\": {\"<index> or *\": {...}}}" % path)
    for key, spec in data.get("units", {}).items():
        try:
            if not isinstance(spec, dict):
                raise TypeError("expected an object")
            script_from(spec)
        except (TypeError, ValueError, KeyError) as exc:
            raise UsageError("%s: units.%s: %s (keys: answered, rings, outgoing, press, power)" % (path, key, exc))
    return data


def _load_json(path: str | None, option: str):
    if not path:
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError("%s %s: %s" % (option, path, exc))


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _null_step(now, inputs):
    return ()


WARN_EVERY_S = 10.0  # at most one "cannot reach the broker" warning per process in this time
WARN_AFTER_S = 2.0  # a unit connecting at start is not worth a warning yet


async def _run_units(opts: dict, indexes: list[int], stop_after: float, part: int = 0, on_result=None) -> dict:
    """Run the units; return this process's result. With opts["hold"], hand
    the result to on_result once the run (and drain) is over and keep the
    units online until SIGINT/SIGTERM."""
    broker = _parse_broker(opts["broker"])
    rss0 = _rss_kb()
    scenario = opts.get("scenario_data")
    units = []
    for i in indexes:
        script = None
        if scenario is not None:
            per = scenario.get("units", {})
            script = per.get(str(i), per.get("*"))
        traffic = {"calls_per_hour": opts["calls_per_hour"], "outgoing_per_hour": opts["outgoing_per_hour"]}
        if opts.get("shift_end_min") is not None:
            traffic["shift_end_ms"] = int(opts["shift_end_min"] * 60000)
            if opts.get("shift_change_min") is not None:
                traffic["shift_change_ms"] = int(opts["shift_change_min"] * 60000)
        roster = opts.get("roster")  # {"shifts": {group: weekday table}, "groups": [group per unit index % n]}
        shifts = None
        if roster:
            shifts = roster["shifts"][roster["groups"][i % len(roster["groups"])]]
        units.append(VirtualUnit(os.path.join(opts["data_dir"], "u%04d" % i), opts["site"], i, broker,
                                 speed=opts["speed"], seed=opts["seed"], traffic=traffic, script=script,
                                 link={"keepalive": opts["keepalive"], "heartbeat_ms": int(opts["heartbeat_s"] * 1000)},
                                 settings=opts.get("settings"), world_epoch=opts.get("world_epoch"),
                                 tz=opts.get("tz") or "UTC", shifts=shifts))
    if opts.get("null_core"):
        # Benchmark baseline: the same units and sampler loop, the core replaced by nothing.
        for u in units:
            u.unit.core.step = _null_step
    tasks = [asyncio.create_task(u.run()) for u in units]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lags: list[float] = []
    cpu0 = time.process_time()
    t0 = time.monotonic()
    status_path = "%s.%d" % (opts["status_file"], part) if opts.get("status_file") else None

    async def monitor():
        down_since = None
        warned = -WARN_EVERY_S
        while True:
            await asyncio.sleep(1)
            # How far each unit's sampler is behind its clock, in real ms.
            worst = 0.0
            for u in units:
                behind = (u.clock.ticks_ms() - u.unit.sampled) & 0x3FFFFFFF
                worst = max(worst, behind / u.clock.speed)
            lags.append(worst)
            _apply_faults(opts.get("faults_data") or (), units)
            down = [u for u in units if not u.unit.link.connected]
            now = time.monotonic()
            down_since = (down_since or now) if down else None
            if down and now - down_since >= WARN_AFTER_S and now - warned >= WARN_EVERY_S:
                warned = now
                print("seatmon unit simulate: warning: %d of %d units cannot reach the broker at %s:%d: %s"
                      % (len(down), len(units), broker[0], broker[1], _last_error(down)), file=sys.stderr, flush=True)
            if status_path:
                _write_json(status_path, {"units": len(units), "connected": len(units) - len(down),
                                          "lag_ms": worst, "real_s": time.time()})

    def result() -> dict:
        lags_sorted = sorted(lags) or [0.0]
        return {"units": {u.unit.core.conf["unit"]: u.tally() for u in units},
                "samples": sum(u.unit.samples for u in units),
                "cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - t0,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "rss_start_kb": rss0, "rss_end_kb": _rss_kb(),
                "lag_ms_max": max(lags_sorted), "lag_ms_p99": lags_sorted[int(0.99 * (len(lags_sorted) - 1))],
                "lag_ms_last": lags[-1] if lags else 0.0,
                "ever_connected": sum(1 for u in units if u.unit.link.connects),
                "last_error": _last_error([u for u in units if not u.unit.link.connects])}

    mon = asyncio.create_task(monitor())
    try:
        if stop_after > 0:
            try:
                await asyncio.wait_for(stop.wait(), stop_after)
            except asyncio.TimeoutError:
                pass
        else:
            await stop.wait()
        for t in tasks:
            if t.done() and t.exception() is not None:
                raise t.exception()
        if opts.get("drain") and not stop.is_set():
            await _drain(units, opts.get("drain_timeout_s", 120.0))
        out = result()
        if opts.get("hold") and on_result is not None and not stop.is_set():
            on_result(out)
            await stop.wait()
    finally:
        mon.cancel()
        for u in units:
            await u.unit.stop(clean=False)
        for t in tasks:
            t.cancel()
    return out


def _apply_faults(faults, units: list) -> None:
    """Take each unit's Wi-Fi or NTP away while a fault on it runs (world time)."""
    for u in units:
        now = u.clock.true_ms()
        down = {f["kind"] for f in faults if u.index in f["units"] and f["at_ms"] <= now < f["until_ms"]}
        u.network.up = "wifi" not in down
        u.socket.answering = "ntp" not in down


def _last_error(units: list) -> str:
    return next((u.unit.link.last_error for u in units if u.unit.link.last_error), None) or "not connected yet"


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)  # readers never see half a file


async def _drain(units: list, timeout_s: float) -> None:
    """End cleanly: start no new calls, let the ones in progress and a running
    shift-end check finish, and wait until the collector has acknowledged
    every journaled event."""
    for u in units:
        if u.traffic is not None:
            u.traffic.stop_new()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = [u for u in units if (u.traffic is not None and u.traffic.in_progress())
                or u.unit.core.phase in ("ending", "reminding")
                or u.unit.journal.ack_mark < u.unit.journal.next_seq - 1]
        if not busy:
            return
        await asyncio.sleep(0.2)
    print("seatmon unit simulate: %d units still had unacknowledged events after %.0f s of draining"
          % (len(busy), timeout_s), file=sys.stderr)


def _worker(opts: dict, indexes: list[int], stop_after: float, part: int, conn) -> None:
    sent = []

    def send(result):
        conn.send(result)
        sent.append(True)

    try:
        result = asyncio.run(_run_units(opts, indexes, stop_after, part, send))
        if not sent:
            conn.send(result)
    except BaseException as exc:  # noqa: BLE001 (report any failure to the parent)
        if not sent:
            conn.send({"error": repr(exc)})
    conn.close()


def _merge(opts: dict, parts: list[dict]) -> dict:
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        raise RuntimeError("; ".join(errors))
    units = {}
    for p in parts:
        units.update(p["units"])
    total: dict[str, int] = {}
    for t in units.values():
        for k, v in t.items():
            if k != "boot":
                total[k] = total.get(k, 0) + v
    return {"units": opts["units"], "procs": len(parts), "speed": opts["speed"], "tally": total, "per_unit": units,
            "samples": sum(p["samples"] for p in parts),
            "cpu_s": sum(p["cpu_s"] for p in parts), "wall_s": max(p["wall_s"] for p in parts),
            "maxrss_kb_per_proc": [p["maxrss_kb"] for p in parts],
            "rss_units_kb": sum(p["rss_end_kb"] - p["rss_start_kb"] for p in parts),
            "lag_ms_max": max(p["lag_ms_max"] for p in parts), "lag_ms_p99": max(p["lag_ms_p99"] for p in parts),
            "ever_connected": sum(p["ever_connected"] for p in parts),
            "last_error": next((p["last_error"] for p in parts if p["ever_connected"] < len(p["units"])), None)}


def simulate(opts: dict, on_summary=None) -> dict:
    """Run the units (opts: the command's options as a dict); return the
    summary. on_summary(summary) is called once, as soon as it is known: with
    opts["hold"] that is while the units are still online."""
    n = opts["units"]
    procs = opts.get("procs") or os.cpu_count() or 1
    procs = max(1, min(procs, n))
    indexes = list(range(opts["first"], opts["first"] + n))
    told: list[bool] = []

    def tell(summary):
        if on_summary is not None and not told:
            on_summary(summary)
        told.append(True)
        return summary

    if procs == 1:
        part = asyncio.run(_run_units(opts, indexes, opts["duration"], 0, lambda r: tell(_merge(opts, [r]))))
        return tell(_merge(opts, [part]))
    ctx = multiprocessing.get_context("fork")
    pipes = []
    workers = []
    for k in range(procs):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, args=(opts, indexes[k::procs], opts["duration"], k, child))
        p.start()
        pipes.append(parent)
        workers.append(p)
    prev = {sig: signal.signal(sig, lambda s, f: [w.is_alive() and os.kill(w.pid, s) for w in workers])
            for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        parts = [p.recv() for p in pipes]
        summary = tell(_merge(opts, parts))
    except BaseException:
        for w in workers:  # a failed or vanished worker: the others must not hold on
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)
        raise
    finally:
        for w in workers:
            w.join()  # with hold: until a signal, forwarded above, ends them
        for sig, h in prev.items():
            signal.signal(sig, h)
    return summary


def main(args: argparse.Namespace) -> int:
    opts = dict(vars(args))
    try:
        if args.shift_change_min is not None and (args.shift_end_min is None
                                                  or args.shift_change_min >= args.shift_end_min):
            raise UsageError("--shift-change-min needs --shift-end-min, and must be before it")
        opts["scenario_data"] = _load_scenario(args.scenario)
        opts["roster"] = _load_json(args.roster, "--roster")
        opts["faults_data"] = _load_json(args.faults, "--faults")
    except UsageError as exc:
        print("seatmon unit simulate: %s" % exc, file=sys.stderr)
        return 2
    if not opts.get("data_dir"):
        opts["data_dir"] = tempfile.mkdtemp(prefix="seatmon-sim-")

    def publish(summary):
        text = json.dumps(summary)
        print(text, flush=True)
        if args.report:
            _write_json(args.report, summary)

    try:
        summary = simulate(opts, publish)
    except (RuntimeError, OSError, EOFError) as exc:
        print("seatmon unit simulate: the units failed: %s" % (exc or "a worker process vanished"), file=sys.stderr)
        return 1
    if summary["ever_connected"] == 0:
        print("seatmon unit simulate: no unit ever reached the broker at %s (last error: %s)"
              % (args.broker, summary["last_error"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="seatmon unit simulate", description=__doc__.splitlines()[0])
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
