"""`seatmon roster import|set|clear|show`: the shift plan into the roster,
one assignment corrected by hand, and what is stored. The checks are in
importer.py and edit.py (pure); this is the shell: the site file, InfluxDB
and the terminal. Documented in docs/roster.md.

Exit status: 0 done, 2 bad input (nothing stored), 1 InfluxDB failed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path

from collector.influx import InfluxError, InfluxV1
from seatmon import audit, options, sitefile
from seatmon import report as report_cli
from seatmon.roster import edit, importer, store
from seatmon.roster.model import Agent, Assignment
from seatmon.roster.plan import Plan

EXIT_ERROR, EXIT_USAGE = 1, 2


class UsageError(ValueError):
    """Bad input: one line for the user; nothing was stored."""


# ---- shared by the roster and data commands ----------------------------------------

def add_influx_options(p: argparse.ArgumentParser) -> None:
    """The reports' InfluxDB options (seatmon report): option > environment > site file."""
    sitefile.add_option(p)
    report_cli.influx_options(p)


def load_site(args) -> sitefile.HostSite:
    path = sitefile.path_from(getattr(args, "site_file", None))
    if not path:
        raise UsageError(f"no site file: give --site FILE (or set ${sitefile.ENV_VAR}); its seats and shifts "
                         f"are what the roster is checked against")
    try:
        return sitefile.load(path)
    except sitefile.SiteFileError as exc:
        raise UsageError(str(exc)) from None


def load_plan(site: sitefile.HostSite) -> Plan:
    plan = Plan.from_site(site.data)
    if not plan.seats:
        raise UsageError(f"{site.path}: no [[units]]: the roster's seats are the units' seats")
    return plan


def connect(args, site: sitefile.HostSite) -> InfluxV1:
    args.site_data = site
    db = report_cli.connect(args)  # the reports' options and precedence, in one place
    try:  # a missing database named as such
        db.query(f"SELECT count(agent) FROM {store.MEASUREMENT} WHERE time < 1ms")
    except InfluxError as exc:
        if "database not found" in str(exc):
            raise InfluxError(f"database {db.database!r} not found at {db.url} (`seatmon collect init-db` "
                              f"creates it)") from None
        raise
    return db


