"""The roster in InfluxDB, beside the events, so the backup and restore of
the database carry it (docs/schema.md, "The roster").

- `roster`: one point per assignment; time = its start; tags `site`, `seat`,
  `shift_name` (bounded, as for events); fields `shift` (the label), `agent`,
  `end_ms`. Assignments of one seat never overlap, so (site, seat, start)
  names one point and writing it again replaces it.
- `roster_agent`: one point per agent at time 0; tag `agent`; fields `name`,
  `email` (empty when not given). Only here do names and e-mails live.
"""

from __future__ import annotations

from influxdb_client.client.write.point import _ESCAPE_KEY, _ESCAPE_STRING

from collector.influx import InfluxV1, tag_literal
from seatmon.roster.model import Agent, Assignment, Roster

MEASUREMENT = "roster"
MEASUREMENT_AGENT = "roster_agent"


def _str(value: str) -> str:
    return '"' + value.translate(_ESCAPE_STRING) + '"'


def _key(value: str) -> str:
    return value.translate(_ESCAPE_KEY)


def assignment_line(a: Assignment) -> str:
    return (f"{MEASUREMENT},seat={_key(a.seat)},shift_name={_key(a.shift_name)},site={_key(a.site)} "
            f"agent={_str(a.agent)},end_ms={a.end_ms}i,shift={_str(a.shift)} {a.start_ms}")


def agent_line(agent: Agent) -> str:
    return f"{MEASUREMENT_AGENT},agent={_key(agent.id)} email={_str(agent.email)},name={_str(agent.name)} 0"


def write(db: InfluxV1, assignments: list[Assignment], agents: list[Agent] = ()) -> None:
    lines = [assignment_line(a) for a in assignments] + [agent_line(p) for p in agents]
    for i in range(0, len(lines), 5000):
        db.write_lines(lines[i:i + 5000])


def delete_span(db: InfluxV1, site: str, start_ms: int, end_ms: int, seat: str | None = None,
                shift_name: str | None = None) -> None:
    """Remove the assignments starting in [start_ms, end_ms) at the site
    (one seat, one shift name: when given)."""
    where = [f"site = {tag_literal(site)}"]
    if seat is not None:
        where.append(f"seat = {tag_literal(seat)}")
    if shift_name is not None:
        where.append(f"shift_name = {tag_literal(shift_name)}")
    db.query(f"DELETE FROM {MEASUREMENT} WHERE {' AND '.join(where)} "
             f"AND time >= {start_ms}ms AND time < {end_ms}ms", method="POST")


# The longest assignment (a shift in the site file is at most 24 h): an
# assignment starting this long before a range can still reach into it.
LONGEST_MS = 24 * 3600 * 1000


def load(db: InfluxV1, start_ms: int, end_ms: int, site: str | None = None, *, agent: str | None = None,
         seats=None) -> Roster:
    """Every assignment that overlaps [start_ms, end_ms): of `site`, of one
    `agent` and of some `seats`, when given (filtered in InfluxDB: one
    agent's six months are ~130 points of a 500-seat site's 270 000)."""
    where = f"time >= {start_ms - LONGEST_MS}ms AND time < {end_ms}ms"
    if site is not None:
        where += f" AND site = {tag_literal(site)}"
    if agent is not None:
        where += f' AND "agent" = {tag_literal(agent)}'
    if seats:
        where += " AND (" + " OR ".join(f'"seat" = {tag_literal(s)}' for s in seats) + ")"
    out = []
    q = f'SELECT "agent", "end_ms", "shift" FROM {MEASUREMENT} WHERE {where} GROUP BY "site", "seat"'
    for result in db.query(q):
        for series in result.get("series", []):
            tags = series.get("tags") or {}
            cols = series["columns"]
            for row in series["values"]:
                r = dict(zip(cols, row))
                a = Assignment(tags.get("site", ""), tags.get("seat", ""), r["shift"], r["agent"],
                               int(r["time"]), int(r["end_ms"]))
                if a.end_ms > start_ms:
                    out.append(a)
    return Roster(out)


def agents(db: InfluxV1) -> dict[str, Agent]:
    """Every agent's name and e-mail, by id."""
    found = {}
    for result in db.query(f'SELECT "email", "name" FROM {MEASUREMENT_AGENT} GROUP BY "agent"'):
        for series in result.get("series", []):
            agent = (series.get("tags") or {}).get("agent", "")
            r = dict(zip(series["columns"], series["values"][-1]))
            found[agent] = Agent(agent, r.get("name") or "", r.get("email") or "")
    return found


def agent(db: InfluxV1, agent_id: str) -> Agent | None:
    """One agent's name and e-mail, or None."""
    q = f'SELECT "email", "name" FROM {MEASUREMENT_AGENT} WHERE "agent" = {tag_literal(agent_id)}'
    for result in db.query(q):
        for series in result.get("series", []):
            r = dict(zip(series["columns"], series["values"][-1]))
            return Agent(agent_id, r.get("name") or "", r.get("email") or "")
    return None
