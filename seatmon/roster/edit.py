"""One assignment put in place by hand (`seatmon roster set`). Pure.

The new assignment takes its span of the seat: stored assignments of the
same shift that it overlaps keep only their parts outside it, so setting
02:00-06:00 in a night shift leaves 22:00-02:00 to whoever had it.
"""

from __future__ import annotations

from dataclasses import replace

from seatmon.roster.model import Assignment


class Conflict(ValueError):
    """The new assignment overlaps one of another shift (the site's shifts overlap)."""

    def __init__(self, other: Assignment):
        super().__init__(other.shift)
        self.other = other


def place(stored: list[Assignment], new: Assignment) -> tuple[list[Assignment], list[Assignment]]:
    """(to remove, to write) so that `new` holds its span of its seat.
    `stored`: assignments of the site; raises Conflict for an overlapping
    one of another shift."""
    remove, write = [], [new]
    for a in stored:
        if a.seat != new.seat or a.site != new.site or not (a.start_ms < new.end_ms and new.start_ms < a.end_ms):
            continue
        if a.shift != new.shift:
            raise Conflict(a)
        if a == new:
            return [], []  # already so
        remove.append(a)
        if a.start_ms < new.start_ms:
            write.append(replace(a, end_ms=new.start_ms))
        if a.end_ms > new.end_ms:
            write.append(replace(a, start_ms=new.end_ms))
    return remove, write
