"""Per-unit sequence bookkeeping: the end-to-end acknowledgement mark,
de-duplication and lost-event (gap) counting. Pure logic, no I/O: the spool
persists a UnitState in the same transaction as the events that changed it.

A unit numbers its events with a `seq` that never restarts. `mark` is the
highest seq such that every seq at or below it is durably stored (or was
declared lost by the unit itself); `above` holds stored seqs past a gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class UnitState:
    unit: str
    site: str = ""
    mark: int = 0
    above: set[int] = field(default_factory=set)
    known: bool = False  # True once mark rests on something we know (seq 1, a seed, an acked)
    unit_acked: int = 0  # the unit's own mark from its heartbeat
    lost: int = 0  # events the unit gave up on before we stored them
    last_seen_ms: int = 0
    boot: int = 0

    def _advance(self) -> None:
        while self.mark + 1 in self.above:
            self.mark += 1
            self.above.discard(self.mark)

    def is_stored(self, seq: int) -> bool:
        return seq <= self.mark or seq in self.above

    def store(self, seq: int) -> bool:
        """Record a newly stored seq. Returns False for a duplicate."""
        if self.is_stored(seq):
            return False
        if seq == 1:
            self.known = True
        self.above.add(seq)
        self._advance()
        return True

    def seed(self, seq: int) -> bool:
        """A mark from the retained ack topic (ours or a peer's): everything at
        or below it is stored somewhere. Returns True if the mark moved."""
        if seq <= self.mark:
            self.known = True
            return False
        self.mark = seq
        self.known = True
        self.above = {s for s in self.above if s > seq}
        self._advance()
        return True

    def unit_mark(self, acked: int) -> list[tuple[int, int]]:
        """The unit's heartbeat `acked`: it will never resend a seq at or
        below it. Returns the gaps (first, last) now closed as lost; none for
        a unit we have no baseline for (a fresh spool must not invent losses)."""
        self.unit_acked = max(self.unit_acked, acked)
        if acked <= self.mark:
            return []
        gaps: list[tuple[int, int]] = []
        if self.known:
            start = self.mark + 1
            for seq in sorted(s for s in self.above if s <= acked):
                if seq > start:
                    gaps.append((start, seq - 1))
                start = seq + 1
            if start <= acked:
                gaps.append((start, acked))
            self.lost += sum(last - first + 1 for first, last in gaps)
        self.seed(acked)
        return gaps

    # ---- persistence helpers ---------------------------------------------

    def above_json(self) -> str:
        return json.dumps(to_ranges(self.above))

    @staticmethod
    def above_from_json(text: str) -> set[int]:
        return {s for lo, hi in json.loads(text or "[]") for s in range(lo, hi + 1)}


def to_ranges(seqs) -> list[list[int]]:
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges
