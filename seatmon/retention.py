"""`seatmon data retention`: remove the roster's personal data once the
site's retention period has passed. Documented in docs/roster.md.

What goes: the roster assignments of shifts that started before the
cutoff, and the agents (`roster_agent`: id, name, e-mail) no assignment
refers to any more. What stays: every event and roll-up, which carry seats,
never agents, so seat and site figures are unchanged; only the answer to
"who sat there" is gone. The period is whole months: the current month and
the N months before it are kept (N from --months, else the site file's
`[privacy] roster_months`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector.influx import InfluxV1, tag_literal
from seatmon import options
from seatmon.roster import store
from seatmon.roster.cli import UsageError, add_influx_options, connect, load_site, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("retention", help="remove roster assignments older than the retention period",
                       description="Remove roster assignments (who sat where) older than N months and the "
                                   "agents no assignment refers to; events and roll-ups (seat and site "
                                   "figures) stay.")
    p.add_argument("--months", type=lambda t: options.whole_number(t, 1), metavar="N",
                   help="keep the current month and the N before it [the site file's privacy.roster_months]")
    p.add_argument("--on", type=options.iso_date, metavar="YYYY-MM-DD",
                   help="count the months back from this local date [today]")
    p.add_argument("--dry-run", action="store_true", help="count what would be removed; remove nothing")
    add_influx_options(p)


def cutoff_day(today: date, months: int) -> date:
    """The first day kept: the 1st of the month `months` before today's."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def main(args) -> int:
    return run_command(f"data {args.action}", retention, args)


def retention(args) -> int:
    site = load_site(args)
    months = args.months or site.section("privacy").get("roster_months")
    if not months:
        raise UsageError(f"how many months to keep? give --months N or set [privacy] roster_months in {site.path}")
    tz = ZoneInfo(site.timezone)
    today = date.fromisoformat(args.on) if args.on else datetime.now(tz).date()
    keep_from = cutoff_day(today, months)
    cutoff_ms = int(datetime(keep_from.year, keep_from.month, keep_from.day, tzinfo=tz).timestamp() * 1000)
    db = connect(args, site)
    old, late = _old(db, site.id, cutoff_ms, keep_from)
    referenced = _referenced(db, site.id, cutoff_ms, late)
    unreferenced = sorted(set(store.agents(db)) - referenced)
    if not args.dry_run:
        store.delete_span(db, site.id, 0, cutoff_ms)
        for a in late:
            store.delete_span(db, a.site, a.start_ms, a.start_ms + 1, seat=a.seat, shift_name=a.shift_name)
        _delete_agents(db, unreferenced)
    verb = "would remove" if args.dry_run else "removed"
    print(f"seatmon data retention: site {site.id}: keeping the shifts from {keep_from} on ({today:%Y-%m} and "
          f"{_count(months, 'month')} before it): {verb} {_count(old + len(late), 'assignment')} and "
          f"{_count(len(unreferenced), 'agent')}; events and roll-ups untouched")
    return 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _old(db: InfluxV1, site: str, cutoff_ms: int, keep_from: date) -> tuple[int, list]:
    """(assignments starting before the cutoff, the later-starting parts of
    shifts that began before it: a seat change after midnight in a night shift)."""
    res = db.query(f"SELECT count(agent) FROM {store.MEASUREMENT} WHERE site = {tag_literal(site)} "
                   f"AND time < {cutoff_ms}ms")
    series = res[0].get("series") if res else None
    before = series[0]["values"][0][1] if series else 0
    window = store.load(db, cutoff_ms, cutoff_ms + store.LONGEST_MS, site=site).assignments
    late = [a for a in window if a.start_ms >= cutoff_ms and date.fromisoformat(a.day) < keep_from]
    return before, late


def _distinct_agents(db: InfluxV1, where: str) -> set[str]:
    res = db.query(f'SELECT DISTINCT("agent") FROM {store.MEASUREMENT} WHERE {where}')
    return {row[1] for r in res for s in r.get("series", []) for row in s["values"]}


def _referenced(db: InfluxV1, site: str, cutoff_ms: int, late: list) -> set[str]:
    """The agents some assignment still refers to after the removal: at
    other sites, at this one after the cutoff (except the late parts)."""
    lit = tag_literal(site)
    found = _distinct_agents(db, f"site <> {lit}")
    found |= _distinct_agents(db, f"site = {lit} AND time >= {cutoff_ms + store.LONGEST_MS}ms")
    gone = set(late)
    window = store.load(db, cutoff_ms, cutoff_ms + store.LONGEST_MS, site=site).assignments
    found |= {a.agent for a in window if a.start_ms >= cutoff_ms and a not in gone}
    return found


def _delete_agents(db: InfluxV1, agents: list[str]) -> None:
    for i in range(0, len(agents), 100):
        db.query("; ".join(f"DELETE FROM {store.MEASUREMENT_AGENT} WHERE agent = {tag_literal(a)}"
                           for a in agents[i:i + 100]), method="POST")
