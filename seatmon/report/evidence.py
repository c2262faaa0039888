"""The shell of the reports about agents (`report calls`, `report agent`):
options checked, ids shown or pseudonymised, the run audited before a
byte is written. The figures come from calls.py and agent_page.py."""

from __future__ import annotations

import sys

from seatmon import audit
from seatmon.pseudonym import Pseudonyms, identity
from seatmon.report import render
from seatmon.report.calls import FILTERS
from seatmon.report.query import ReportError, Scope

ID_MAX = 64
EXIT_EMPTY = 4


def check_agent_id(text: str, option: str = "--agent") -> str:
    if not text or len(text) > ID_MAX or any(ord(ch) < 32 or ord(ch) == 127 or ch == "," for ch in text):
        raise ReportError(f"{option} {text!r} is not an agent id (1-{ID_MAX} characters, no comma or control "
                          "character)")
    return text


def check(args) -> None:
    """The options of calls and agent, before any server is contacted."""
    if getattr(args, "agent", None) is not None:
        check_agent_id(args.agent)
    if args.report == "calls":
        if not args.agent and not args.seat:
            raise ReportError("calls needs --seat SEAT or --agent ID (whose calls?)")
        given = [f.strip() for item in args.outcome for f in item.split(",") if f.strip()]
        unknown = [f for f in given if f not in FILTERS]
        if unknown:
            raise ReportError(f"--outcome {unknown[0]!r} is not one of " + ", ".join(FILTERS))
        args.outcome = tuple(dict.fromkeys(given))
    audit.log_path(args.audit_log)  # nothing to check yet: written when the report is ready


def scope_of(args, scope: Scope) -> dict:
    """What the audit line says the run covered."""
    return {"report": args.report, "site": scope.site, "from": scope.first.isoformat(),
            "to": scope.last.isoformat(), "tz": scope.tz, "seats": list(scope.seats),
            "agent": getattr(args, "agent", None), "by": getattr(args, "by", None),
            "outcome": list(getattr(args, "outcome", ()) or ()), "pseudonymised": bool(args.pseudonymise)}


def run(args, db, scope: Scope, write) -> int:
    name = Pseudonyms() if args.pseudonymise else identity
    if args.report == "calls":
        from seatmon.report import calls as calls_mod

        rep = calls_mod.calls(db, scope, args.agent, args.outcome, name)
        if rep.empty:
            whose = f"agent {args.agent}" if args.agent else "seat " + ", ".join(scope.seats)
            print(f"seatmon report calls: no calls of {whose} in {scope.describe()}"
                  + (f" at site {scope.site}" if scope.site else "") + "; nothing to report", file=sys.stderr)
            return EXIT_EMPTY
        named = rep.agents_named()
        if named:
            audit.record("report calls", scope_of(args, scope), named, argv=getattr(args, "_argv", None),
                         path=args.audit_log)
        if args.format == "csv":
            write(args, calls_mod.csv_text(rep), binary_bom=args.bom)
        elif args.format == "json":
            write(args, render.json_text(rep.as_dict()))
        else:
            write(args, calls_mod.table_text(rep))
        return 0
    from seatmon.report import agent_page

    page = agent_page.collect(db, scope, args.agent, args.conventions, name)
    if page.empty:
        print(f"seatmon report agent: the roster puts agent {args.agent} at no seat in {args.month} "
              f"({scope.tz})" + (f" at site {scope.site}" if scope.site else "") + "; nothing written",
              file=sys.stderr)
        return EXIT_EMPTY
    audit.record("report agent", scope_of(args, scope), 1, argv=getattr(args, "_argv", None), path=args.audit_log)
    write(args, agent_page.html(page) if args.format == "html" else render.json_text(page.as_dict()))
    return 0
