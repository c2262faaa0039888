"""A roster for a generated floor (rig/gendata.py): who sat where, shift by
shift. Agents keep their shift and rotate seats weekly; some shifts have a
seat change at a random minute, some seats nobody holds for a shift.
Deterministic for a seed. For tests and benchmarks.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rig.gendata import SHIFTS, Plan
from seatmon.roster.model import Agent, Assignment


def agent_id(i: int) -> str:
    return f"ag-{i + 1:04d}"


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def shift_span(day, start_hour: int, length_h: int, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) ms of a shift in local wall time (DST-correct: a night
    shift over the autumn change lasts an hour longer)."""
    start = datetime.combine(day, time(start_hour), tz)
    end_local = datetime.combine(day, time(0)) + timedelta(hours=start_hour + length_h)
    return _ms(start), _ms(end_local.replace(tzinfo=tz))


def roster(plan: Plan, seed: int = 7, changes: float = 0.01, unassigned: float = 0.0,
           first_day=None, days: int | None = None) -> tuple[list[Assignment], list[Agent]]:
    """Assignments for every seat and shift of the plan's days (and the day
    before, whose night shift reaches into the first): 3 shifts a day, an
    agent per seat and shift name, seats rotating weekly; a share `changes`
    of the shifts hands the seat to another agent at a random minute, a
    share `unassigned` of them has nobody at the seat."""
    rng = random.Random(seed)
    tz = ZoneInfo(plan.tz)
    first = first_day or plan.start - timedelta(days=1)
    n = plan.seats
    out = []
    for d in range((days or plan.days + 1)):
        day = first + timedelta(days=d)
        week = day.toordinal() // 7
        for k, (name, start_hour, length) in enumerate(SHIFTS):
            t0, t1 = shift_span(day, start_hour, length, tz)
            for i in range(n):
                if rng.random() < unassigned:
                    continue
                seat, label = plan.seat(i), f"{day.isoformat()}/{name}"
                agent = agent_id(k * n + (i + week) % n)
                if rng.random() < changes:
                    cut = t0 + rng.randrange(1, (t1 - t0) // 60000) * 60000 + rng.randrange(0, 60000)
                    other = agent_id(rng.randrange(3 * n))
                    out += [Assignment(plan.site, seat, label, agent, t0, cut),
                            Assignment(plan.site, seat, label, other, cut, t1)]
                else:
                    out.append(Assignment(plan.site, seat, label, agent, t0, t1))
    return out, [Agent(agent_id(i)) for i in range(3 * n)]