def run_command(name: str, fn, args) -> int:
    """Run a command with the common error handling."""
    try:
        return fn(args) or 0
    except UsageError as exc:
        print(f"seatmon {name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InfluxError as exc:
        print(f"seatmon {name}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR


# ---- arguments -----------------------------------------------------------------------

def _hhmm(text: str) -> str:
    from firmware.config import parse_hhmm

    if parse_hhmm(text) is None:
        raise argparse.ArgumentTypeError(f"expected a local time HH:MM, got {text!r}")
    return text


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", required=True, type=options.iso_date, help="the local date the shift starts on")
    p.add_argument("--shift", required=True, metavar="NAME", help="the shift's name in the site file")
    p.add_argument("--seat", required=True, help="the seat (a unit's seat in the site file)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("import", help="the shift plan (CSV) into the roster; replaces the shifts it names",
                       description="Check every row against the site file, then replace the roster of every "
                                   "(date, shift) the file names. Nothing is stored unless every row is right.")
    p.add_argument("file", metavar="FILE", help="CSV with a header date,shift,seat,agent[,name,email,from,to]")
    p.add_argument("--encoding", choices=importer.ENCODINGS, default="utf-8",
                   help="the file's encoding [utf-8, with or without a BOM]")
    p.add_argument("--dry-run", action="store_true", help="check and say what would change; store nothing")
    add_influx_options(p)
    p = sub.add_parser("set", help="put an agent at a seat for a shift (or part of it)")
    _where(p)
    p.add_argument("--agent", required=True, metavar="ID", help=f"the agent id ({importer.AGENT_ID_RULE})")
    p.add_argument("--from", dest="start", type=_hhmm, metavar="HH:MM", help="local start inside the shift [its start]")
    p.add_argument("--to", dest="end", type=_hhmm, metavar="HH:MM", help="local end inside the shift [its end]")
    p.add_argument("--name", default="", help="the agent's name (kept in the roster only)")
    p.add_argument("--email", default="", help="the agent's e-mail (kept in the roster only)")
    add_influx_options(p)
    p = sub.add_parser("clear", help="leave a seat unassigned for a shift")
    _where(p)
    add_influx_options(p)
    p = sub.add_parser("show", help="the stored roster: table, CSV (importable) or JSON")
    p.add_argument("--date", type=options.iso_date, help="one local date (the shifts starting that day)")
    p.add_argument("--from", dest="first", type=options.iso_date, metavar="DATE", help="first local date")
    p.add_argument("--to", dest="last", type=options.iso_date, metavar="DATE", help="last local date [--from]")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--seat", help="only this seat")
    who.add_argument("--agent", metavar="ID", help="only this agent")
    p.add_argument("--names", action="store_true",
                   help="add the agents' names and e-mails (personal data: only where needed)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--audit-log", metavar="FILE",
                   help="where the listing is logged (it names agents) [$SEATMON_AUDIT_LOG or the default]")
    add_influx_options(p)


def main(args) -> int:
    fn = {"import": import_file, "set": set_one, "clear": clear_one, "show": show}[args.action]
    return run_command(f"roster {args.action}", fn, args)


# ---- import --------------------------------------------------------------------------

def import_file(args) -> int:
    site = load_site(args)
    plan = load_plan(site)
    name = args.file
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    try:
        checked = importer.parse(importer.decode(data, name, args.encoding), plan)
    except importer.RosterFileError as exc:
        return _file_errors(name, exc)
    db = connect(args, site)
    lo = min(s for s, _e in checked.labels.values())
    hi = max(e for _s, e in checked.labels.values())
    stored = store.load(db, lo, hi, site=plan.site).assignments
    old = [a for a in stored if a.shift in checked.labels]
    kept = [a for a in stored if a.shift not in checked.labels]
    problems = importer.stored_overlaps(checked.rows, kept, plan)
    if problems:
        return _file_errors(name, importer.RosterFileError(problems))
    new = checked.assignments
    ch = importer.changes(old, new)
    known = store.agents(db)
    agents = importer.agent_updates(checked.agents, known)
    changed = {a.shift for a in ch.added | ch.removed}
    if not args.dry_run:
        _replace(db, plan.site, changed, checked.labels, old)
        store.write(db, [a for a in new if a.shift in changed], agents)
    fresh = sum(1 for a in agents if a.id not in known)
    print(f"seatmon roster import: {name}: {'would be ' if args.dry_run else ''}{ch.text()} "
          f"({len(checked.labels)} shifts of site {plan.site}, {len(changed)} changed); "
          f"agents: {fresh} new, {len(agents) - fresh} updated"
          + ("; nothing stored (--dry-run)" if args.dry_run else ""))
    return 0


def _replace(db: InfluxV1, site: str, labels: set[str], spans: dict[str, tuple[int, int]],
             old: list[Assignment]) -> None:
    """Delete every stored assignment of these shift labels, for the whole site."""
    for label in sorted(labels):
        lo, hi = spans[label]
        starts = [a.start_ms for a in old if a.shift == label]
        store.delete_span(db, site, min([lo, *starts]), max([hi, *(s + 1 for s in starts)]),
                          shift_name=label.rsplit("/", 1)[1])


def _file_errors(name: str, exc: importer.RosterFileError) -> int:
    for line, text in exc.problems:
        print(f"seatmon roster import: {name}" + (f" line {line}" if line else "") + f": {text}", file=sys.stderr)
    total = len(exc.problems) + exc.more
    if exc.more:
        print(f"seatmon roster import: {name}: ... and {exc.more} more", file=sys.stderr)
    print(f"seatmon roster import: {name}: {total} problem{'s' * (total != 1)}; nothing stored", file=sys.stderr)
    return EXIT_USAGE


# ---- set and clear -------------------------------------------------------------------

def set_one(args) -> int:
    site = load_site(args)
    plan = load_plan(site)
    values = {"date": args.date, "shift": args.shift, "seat": args.seat, "agent": args.agent,
              "name": args.name.strip(), "email": args.email.strip(), "from": args.start or "", "to": args.end or ""}
    try:
        new, agent, _shift = importer.check_row(plan, values)
    except importer.RowError as exc:
        raise UsageError(str(exc)) from None
    db = connect(args, site)
    stored = store.load(db, new.start_ms, new.end_ms, site=plan.site).assignments
    try:
        remove, write = edit.place(stored, new)
    except edit.Conflict as exc:
        raise UsageError(f"seat {new.seat} overlaps the stored {importer.describe(exc.other, plan)}: "
                         f"clear that first") from None
    agents = importer.agent_updates({agent.id: agent}, store.agents(db))
    _delete(db, remove)
    store.write(db, write, agents)
    what = "unchanged" if not write else "set" + (
        f" (was {', '.join(importer.describe(a, plan) for a in remove)})" if remove else "")
    print(f"seatmon roster set: {plan.site} seat {new.seat}: {importer.describe(new, plan)}: {what}")
    return 0


def _delete(db: InfluxV1, assignments: list[Assignment]) -> None:
    for a in assignments:  # one point each: its seat, shift name and start
        store.delete_span(db, a.site, a.start_ms, a.start_ms + 1, seat=a.seat, shift_name=a.shift_name)


def clear_one(args) -> int:
    site = load_site(args)
    plan = load_plan(site)
    try:
        shift = importer.find_shift(plan, args.date, args.shift, args.seat)
    except importer.RowError as exc:
        raise UsageError(str(exc)) from None
    db = connect(args, site)
    gone = [a for a in store.load(db, shift.start_ms, shift.end_ms, site=plan.site).assignments
            if a.seat == args.seat and a.shift == shift.label]
    _delete(db, gone)
    print(f"seatmon roster clear: {plan.site} seat {args.seat} {shift.label}: "
          + (f"removed {', '.join(importer.describe(a, plan) for a in gone)}" if gone else "nobody was assigned"))
    return 0


# ---- show ----------------------------------------------------------------------------

SHOW_COLUMNS = [("date", "date", "text"), ("shift", "shift", "text"), ("seat", "seat", "text"),
                ("agent", "agent", "text"), ("from", "from", "text"), ("to", "to", "text")]
NAME_COLUMNS = [("name", "name", "text"), ("email", "email", "text")]


def show(args) -> int:
    from seatmon.report import render

    if args.date and (args.first or args.last):
        raise UsageError("give --date or --from/--to, not both")
    first = args.date or args.first
    if not first:
        raise UsageError("which dates? give --date D or --from D [--to D]")
    first, last = date.fromisoformat(first), date.fromisoformat(args.last or first)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    site = load_site(args)
    plan = load_plan(site)
    db = connect(args, site)
    start = plan.day_start_ms(first)
    end = plan.day_start_ms(last + timedelta(days=1)) + store.LONGEST_MS  # shifts of the last day end the next
    found = [a for a in store.load(db, start, end, site=plan.site).assignments
             if first <= date.fromisoformat(a.day) <= last
             and (not args.seat or a.seat == args.seat) and (not args.agent or a.agent == args.agent)]
    found.sort(key=lambda a: (a.day, a.start_ms, a.seat))
    if found:  # a listing of who sat where names agents: logged first, or not shown
        scope = {"site": plan.site, "from": first.isoformat(), "to": last.isoformat(), "seat": args.seat,
                 "agent": args.agent, "names": args.names}
        try:
            audit.record("roster show", {k: v for k, v in scope.items() if v}, len({a.agent for a in found}),
                         argv=getattr(args, "_argv", None), path=args.audit_log)
        except audit.AuditError as exc:
            print(f"seatmon roster show: {exc}", file=sys.stderr)
            return 1
    people = store.agents(db) if args.names else {}
    rows = [_show_row(a, plan, people.get(a.agent, Agent(a.agent)) if args.names else None) for a in found]
    columns = SHOW_COLUMNS + (NAME_COLUMNS if args.names else [])
    if args.format == "json":
        sys.stdout.write(render.json_text({"site": plan.site, "timezone": plan.zone, "from": first.isoformat(),
                                           "to": last.isoformat(), "assignments": rows}))
    elif args.format == "csv":  # the import's columns: a shown roster imports again as it is
        sys.stdout.write(render.csv_text(rows, columns))
    else:
        if not rows:
            print(f"seatmon roster show: nobody assigned at site {plan.site} from {first} to {last}"
                  + (f" at seat {args.seat}" if args.seat else "") + (f" for {args.agent}" if args.agent else ""),
                  file=sys.stderr)
            return 0
        print(render.text_table(rows, columns))
    return 0


def _show_row(a: Assignment, plan: Plan, person: Agent | None) -> dict:
    row = {"date": a.day, "shift": a.shift_name, "seat": a.seat, "agent": a.agent,
           "from": f"{plan.local(a.start_ms):%H:%M}", "to": f"{plan.local(a.end_ms):%H:%M}",
           "start_ms": a.start_ms, "end_ms": a.end_ms}
    if person is not None:
        row.update(name=person.name, email=person.email)
    return row
