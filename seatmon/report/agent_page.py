"""`seatmon report agent --agent ID --month YYYY-MM`: one agent's month as a
self-contained page they can be handed (or JSON). Documented in
docs/reports.md ("One agent's month").

The agent's figures come from the raw rows of their own calls (the seats
and spans of their assignments: a few thousand rows), so they are exact and
each late, missed and abandoned call can be listed; the site's figures come
from the roll-ups, as the site's reports read them. The page names no other
agent: it shows the agent's own seats and calls and the site's totals only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from html import escape

from collector.influx import InfluxV1
from seatmon.report import answers as answers_mod
from seatmon.report import calls as calls_mod
from seatmon.report import monthly, svg
from seatmon.report import safety as safety_mod
from seatmon.report.answers import Conventions, Figures
from seatmon.report.query import Scope, month_scope, run, where
from seatmon.roster import store
from seatmon.roster.model import Roster

TREND_MONTHS = 6
# A unit checks the equipment at its shift's end; its event may come a
# little after the end of the assignment it closes.
SHIFT_END_GRACE_MS = 3 * 3600 * 1000
SHIFT_END_SELECT = 'SELECT action, equipment, idle_ms, "shift"::field AS label FROM shift_end'
SHIFT_END_TEXT = {"off_in_time": "off in time", "postponed": "off after overtime", "logged": "left on (logged)",
                  "reminded": "left on (reminded)", "cut": "left on (cut by the relay)",
                  "sensor_unreadable": "not checked (sensor unreadable)", "handovers": "handed over"}
LEFT_ON = ("logged", "reminded", "cut")


@dataclass
class ShiftEnd:
    time_ms: int
    seat: str
    shift: str
    result: str  # a SafetyRow counter name (safety.outcome), or "unknown"


@dataclass
class AgentPage:
    scope: Scope
    agent: str  # as shown (a code when pseudonymised)
    name: str  # "" when pseudonymised or not in the roster
    seats: list[str]
    mine: Figures
    apologies: int  # calls where the unit prompted an apology
    site: Figures | None
    site_safety: float | None  # the site's shift-end compliance
    flagged: list[calls_mod.Call]  # late, missed and abandoned calls
    shift_ends: list[ShiftEnd]
    trend: list[tuple[str, int, int]]  # (YYYY-MM, calls, answered in time), oldest first
    conventions: Conventions = field(default_factory=Conventions)

    @property
    def empty(self) -> bool:
        return not self.seats

    def safety_counts(self) -> dict[str, int]:
        out = {"shift_ends": len(self.shift_ends), "off_in_time": 0, "left_on": 0}
        for e in self.shift_ends:
            if e.result in ("off_in_time", "postponed"):
                out["off_in_time"] += 1
            elif e.result in LEFT_ON:
                out["left_on"] += 1
        return out

    def as_dict(self) -> dict:
        zone = self.scope.zone
        return {"report": "agent", "agent": self.agent, "name": self.name or None,
                "month": self.scope.first.strftime("%Y-%m"), "tz": self.scope.tz, "site": self.scope.site,
                "seats": self.seats, "figures": self.mine.as_dict(), "apologies_prompted": self.apologies,
                "site_figures": ({k: v for k, v in self.site.as_dict().items() if k in SITE_SHOWN}
                                 if self.site else None),
                "site_shift_end_compliance": self.site_safety,
                "shift_ends": dict(self.safety_counts(),
                                   list=[{"time": calls_mod.local_iso(e.time_ms, zone), "seat": e.seat,
                                          "shift": e.shift, "result": e.result} for e in self.shift_ends]),
                "calls_to_review": [c.as_dict(zone) for c in self.flagged],
                "trend": [{"month": m, "calls": n, "answered_in_time": t, "timeliness_rate": t / n if n else None}
                          for m, n, t in self.trend]}


def figures(agent_calls: list[calls_mod.Call], outgoing_hangups: list[str | None], conv: Conventions) -> Figures:
    """Pure: the answers report's figures of one agent's calls."""
    f = Figures(group="agent", treatment=conv.treatment)
    for c in agent_calls:
        f.calls += 1
        if c.outcome in ("timely", "late"):
            f.answered += 1
            f.answer_sum_ms += c.answer_ms or 0
            f.max_ms = max(f.max_ms or 0, c.answer_ms or 0)
            if c.outcome == "timely":
                f.answered_in_time += 1
            else:
                f.answered_late += 1
        else:
            if c.outcome == "missed":
                f.missed += 1
            elif c.outcome == "abandoned":
                f.abandoned += 1
            if (c.ring_ms or 0) < conv.short_abandon_ms:
                f.abandoned_short += 1
            else:
                f.abandoned_long += 1
            f.abandon_sum_ms += c.ring_ms or 0
        if c.clock not in ("ntp", "corrected"):
            f.unsynced += 1
    for side in [c.hung_up_first for c in agent_calls] + list(outgoing_hangups):
        if side is not None:
            f.hangup_known += 1
            f.agent_first += side == "agent"
    f.outgoing = len(outgoing_hangups)
    return f


def months_back(first: date, n: int) -> date:
    y, m = first.year, first.month - n
    while m < 1:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def last_assignments(roster: Roster, agent: str) -> list:
    """The agent's assignments that end a shift at their seat (the last one
    of that seat and shift label): the shift ends that are theirs."""
    last = {}
    for a in roster.assignments:
        key = (a.site, a.seat, a.shift)
        if key not in last or a.end_ms > last[key].end_ms:
            last[key] = a
    return [a for a in last.values() if a.agent == agent]


def _shift_ends(db: InfluxV1, roster: Roster, agent: str, scope: Scope) -> list[ShiftEnd]:
    mine = [a for a in last_assignments(roster, agent) if scope.start_ms <= a.end_ms and a.start_ms < scope.end_ms]
    spans = [(a.site, a.seat, a.start_ms, a.end_ms + SHIFT_END_GRACE_MS) for a in mine]
    label_of = {(a.site, a.seat, a.shift) for a in mine}
    out = []
    for site, seat, row in calls_mod.read_rows(db, SHIFT_END_SELECT, spans):
        if (site, seat, row.get("label")) not in label_of or row.get("idle_ms") is None:
            continue  # another shift's end, or not a complete check
        out.append(ShiftEnd(int(row["time"]), seat, row["label"], safety_mod.outcome(row, False) or "unknown"))
    out.sort(key=lambda e: (e.time_ms, e.seat))
    return out


# The site's column (and its JSON): these figures, from the roll-up fields
# below only (InfluxDB 1.x pays per field read; the answers report reads 15).
SITE_SHOWN = ("calls", "answered", "answered_in_time", "answered_late", "missed", "abandoned", "timeliness_rate",
              "service_level", "asa_ms", "hung_up_first", "hangup_known")
SITE_FIELDS = ("answered", "timely", "missed", "abandoned", "answer_sum", "hangup_known", "agent_first")
# The site's shift ends counted in InfluxDB (a month of 500 seats is 45 000
# checks: their counts, not their rows), by the outcomes of safety.outcome.
SITE_SHIFT_ENDS = {
    "ok": "(action = 'none' AND equipment = 'off') OR action = 'postponed'",
    "left_on": "(action = 'logged' AND equipment = 'on') OR action = 'reminded' OR action = 'cut'"}


def _site_safety(db: InfluxV1, scope: Scope) -> float | None:
    """The site's shift-end compliance, counted as the agent's own ends are
    (a handover with the equipment off counts as off in time)."""
    cond = where(scope)
    got = run(db, [f"SELECT count(idle_ms) AS n FROM shift_end{cond} AND ({c})" for c in SITE_SHIFT_ENDS.values()])
    ok, left_on = (sum(int(row["n"] or 0) for _tags, row in rows) for rows in got)
    return ok / (ok + left_on) if ok + left_on else None


def site_figures(db: InfluxV1, scope: Scope, conv: Conventions) -> tuple[Figures | None, float | None]:
    """The site's month from the roll-ups (the answers report's own code),
    and its shift-end compliance: the same for every agent's page of the
    month. The two reads side by side."""
    scope = replace(scope, seats=(), agent=None)  # every call of the site, whoever's page it is for
    with ThreadPoolExecutor(2) as pool:
        safety = pool.submit(_site_safety, db, scope)
        total = answers_mod.pull(db, scope, "site", conv, percentiles=False, fields=SITE_FIELDS).report.total
        return (total if total.calls else None), safety.result()


def collect(db: InfluxV1, scope: Scope, agent: str, conv: Conventions = Conventions(), name=lambda a: a,
            site: tuple[Figures | None, float | None] | None = None) -> AgentPage:
    """`scope`: the month (its seats are ignored). `name` maps the id to what
    the page shows (pseudonym.Pseudonyms); `site`: site_figures() when
    already read. The site's figures are read while the agent's are."""
    scope = replace(scope, seats=(), agent=None)
    with ThreadPoolExecutor(1) as pool:
        site_future = pool.submit(site_figures, db, scope, conv) if site is None else None
        page = _collect_agent(db, scope, agent, conv, name)
        if page.empty:
            if site_future:
                site_future.cancel()
            return page
        page.site, page.site_safety = site_future.result() if site_future else site
    return page


def _collect_agent(db: InfluxV1, scope: Scope, agent: str, conv: Conventions, name) -> AgentPage:
    trend_first = months_back(scope.first, TREND_MONTHS - 1)
    wide = replace(scope, first=trend_first)
    roster = store.load(db, wide.start_ms, wide.end_ms, scope.site, agent=agent)
    every = calls_mod.agent_calls(db, roster, agent, wide.start_ms, wide.end_ms)
    this = [c for c in every if c.time_ms >= scope.start_ms]
    seats = sorted({a.seat for a in roster.assignments if a.end_ms > scope.start_ms and a.start_ms < scope.end_ms})
    shown = name(agent)
    if not seats:
        return AgentPage(scope, shown, "", [], Figures("agent"), 0, None, None, [], [], [], conv)
    outgoing = calls_mod.read_rows(db, calls_mod.OUTGOING_SELECT,
                                   calls_mod.agent_spans(roster, agent, scope.start_ms, scope.end_ms))
    mine = figures(this, [r.get("hung_up_first") for _site, _seat, r in outgoing], conv)
    trend = []
    for i in range(TREND_MONTHS):
        m = months_back(scope.first, TREND_MONTHS - 1 - i)
        ms = month_scope(m.strftime("%Y-%m"), scope.tz)
        inside = [c for c in every if ms.start_ms <= c.time_ms < ms.end_ms]
        trend.append((m.strftime("%Y-%m"), len(inside), sum(c.outcome == "timely" for c in inside)))
    full = store.agent(db, agent) if shown == agent else None
    return AgentPage(scope, shown, full.name if full else "", seats, mine,
                     sum(bool(c.apology_prompted) for c in this), None, None,
                     [c for c in this if c.outcome in ("late", "missed", "abandoned")],
                     _shift_ends(db, store.load(db, scope.start_ms, scope.end_ms, scope.site, seats=seats), agent,
                                 scope),
                   trend, conv)


# ---- the page ------------------------------------------------------------------------------

def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _sec(v) -> str:
    return "-" if v is None else f"{v / 1000:.1f} s"


def _rows(p: AgentPage) -> list[tuple[str, str, str]]:
    me, site = p.mine, p.site or Figures("site")
    hung = (lambda f: "-" if f.hung_up_first is None else f"{f.agent_first} of {f.hangup_known}")
    sc = p.safety_counts()
    return [("calls that rang", f"{me.calls}", f"{site.calls:,}"),
            ("answered in time", f"{me.answered_in_time}", f"{site.answered_in_time:,}"),
            ("answered late", f"{me.answered_late}", f"{site.answered_late:,}"),
            ("missed (rang past the limit)", f"{me.missed}", f"{site.missed:,}"),
            ("abandoned within the limit", f"{me.abandoned}", f"{site.abandoned:,}"),
            ("answer timeliness rate", _pct(me.timeliness_rate), _pct(site.timeliness_rate)),
            ("service level", _pct(me.service_level), _pct(site.service_level)),
            ("average answer time", _sec(me.asa_ms), _sec(site.asa_ms)),
            ("apologies prompted", f"{p.apologies}", "-"),
            ("hung up first (of calls with a disconnect signal)", hung(me), hung(site)),
            ("shift ends: off in time", f"{sc['off_in_time']} of {sc['shift_ends']}",
             _pct(p.site_safety) + " of the site's"),
            ("shift ends: left on", f"{sc['left_on']}", "-")]


def html(p: AgentPage) -> str:
    zone, month = p.scope.zone, p.scope.first.strftime("%B %Y")
    who = f"{p.name} ({p.agent})" if p.name else p.agent
    body = [f"<h1>{escape(who)}: {escape(month)}</h1>",
            f'<p class="note">{escape(p.scope.zone_note())}'
            + (f"; site {escape(p.scope.site)}" if p.scope.site else "")
            + f"; seats worked: {escape(', '.join(p.seats))}</p>",
            "<h2>Your figures and the site's</h2>",
            '<table data-table="figures"><thead><tr><th>figure</th><th>you</th><th>site</th></tr></thead><tbody>'
            + "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(c)}</td></tr>"
                      for a, b, c in _rows(p)) + "</tbody></table>",
            '<p class="note">rate = answered in time / calls that rang; service level: calls abandoned within the '
            f"limit {escape(p.conventions.treatment)}; a call is yours when the roster put you at its seat at its "
            "first ring</p>"]
    body.append(f"<h2>Calls to look at ({len(p.flagged)}: late, missed, abandoned)</h2>")
    if p.flagged:
        head = "".join(f"<th>{h}</th>" for h in ("time", "seat", "rings", "answer time", "limit", "outcome",
                                                  "apology", "hung up first"))
        rows = "".join(
            f"<tr><td>{escape(calls_mod.local_iso(c.time_ms, zone).replace('T', ' '))}</td><td>{escape(c.seat)}</td>"
            f"<td>{'-' if c.rings is None else c.rings}</td><td>{escape(_sec(c.answer_ms))}</td>"
            f"<td>{escape(calls_mod.limit_text(c))}</td><td>{escape(c.outcome)}</td>"
            f"<td>{escape(calls_mod.yes_no(c.apology_prompted))}</td><td>{escape(c.hung_up_first or '-')}</td></tr>"
            for c in p.flagged)
        body.append(f'<table data-table="calls"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    else:
        body.append('<p class="note">none: every call answered in time</p>')
    body.append(f"<h2>Shift ends ({len(p.shift_ends)})</h2>")
    if p.shift_ends:
        rows = "".join(f"<tr><td>{escape(e.shift)}</td><td>{escape(e.seat)}</td>"
                       f"<td>{escape(calls_mod.local_iso(e.time_ms, zone).replace('T', ' '))}</td>"
                       f"<td>{escape(SHIFT_END_TEXT.get(e.result, e.result))}</td></tr>" for e in p.shift_ends)
        body.append('<table data-table="shift-ends"><thead><tr><th>shift</th><th>seat</th><th>checked</th>'
                    f"<th>equipment</th></tr></thead><tbody>{rows}</tbody></table>")
    body.append("<h2>The last six months</h2>")
    items = [(m, (t / n) if n else None, f"{m}: " + (f"{t} of {n} calls in time ({t / n * 100:.1f}%)" if n
                                                   else "no calls")) for m, n, t in p.trend]
    body.append("<figure><figcaption>answer timeliness rate per month</figcaption>"
                + svg.bars("trend", "answer timeliness rate per month", items, y_max=1.0,
                           y_format=lambda v: f"{v * 100:.0f}%", width=420, height=180, colour=svg.rate_colour)
                + "</figure>")
    return monthly.page(f"{who}: {month}", body)
