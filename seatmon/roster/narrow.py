"""Narrow reads of the stored roster: one agent's assignments, or those of
a few seats, instead of the whole site's (`store.load`). A 500-seat site
holds 45 000 assignments a month; one agent's page reads six months of
theirs (~130), a seat's listing a month of its own (~90).

Same points and rules as store.load (assignments overlapping [start, end),
found from up to store.LONGEST_MS before the range), with the agent (a
field) or the seats (a tag) filtered in InfluxDB.
"""

from __future__ import annotations

from collector.influx import InfluxV1, tag_literal
from seatmon.roster import store
from seatmon.roster.model import Agent, Assignment, Roster


def _load(db: InfluxV1, start_ms: int, end_ms: int, site: str | None, extra: str) -> Roster:
    where = f"time >= {start_ms - store.LONGEST_MS}ms AND time < {end_ms}ms{extra}"
    if site is not None:
        where += f" AND site = {tag_literal(site)}"
    out = []
    q = f'SELECT "agent", "end_ms", "shift" FROM {store.MEASUREMENT} WHERE {where} GROUP BY "site", "seat"'
    for result in db.query(q):
        for series in result.get("series", []):
            tags = series.get("tags") or {}
            cols = series["columns"]
            for row in series["values"]:
                r = dict(zip(cols, row))
                a = Assignment(tags.get("site", ""), tags.get("seat", ""), r["shift"], r["agent"], int(r["time"]),
                               int(r["end_ms"]))
                if a.end_ms > start_ms:
                    out.append(a)
    return Roster(out)


def of_agent(db: InfluxV1, agent: str, start_ms: int, end_ms: int, site: str | None = None) -> Roster:
    """The agent's assignments overlapping [start, end) (of `site`, when given)."""
    return _load(db, start_ms, end_ms, site, f' AND "agent" = {tag_literal(agent)}')


def of_seats(db: InfluxV1, seats, start_ms: int, end_ms: int, site: str | None = None) -> Roster:
    """Every assignment of these seats overlapping [start, end)."""
    if not seats:
        return store.load(db, start_ms, end_ms, site)
    return _load(db, start_ms, end_ms, site,
                 " AND (" + " OR ".join(f'"seat" = {tag_literal(s)}' for s in seats) + ")")


def agent(db: InfluxV1, agent_id: str) -> Agent | None:
    """One agent's name and e-mail (store.agents reads every agent's)."""
    q = f'SELECT "email", "name" FROM {store.MEASUREMENT_AGENT} WHERE "agent" = {tag_literal(agent_id)}'
    for result in db.query(q):
        for series in result.get("series", []):
            r = dict(zip(series["columns"], series["values"][-1]))
            return Agent(agent_id, r.get("name") or "", r.get("email") or "")
    return None
