"""Run a seatmon command on the demo floor's compressed clock.

    python -m seatmon.worldclock REAL_S:SIM_MS SPEED seatmon-arguments...

The demo's virtual units live in a world whose wall clock runs SPEED times
faster than real time and reads SIM_MS (epoch ms) at real time REAL_S (epoch
s). The collector and the wallboard stamp what they receive with their own
wall clock: run on the real one, they would see every unit's clock hours
ahead (a clock skew that is not there) and every ring counter off. This
launcher replaces `time.time` (and `time.time_ns`) of the process with the
world's clock, then runs the command; monotonic timers, sleeps and timeouts
stay real, as they are for the units.
"""

from __future__ import annotations

import sys
import time


def install(real_s: float, sim_ms: int, speed: float) -> None:
    real_time = time.time

    def world_time() -> float:
        return sim_ms / 1000 + (real_time() - real_s) * speed

    time.time = world_time
    time.time_ns = lambda: int(world_time() * 1e9)


def main(argv: list[str]) -> int:
    epoch, speed, rest = argv[0], argv[1], argv[2:]
    real_s, _, sim_ms = epoch.partition(":")
    install(float(real_s), int(sim_ms), float(speed))
    from seatmon import cli
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
