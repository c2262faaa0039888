"""The pure decisions of `seatmon web`: who may open which view of which
site, and the login throttle (per account, per address, its window)."""

from __future__ import annotations

from seatmon.web.accounts import User
from seatmon.web.app import _safe_next
from seatmon.web.guard import LoginLimits, LoginThrottle, may, sites_of

HEAD = User("h", "head")
LEADER = User("l", "leader", ("hq",))
TECH = User("t", "technician")
TECH_HQ = User("t2", "technician", ("hq",))
AGENT = User("a", "agent", agent_id="a-1")


def test_views_by_role_and_site():
    assert may(HEAD, "board", "anywhere") and may(HEAD, "fleet", "hq") and may(HEAD, "monthly", "b")
    assert may(LEADER, "answers", "hq") and may(LEADER, "board", "hq")
    assert not may(LEADER, "answers", "branch") and not may(LEADER, "fleet", "hq")
    assert may(TECH, "units", "branch") and may(TECH, "fleet", "hq") and not may(TECH, "answers", "hq")
    assert may(TECH_HQ, "units", "hq") and not may(TECH_HQ, "units", "branch")
    assert not any(may(AGENT, v, "hq") for v in ("board", "answers", "units", "fleet", "monthly"))
    assert not may(User("x", "head", disabled=True), "board", "hq")
    assert not may(User("x", "owner"), "board", "hq")  # an unknown role opens nothing
    assert sites_of(LEADER, ["branch", "hq"]) == ["hq"] and sites_of(HEAD, ["branch", "hq"]) == ["branch", "hq"]


def test_the_throttle_locks_an_account_and_an_address_until_the_window_passes():
    t = LoginThrottle(LoginLimits(per_user=3, per_address=5, window_s=60))
    for i in range(3):
        assert t.locked_for("li", "10.0.0.1", 100 + i) == 0
        t.failed("li", "10.0.0.1", 100 + i)
    assert t.locked_for("LI", "10.0.0.9", 103) == 57  # the account, from anywhere, any case
    assert t.locked_for("chen", "10.0.0.1", 103) == 0  # the address still has room
    for name in ("a", "b"):
        t.failed(name, "10.0.0.1", 104)
    assert t.locked_for("chen", "10.0.0.1", 105) == 55  # the address is full until its first failure leaves
    assert t.locked_for("li", "10.0.0.9", 160) == 0  # the first failure left the window
    t.succeeded("li")
    assert t.locked_for("li", "10.0.0.9", 161) == 0


def test_only_a_local_path_is_followed_after_login():
    assert _safe_next("/reports/answers?site=hq") == "/reports/answers?site=hq"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None, "reports"):
        assert _safe_next(bad) == ""


def test_the_throttle_forgets_stale_names_when_many_were_tried(monkeypatch):
    from seatmon.web import guard

    monkeypatch.setattr(guard, "MAX_KEYS", 10)
    t = LoginThrottle(LoginLimits(per_user=3, per_address=1000, window_s=60))
    for i in range(10):
        t.failed(f"guess{i}", "10.0.0.1", 100)
    t.failed("li", "10.0.0.1", 200)  # the guesses have left the window: dropped
    assert set(t._fails) == {("user", "li"), ("address", "10.0.0.1")}


def test_who_may_see_an_agent():
    from seatmon.web.guard import may_list_seat_calls, may_see_agent
    assert may_see_agent(HEAD, "a-2", set())
    assert may_see_agent(AGENT, "a-1", set()) and not may_see_agent(AGENT, "a-2", {"hq"})
    assert not may_see_agent(User("a0", "agent"), "a-1", set())  # an agent account without an id sees nobody
    assert may_see_agent(LEADER, "a-2", {"hq", "branch"}) and not may_see_agent(LEADER, "a-2", {"branch"})
    assert not may_see_agent(LEADER, "a-2", set())  # worked nowhere in the range: not the leader's
    assert not may_see_agent(TECH, "a-1", {"hq"}) and not may_see_agent(User("x", "head", disabled=True), "a", set())
    assert may_list_seat_calls(HEAD, "b") and may_list_seat_calls(LEADER, "hq")
    assert not may_list_seat_calls(LEADER, "branch") and not may_list_seat_calls(AGENT, "hq")
    assert not may_list_seat_calls(TECH, "hq")
