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

from tools.sim.unit import VirtualUnit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--units", type=int, default=1, help="number of virtual units")
    parser.add_argument("--first", type=int, default=1, help="index of the first unit (ids u-NNNN)")
    parser.add_argument("--site", required=True, help="site id")
    parser.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
    parser.add_argument("--scenario", help="JSON file: scripted calls per unit instead of the traffic model")
    parser.add_argument("--data-dir", help="per-unit data dirs (config, journal) go under it (default: a temp dir)")
    parser.add_argument("--procs", type=int, default=0, help="worker processes (default: one per core)")
    parser.add_argument("--duration", type=float, default=0, help="stop after this many real seconds (0: run until stopped)")
    parser.add_argument("--seed", type=int, default=1, help="traffic model seed")
    parser.add_argument("--calls-per-hour", type=float, default=12.0, help="incoming calls per seat and hour")
    parser.add_argument("--outgoing-per-hour", type=float, default=4.0, help="outgoing calls per seat and hour")
    parser.add_argument("--shift-end-min", type=float, default=None,
                        help="the seats' shift ends this many simulated minutes after start")
    parser.add_argument("--shift-change-min", type=float, default=None,
                        help="with --shift-end-min: an early and a late shift, changing this many simulated minutes after start")
    parser.add_argument("--drain", action="store_true",
                        help="at the end, start no new calls, finish those in progress and wait until every "
                             "journaled event is acknowledged (needs a collector)")
    parser.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive, seconds")
    parser.add_argument("--heartbeat-s", type=float, default=60, help="heartbeat period, simulated seconds")
    parser.add_argument("--report", help="also write the final JSON to this file")


def _parse_broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit("--broker: expected HOST:PORT, got %r" % text)
    return host or "127.0.0.1", int(port)


def _load_scenario(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        with open(path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise SystemExit("%s: line %d column %d: %s" % (path, exc.lineno, exc.colno, exc.msg))
    if not isinstance(data, dict) or not isinstance(data.get("units", {}), dict):
        raise SystemExit("%s: expected {\"units\": {\"<index> or *\": {...}}}" % path)
    return data


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


async def _run_units(opts: dict, indexes: list[int], stop_after: float) -> dict:
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
        units.append(VirtualUnit(os.path.join(opts["data_dir"], "u%04d" % i), opts["site"], i, broker,
                                 speed=opts["speed"], seed=opts["seed"], traffic=traffic, script=script,
                                 link={"keepalive": opts["keepalive"], "heartbeat_ms": int(opts["heartbeat_s"] * 1000)},
                                 settings=opts.get("settings")))
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

    async def monitor():
        # How far each unit's sampler is behind its clock, in real ms.
        while True:
            await asyncio.sleep(1)
            worst = 0.0
            for u in units:
                behind = (u.clock.ticks_ms() - u.unit.sampled) & 0x3FFFFFFF
                worst = max(worst, behind / u.clock.speed)
            lags.append(worst)

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
    finally:
        mon.cancel()
        for u in units:
            await u.unit.stop(clean=False)
        for t in tasks:
            t.cancel()
    wall = time.monotonic() - t0
    rss1 = _rss_kb()
    lags_sorted = sorted(lags) or [0.0]
    return {"units": {u.unit.core.conf["unit"]: u.tally() for u in units},
            "samples": sum(u.unit.samples for u in units),
            "cpu_s": time.process_time() - cpu0, "wall_s": wall,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "rss_start_kb": rss0, "rss_end_kb": rss1,
            "lag_ms_max": max(lags_sorted), "lag_ms_p99": lags_sorted[int(0.99 * (len(lags_sorted) - 1))],
            "lag_ms_last": lags[-1] if lags else 0.0}


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


def _worker(opts: dict, indexes: list[int], stop_after: float, conn) -> None:
    try:
        conn.send(asyncio.run(_run_units(opts, indexes, stop_after)))
    except BaseException as exc:  # noqa: BLE001 (report any failure to the parent)
        conn.send({"error": repr(exc)})
    conn.close()


def simulate(opts: dict) -> dict:
    """Run the units (opts: the command's options as a dict); return the summary."""
    n = opts["units"]
    procs = opts.get("procs") or os.cpu_count() or 1
    procs = max(1, min(procs, n))
    indexes = list(range(opts["first"], opts["first"] + n))
    if procs == 1:
        parts = [asyncio.run(_run_units(opts, indexes, opts["duration"]))]
    else:
        ctx = multiprocessing.get_context("fork")
        pipes = []
        workers = []
        for k in range(procs):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(opts, indexes[k::procs], opts["duration"], child))
            p.start()
            pipes.append(parent)
            workers.append(p)
        prev = {sig: signal.signal(sig, lambda s, f: [w.is_alive() and os.kill(w.pid, s) for w in workers])
                for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            parts = [p.recv() for p in pipes]
        finally:
            for sig, h in prev.items():
                signal.signal(sig, h)
            for w in workers:
                w.join()
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
    return {"units": n, "procs": len(parts), "speed": opts["speed"], "tally": total, "per_unit": units,
            "samples": sum(p["samples"] for p in parts),
            "cpu_s": sum(p["cpu_s"] for p in parts), "wall_s": max(p["wall_s"] for p in parts),
            "maxrss_kb_per_proc": [p["maxrss_kb"] for p in parts],
            "rss_units_kb": sum(p["rss_end_kb"] - p["rss_start_kb"] for p in parts),
            "lag_ms_max": max(p["lag_ms_max"] for p in parts), "lag_ms_p99": max(p["lag_ms_p99"] for p in parts)}


def main(args: argparse.Namespace) -> int:
    opts = dict(vars(args))
    opts["scenario_data"] = _load_scenario(args.scenario)
    if not opts.get("data_dir"):
        opts["data_dir"] = tempfile.mkdtemp(prefix="seatmon-sim-")
    _parse_broker(args.broker)
    summary = simulate(opts)
    text = json.dumps(summary)
    print(text)
    if args.report:
        with open(args.report, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="seatmon unit simulate", description=__doc__.splitlines()[0])
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
