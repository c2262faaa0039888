"""Roster assignments and the lookup every per-agent figure goes through. Pure."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

UNASSIGNED = "(unassigned)"


@dataclass(frozen=True)
class Assignment:
    """`agent` at `seat` of `site` from `start_ms` (inclusive) to `end_ms`
    (exclusive), within the shift labelled `shift` (`2026-11-22/night`: the
    shift's start date and name, the label the units put on their events).
    A whole-shift assignment spans the shift; a seat change inside a shift
    gives two or more assignments with the same label."""
    site: str
    seat: str
    shift: str
    agent: str
    start_ms: int
    end_ms: int

    @property
    def shift_name(self) -> str:
        return self.shift.rsplit("/", 1)[-1]

    @property
    def day(self) -> str:
        return self.shift.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Agent:
    """An agent's personal data: only in the roster."""
    id: str
    name: str = ""
    email: str = ""


class Roster:
    """Who sat where: `agent_at(site, seat, ts_ms)`. Assignments of one seat
    never overlap (the import refuses that), so a bisect finds the one."""

    def __init__(self, assignments):
        self.assignments = sorted(assignments, key=lambda a: (a.site, a.seat, a.start_ms))
        self._by_seat: dict[tuple[str, str], tuple[list[int], list[Assignment]]] = {}
        for a in self.assignments:
            starts, items = self._by_seat.setdefault((a.site, a.seat), ([], []))
            starts.append(a.start_ms)
            items.append(a)

    def __len__(self) -> int:
        return len(self.assignments)

    def at(self, site: str, seat: str, ts_ms: int) -> Assignment | None:
        found = self._by_seat.get((site, seat))
        if not found:
            return None
        starts, items = found
        i = bisect_right(starts, ts_ms) - 1
        if i >= 0 and ts_ms < items[i].end_ms:
            return items[i]
        return None

    def agent_at(self, site: str, seat: str, ts_ms: int) -> str:
        """The agent at the seat at that moment, or UNASSIGNED."""
        a = self.at(site, seat, ts_ms)
        return a.agent if a else UNASSIGNED

    def of_seat(self, site: str, seat: str) -> list[Assignment]:
        found = self._by_seat.get((site, seat))
        return list(found[1]) if found else []

    def agents(self) -> list[str]:
        return sorted({a.agent for a in self.assignments})
