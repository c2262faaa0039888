"""Per-report codes for agent ids (`--pseudonymise`), for figures shared
outside: `anon-01`, `anon-02`, ... in the order agents first appear in the
report.

Why sequential codes and not a keyed hash of the id: a code says nothing
about the id (no key to keep, leak or rotate; nothing to brute-force from a
list of staff ids), it is short enough to read aloud in a meeting, and two
reports are unlinkable because a code only means "the n-th agent this
report lists". `anon-` and not a letter and digits, so a code is never
taken for a seat id (`A-01`). "(unassigned)" is nobody and stays as it is.
"""

from __future__ import annotations

from seatmon.roster.model import UNASSIGNED

PREFIX = "anon-"


class Pseudonyms:
    """agent id -> code, stable within one report (one instance per report)."""

    def __init__(self):
        self._codes: dict[str, str] = {}

    def __call__(self, agent: str) -> str:
        if agent == UNASSIGNED:
            return agent
        code = self._codes.get(agent)
        if code is None:
            code = self._codes[agent] = f"{PREFIX}{len(self._codes) + 1:02d}"
        return code

    def __len__(self) -> int:
        return len(self._codes)


def identity(agent: str) -> str:
    """The no-op stand-in when ids are shown."""
    return agent


class Shown:
    """Agent ids as one report shows them (codes when pseudonymised), and how
    many agents it named (for the audit line)."""

    def __init__(self, pseudonymise: bool = False):
        self._name = Pseudonyms() if pseudonymise else identity
        self._ids: set[str] = set()

    def __call__(self, agent: str) -> str:
        if agent != UNASSIGNED:
            self._ids.add(agent)
        return self._name(agent)

    def __len__(self) -> int:
        return len(self._ids)
