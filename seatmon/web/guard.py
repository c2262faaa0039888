"""Who may see what, and how many failed logins are let through: pure
decisions, no I/O (the app asks, then logs and answers 403 or 429).

Views are named; each role opens a fixed set of them, and every view of a
site is checked against the sites the account holds (a head holds every
site; a technician without sites holds every site too).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from seatmon.web.accounts import User

REPORT_VIEWS = ("answers", "staffing", "safety", "units", "daily", "weekly", "monthly")
# Views that name agents: each is also checked per agent (may_see_agent) and audited.
PEOPLE_VIEWS = ("agent", "calls")
# role -> the views it may open (besides its own account page)
VIEWS: dict[str, frozenset[str]] = {
    "head": frozenset({"board", "fleet", *REPORT_VIEWS, *PEOPLE_VIEWS}),
    "leader": frozenset({"board", *REPORT_VIEWS, *PEOPLE_VIEWS}),
    "technician": frozenset({"units", "fleet"}),
    "agent": frozenset(PEOPLE_VIEWS),  # their own page and calls only: see may_see_agent
}


def may(user: User, view: str, site: str | None) -> bool:
    """May `user` open `view` for `site` (None: a view of no one site)?"""
    if user.disabled or view not in VIEWS.get(user.role, ()):
        return False
    if site is None or user.role == "head":
        return True
    if user.role == "technician" and not user.sites:
        return True
    return site in user.sites


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def may_see_agent(user: User, agent: str, sites_worked) -> bool:
    """May `user` see the figures and calls of `agent`, who worked at
    `sites_worked` in the range asked for (the roster says)? A head: anyone;
    a leader: agents who worked at one of the leader's sites; an agent:
    themselves only; a technician: nobody."""
    if user.disabled or "agent" not in VIEWS.get(user.role, ()):
        return False
    if user.role == "head":
        return True
    if user.role == "agent":
        return bool(user.agent_id) and agent == user.agent_id
    return bool(set(sites_worked) & set(user.sites))


def may_list_seat_calls(user: User, site: str) -> bool:
    """A seat's calls name whoever sat there: heads and the site's leaders."""
    return user.role in ("head", "leader") and may(user, "calls", site)


def sites_of(user: User, known: list[str]) -> list[str]:
    """The sites among `known` the user may pick."""
    if user.role == "head" or (user.role == "technician" and not user.sites):
        return list(known)
    return [s for s in known if s in user.sites]


MAX_KEYS = 10000  # accounts and addresses with failures kept before the stale ones are dropped


@dataclass
class LoginLimits:
    """Failed logins allowed per account and per client address within
    `window_s`; beyond, that account or address is refused until the oldest
    failure leaves the window."""

    per_user: int = 5
    per_address: int = 20
    window_s: float = 900.0


@dataclass
class LoginThrottle:
    limits: LoginLimits = field(default_factory=LoginLimits)
    _fails: dict[tuple[str, str], deque] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str], now: float) -> deque:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] >= self.limits.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
            return deque()
        return q

    def locked_for(self, user: str, address: str, now: float) -> float:
        """Seconds until a login for `user` from `address` is tried again; 0: go ahead."""
        wait = 0.0
        for key, limit in ((("user", user.lower()), self.limits.per_user),
                           (("address", address), self.limits.per_address)):
            q = self._recent(key, now)
            if len(q) >= limit:
                wait = max(wait, q[len(q) - limit] + self.limits.window_s - now)
        return wait

    def failed(self, user: str, address: str, now: float) -> None:
        if len(self._fails) >= MAX_KEYS:  # many names tried: forget those whose failures all left the window
            for key in [k for k, q in self._fails.items() if now - q[-1] >= self.limits.window_s]:
                del self._fails[key]
        for key in (("user", user.lower()), ("address", address)):
            self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, user: str) -> None:
        self._fails.pop(("user", user.lower()), None)
