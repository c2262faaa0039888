"""The views that name agents: one agent's month (`seatmon report agent`)
and the calls behind a figure (`seatmon report calls`). The query string
checked into the Scope the commands build, the links from a report's
figures to their calls, and what the audit line says was seen. Nothing
here computes a figure: agent_page.py and calls.py do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from html import escape
from urllib.parse import urlencode

from seatmon.report.calls import FILTERS
from seatmon.report.evidence import check_agent_id
from seatmon.report.query import ReportError, Scope, make_scope, month_scope
from seatmon.web.reports import MAX_DAYS
from shared import protocol

FORMATS = ("html", "csv", "json")


@dataclass(frozen=True)
class CallsQuery:
    """What a calls listing asks for, checked."""

    site: str
    seats: tuple[str, ...]
    agent: str | None
    first: str
    last: str
    outcomes: tuple[str, ...]
    fmt: str

    def query(self, **changes) -> dict[str, str]:
        c = replace(self, **{k: v for k, v in changes.items() if k != "format"})
        q = {"site": c.site, "from": c.first, "to": c.last}
        if c.seats:
            q["seat"] = ",".join(c.seats)
        if c.agent:
            q["agent"] = c.agent
        if c.outcomes:
            q["outcome"] = ",".join(c.outcomes)
        if "format" in changes:
            q["format"] = changes["format"]
        return q


def _format(params, allowed=FORMATS) -> str:
    fmt = params.get("format") or "html"
    if fmt not in allowed:
        raise ReportError(f"format {fmt!r} is not one of {', '.join(allowed)}")
    return fmt


def parse_calls(params, site: str, today: date, own_agent: str | None = None) -> CallsQuery:
    """The query string of /calls; `own_agent`: an agent account's id, the
    default agent when none is named."""
    fmt = _format(params)
    seats = tuple(x.strip() for x in (params.get("seat") or "").split(",") if x.strip())
    for seat in seats:
        if not protocol._is_id(seat):
            raise ReportError(f"seat {seat!r} is not an id (1-{protocol.ID_MAX} of A-Z a-z 0-9 - _ .)")
    agent = params.get("agent") or own_agent
    if agent is not None:
        check_agent_id(agent, "agent")
    if not seats and agent is None:
        raise ReportError("whose calls? give a seat (seat=A-01) or an agent (agent=ID)")
    outcomes = tuple(dict.fromkeys(x.strip() for x in (params.get("outcome") or "").split(",") if x.strip()))
    for o in outcomes:
        if o not in FILTERS:
            raise ReportError(f"outcome {o!r} is not one of {', '.join(FILTERS)}")
    first = params.get("from") or today.isoformat()
    return CallsQuery(site, seats, agent, first, params.get("to") or first, outcomes, fmt)


def calls_scope(q: CallsQuery, tz: str, zone_known: bool) -> Scope:
    scope = make_scope(q.first, q.last, tz, q.site, q.seats)
    if (scope.last - scope.first).days >= MAX_DAYS:
        raise ReportError(f"{scope.first} to {scope.last} is longer than {MAX_DAYS} days: pick a shorter range "
                          "(or use `seatmon report calls` for longer ones)")
    return replace(scope, zone_known=zone_known)


def parse_agent(params, agent: str, site: str, tz: str, zone_known: bool, today: date) -> tuple[str, Scope]:
    """(format, the month's Scope) of /agents/ID; the month defaults to this one."""
    check_agent_id(agent, "agent")
    fmt = _format(params, ("html", "json"))
    month = params.get("month") or today.strftime("%Y-%m")
    return fmt, replace(month_scope(month, tz, site), zone_known=zone_known)


def audit_scope(view: str, scope: Scope | None, params, client: str, **extra) -> dict:
    """What the audit line says was asked for and covered."""
    out = {"view": view, "query": dict(params), "client": client}
    if scope is not None:
        out.update(site=scope.site, **{"from": scope.first.isoformat(), "to": scope.last.isoformat()},
                   tz=scope.tz)
    out.update(extra)
    return out


# ---- the calls behind a figure --------------------------------------------------------------------

# The answers table's count columns (after the group) -> the calls listing's outcome ("" : every call).
COUNT_OUTCOMES = ("", "timely", "late", "missed", "abandoned")
_TABLE = re.compile(r"<table>.*?</table>", re.S)
_ROW = re.compile(r"<tr>(<td>[^<]*</td>)((?:<td>[^<]*</td>)+)</tr>")
_CELL = re.compile(r"<td>([^<]*)</td>")


SEAT_SECTION = "<h2>Answers by seat</h2>"  # the daily, weekly and monthly pages' table of seats


def link_counts(page: str, site: str, scope: Scope) -> str:
    """A page with each seat's counts (calls, in time, late, missed,
    abandoned) linking to the calls behind them: the answers report by seat
    (its first table), or the period pages' "Answers by seat" table. The
    total row is left as it is."""
    at = page.find(SEAT_SECTION)
    m = _TABLE.search(page, max(at, 0))
    if not m:
        return page

    def row(rm: re.Match) -> str:
        seat = rm.group(1)[4:-5]
        if not protocol._is_id(seat):
            return rm.group(0)
        cells = _CELL.findall(rm.group(2))
        out = []
        for i, text in enumerate(cells):
            if i < len(COUNT_OUTCOMES) and text.strip() not in ("", "0", "-"):
                q = {"site": site, "seat": seat, "from": scope.first.isoformat(), "to": scope.last.isoformat()}
                if COUNT_OUTCOMES[i]:
                    q["outcome"] = COUNT_OUTCOMES[i]
                out.append(f'<td><a class="calls" href="/calls?{escape(urlencode(q))}">{text}</a></td>')
            else:
                out.append(f"<td>{text}</td>")
        return f"<tr>{rm.group(1)}{''.join(out)}</tr>"

    table = _ROW.sub(row, m.group(0))
    return page[:m.start()] + table + page[m.end():]
