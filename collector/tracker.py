"""Per-unit sequence bookkeeping: the end-to-end acknowledgement mark,
de-duplication and lost-event (gap) counting. Pure logic, no I/O: the spool
persists a UnitState in the same transaction as the events that changed it.

A unit numbers its events with a `seq` that never restarts within one
incarnation of its board (`inc`: a fresh journal is a new incarnation, ""
for units from before incarnations); a UnitState tracks one (site, unit, inc).
`mark` is the highest seq such that every seq at or below it is handled:
durably stored, durably quarantined, or declared lost by the unit itself;
`above` holds handled seqs past a gap. `held` keeps the seqs that were handled
by quarantining them, so that a replay of such a message is stored (once)
rather than taken for a duplicate.
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
    inc: str = ""
    held: set[int] = field(default_factory=set)  # seqs handled by quarantining them

    def _advance(self) -> None:
        while self.mark + 1 in self.above:
            self.mark += 1
            self.above.discard(self.mark)

    def is_stored(self, seq: int) -> bool:
        return seq <= self.mark or seq in self.above

    def store(self, seq: int) -> bool:
        """Record a newly stored seq. Returns False for a duplicate. A seq
        that was quarantined is stored once more (a replay after a fix)."""
        if seq in self.held:
            self.held.discard(seq)
            return True
        return self._handle(seq)

    def hold(self, seq: int) -> bool:
        """Record a seq whose message went to the quarantine: handled, so the
        ack moves past it. Returns False if the seq was handled already (a
        resend: not to be quarantined again)."""
        if not self._handle(seq):
            return False
        self.held.add(seq)
        return True

    def _handle(self, seq: int) -> bool:
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

    def held_json(self) -> str:
        return json.dumps(to_ranges(self.held))

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


def unit_key(site: str, unit: str, inc: str = "") -> str:
    """Units are tracked per site, unit (as their topics are) and incarnation:
    `site/unit` for the legacy incarnation, `site/unit/inc` for the others
    (ids hold no slash)."""
    return site + "/" + unit + ("/" + inc if inc else "")


def split_key(key: str) -> tuple[str, str, str]:
    """unit_key's inverse: (site, unit, inc)."""
    site, unit, inc = (key.split("/") + [""])[:3]
    return site, unit, inc
