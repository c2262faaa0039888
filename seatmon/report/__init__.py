"""`seatmon report answers|safety|staffing|units|daily|weekly|monthly|yearly|publish|calls|agent`:
supervisor reports read from InfluxDB with InfluxQL. This module is the
command-line shell; the figures come from answers.py, safety.py,
staffing.py and units.py (per agent through agents.py; yearly.py), the
pages from monthly.py and periods.py, the evidence from calls.py and
agent_page.py, the scheduled run (folder and mail) from publish.py. Documented in docs/reports.md.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from collector.influx import InfluxError, InfluxV1
from seatmon import audit
from seatmon.pseudonym import Shown
from seatmon.report import answers as answers_mod
from seatmon.report import evidence
from seatmon.report import periods
from seatmon.report import pending
from seatmon.report import publish as publish_mod
from seatmon.report import render
from seatmon.report import safety as safety_mod
from seatmon.report import staffing as staffing_mod
from seatmon.report import units as units_mod
from seatmon.report import zone as zone_mod
from seatmon.report.query import ReportError, Scope, make_scope, month_scope, parse_day, parse_zone
from shared import protocol

ENV = {"influx": ("SEATMON_INFLUX_URL", "http://127.0.0.1:8086"), "db": ("SEATMON_INFLUX_DB", "seatmon"),
       "user": ("SEATMON_INFLUX_USER", None), "password": ("SEATMON_INFLUX_PASSWORD", None),
       "token": ("SEATMON_INFLUX_TOKEN", None), "tz": ("SEATMON_TZ", None),
       "smtp": ("SEATMON_SMTP", None), "smtp_tls": ("SEATMON_SMTP_TLS", "auto"),
       "smtp_user": ("SEATMON_SMTP_USER", None), "smtp_password": ("SEATMON_SMTP_PASSWORD", None),
       "mail_from": ("SEATMON_MAIL_FROM", None)}
EXIT_ERROR, EXIT_USAGE, EXIT_EMPTY = 1, 2, 4


def influx_options(p: argparse.ArgumentParser):
    """The InfluxDB options of every command that reads the reports' database
    (resolved by setting(): option > environment > site file); their group."""
    g = p.add_argument_group("InfluxDB (command line wins over the environment, the environment over the site file)")
    g.add_argument("--influx", metavar="URL",
                   help="server URL [$SEATMON_INFLUX_URL, influx.url, http://127.0.0.1:8086]")
    g.add_argument("--db", metavar="NAME", help="database [$SEATMON_INFLUX_DB, influx.database, seatmon]")
    g.add_argument("--user", help="user name [$SEATMON_INFLUX_USER, influx.username]")
    g.add_argument("--password", help="password [$SEATMON_INFLUX_PASSWORD]")
    g.add_argument("--token", help="API token, InfluxDB 2.x/3.x [$SEATMON_INFLUX_TOKEN]")
    return g


def _common(p: argparse.ArgumentParser, dated: bool = True) -> None:
    g = influx_options(p)
    g.add_argument("--timeout", default="300", metavar="SECONDS",
                   help="how long to wait for one query [300]; a month of a large site takes a while")
    p.add_argument("--tz", metavar="AREA/CITY",
                   help="time zone for dates and hours [$SEATMON_TZ, the site file's site.timezone, else the "
                        "zone the site's units announced; UTC, said so, when none did]")
    p.add_argument("--site", help="only this site [the site file's site.id]")
    p.add_argument("--site-file", metavar="FILE",
                   help="the site file (deploy/site.example.toml): InfluxDB, site id and time zone from its "
                        "[influx] and [site]; options and environment win [$SEATMON_SITE]")
    p.add_argument("--seat", action="append", default=[], metavar="SEAT", help="only this seat (repeatable)")
    if dated:
        p.add_argument("--from", dest="first", metavar="DATE", help="first local day, YYYY-MM-DD [today]")
        p.add_argument("--to", dest="last", metavar="DATE", help="last local day, inclusive [same as --from]")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")


def _formats(p: argparse.ArgumentParser, html: bool = True) -> None:
    p.add_argument("--format", choices=("table", "csv", "json", "html") if html else ("table", "csv", "json"),
                   default="table")
    p.add_argument("--bom", action="store_true", help="start CSV with a UTF-8 byte-order mark (for Excel)")


def _conventions(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("call-centre conventions (see docs/reports.md)")
    g.add_argument("--short-abandon", metavar="SECONDS", default=str(answers_mod.SHORT_ABANDON_MS / 1000),
                   help="a caller who gave up after less ringing than this is a short abandon [5]")
    g.add_argument("--abandon-treatment", metavar="|".join(answers_mod.TREATMENTS), default="ignored",
                   help="service level: calls abandoned within the limit are left out (ignored), count as "
                        "failures (negative) or as successes (positive) [ignored]")


def _target(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the site's service target, for the seats needed (Erlang C)")
    g.add_argument("--target", default="90", metavar="PERCENT",
                   help="share of calls to answer within --within [90]")
    g.add_argument("--within", default="10", metavar="SECONDS", help="the answer limit of the target [10]")
    g.add_argument("--max-occupancy", default="100", metavar="PERCENT",
                   help="no seat busier than this on average [100: no limit]")


def _period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("html", "csv"), default="html")
    p.add_argument("--bom", action="store_true", help="start CSV with a UTF-8 byte-order mark (for Excel)")
    _conventions(p)
    _target(p)


def _privacy(p: argparse.ArgumentParser) -> None:
    """The options of every report that names agents (docs/reports.md, "Privacy and the audit log")."""
    g = p.add_argument_group("privacy")
    g.add_argument("--pseudonymise", action="store_true",
                   help="agent ids replaced by codes (anon-01, ...) in order of appearance; no names, no e-mails")
    g.add_argument("--audit-log", metavar="FILE",
                   help="where the run is logged [$SEATMON_AUDIT_LOG, /var/lib/seatmon/audit.jsonl when writable, "
                        "else ~/.local/state/seatmon/audit.jsonl]")


def _agent(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", metavar="ID", help="only this agent's calls and shift ends, as the roster places "
                                                 "them (docs/reports.md, By agent)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    p = sub.add_parser("answers", help="answer timeliness: rates, counts, answer times per group")
    _common(p)
    _agent(p)
    p.add_argument("--by", choices=answers_mod.BY_CHOICES, default="seat")
    _conventions(p)
    _formats(p)
    _privacy(p)
    p = sub.add_parser("safety", help="shift-end equipment checks per seat, worst first")
    _common(p)
    _agent(p)
    p.add_argument("--by", choices=safety_mod.BY_CHOICES, default="seat")
    _formats(p)
    _privacy(p)
    p = sub.add_parser("staffing", help="busy and idle per interval, day or shift; seats needed by Erlang C")
    _common(p)
    _agent(p)
    p.add_argument("--by", choices=staffing_mod.BY_CHOICES, default="interval")
    p.add_argument("--interval", default="30", metavar="|".join(map(str, staffing_mod.INTERVALS)),
                   help="interval length in minutes [30]")
    _target(p)
    _formats(p)
    _privacy(p)
    p = sub.add_parser("units", help="unit health: offline, last seen, lost events, skew, backlog, faults")
    _common(p)
    _formats(p)
    p = sub.add_parser("daily", help="one day's page (HTML) or table (CSV): answers, staffing, safety")
    _common(p, dated=False)
    p.add_argument("--day", metavar="YYYY-MM-DD", help="the local day [yesterday]")
    _period(p)
    p = sub.add_parser("weekly", help="one ISO week's page (HTML) or table (CSV)")
    _common(p, dated=False)
    p.add_argument("--week", metavar="YYYY-Www", help="the ISO week, Monday to Sunday [last week]")
    _period(p)
    p = sub.add_parser("monthly", help="one self-contained HTML page (or CSV table) for a month")
    _common(p, dated=False)
    p.add_argument("--month", required=True, metavar="YYYY-MM")
    _period(p)
    _privacy(p)
    p = sub.add_parser("calls", help="every call of a seat or an agent, one row each: the evidence behind a figure")
    _common(p)
    p.add_argument("--agent", metavar="ID", help="the calls the roster gives to this agent")
    p.add_argument("--outcome", action="append", default=[], metavar="|".join(evidence.FILTERS),
                   help="only calls of this outcome (repeatable or comma-separated)")
    _formats(p, html=False)
    _privacy(p)
    p = sub.add_parser("agent", help="one agent's month as a page they can be handed (HTML or JSON)")
    _common(p, dated=False)
    p.add_argument("--agent", required=True, metavar="ID")
    p.add_argument("--month", required=True, metavar="YYYY-MM")
    p.add_argument("--format", choices=("html", "json"), default="html")
    _conventions(p)
    _privacy(p)
    p = sub.add_parser("yearly", help="the annual assessment: timeliness rate and calls per agent and month")
    _common(p, dated=False)
    _agent(p)
    p.add_argument("--year", required=True, metavar="YYYY")
    _formats(p)
    _privacy(p)
    p = sub.add_parser("publish", help="write the reports due today to a folder and mail them (run by a timer)")
    _common(p, dated=False)
    p.add_argument("--dir", required=True, metavar="DIR", help="folder for the pages and tables (created)")
    p.add_argument("--on", metavar="YYYY-MM-DD",
                   help="the date they are due on [today]: daily for the day before, weekly on Mondays, "
                        "monthly on the 1st")
    p.add_argument("--reports", default="daily,weekly,monthly", metavar="KINDS",
                   help="which of daily,weekly,monthly to write when due [all three]")
    g = p.add_argument_group("mail (no mail without --smtp; command line wins over the environment)")
    g.add_argument("--smtp", metavar="HOST[:PORT]", help="mail server [$SEATMON_SMTP]")
    g.add_argument("--smtp-tls", metavar="|".join(publish_mod.TLS_MODES),
                   help="auto: STARTTLS when offered; starttls: required; ssl: port 465 style; none "
                        "[$SEATMON_SMTP_TLS, auto]")
    g.add_argument("--smtp-user", help="[$SEATMON_SMTP_USER]")
    g.add_argument("--smtp-password", help="[$SEATMON_SMTP_PASSWORD]")
    g.add_argument("--mail-from", metavar="ADDRESS", help="[$SEATMON_MAIL_FROM, seatmon@this host]")
    g.add_argument("--mail-to", action="append", default=[], metavar="ADDRESS",
                   help="recipient, repeatable or comma-separated [$SEATMON_MAIL_TO]")
    g.add_argument("--agent-pages", action="store_true",
                   help="on the 1st also mail each agent of last month's roster their own page (to the roster's "
                        "e-mail), each mail in the audit log")
    g.add_argument("--audit-log", metavar="FILE", help="[$SEATMON_AUDIT_LOG] (see report agent --help)")
    _conventions(p)
    _target(p)


# report setting <- the site file's [influx] key
SITE_KEYS = {"influx": "url", "db": "database", "user": "username", "password": "password", "token": "token"}


def connect(args, timeout: float = 30.0) -> InfluxV1:
    """The reports' database, as influx_options and setting() resolve it."""
    return InfluxV1(setting(args, "influx"), setting(args, "db"), username=setting(args, "user"),
                    password=setting(args, "password"), token=setting(args, "token"), timeout=timeout)


def setting(args, name: str):
    """Option > environment > site file > default."""
    value = getattr(args, name, None)
    if value:
        return value
    env, default = ENV[name]
    site = getattr(args, "site_data", None)
    from_site = site.influx(SITE_KEYS[name]) if site is not None and name in SITE_KEYS else None
    return os.environ.get(env) or from_site or default


def _site_file(args) -> None:
    """Load the site file (--site-file or $SEATMON_SITE) into args.site_data;
    its site id is the default --site."""
    from seatmon import sitefile

    args.site_data = None
    path = sitefile.path_from(getattr(args, "site_file", None))
    if path:
        try:
            args.site_data = sitefile.load(path)
        except sitefile.SiteFileError as exc:
            raise ReportError(str(exc)) from None
        args.site = args.site or args.site_data.id


def _given_zone(args) -> str | None:
    """--tz, else $SEATMON_TZ, else the site file's site.timezone, checked
    before any server is contacted; None: none of them."""
    if getattr(args, "tz", None):
        return parse_zone(args.tz, "--tz")
    env = os.environ.get(ENV["tz"][0])
    if env:
        return parse_zone(env, ENV["tz"][0])
    if getattr(args, "site_data", None) is not None and args.site_data.timezone:
        return args.site_data.timezone
    return None


def _data_zone(args, db: InfluxV1) -> tuple[str, bool]:
    """No zone given: the one the site's units announced; else UTC, said on
    standard error (and on the pages). (zone, known)"""
    tz = zone_mod.stored_zone(db, [args.site] if args.site else [])
    if tz is not None:
        return tz, True
    print(f"seatmon report {args.report}: note: times are in UTC; no unit"
          + (f" of site {args.site}" if args.site else "") + " announced its site's time zone, "
          "pass --tz Area/City (or set SEATMON_TZ, or give a site file with --site-file)", file=sys.stderr)
    return "UTC", False


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86400:  # also false for nan
        raise ReportError(f"--timeout {text!r} is not a number of seconds between 0 and 86400")
    return value


def _url(text: str, option: str) -> str:
    parts = urlsplit(text)
    try:
        parts.port  # raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReportError(f"{option} {text!r} is not an http(s) URL such as http://127.0.0.1:8086")
    return text


def _number(text: str, option: str, low: float, high: float, what: str, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (low < value <= high if low_open else low <= value <= high):  # also false for nan
        raise ReportError(f"{option} {text!r} is not {what}")
    return value


def _staffing_target(args) -> staffing_mod.Target:
    if hasattr(args, "interval"):
        if str(args.interval) not in tuple(map(str, staffing_mod.INTERVALS)):
            raise ReportError(f"--interval {args.interval!r} is not one of "
                              + ", ".join(map(str, staffing_mod.INTERVALS)) + " (minutes)")
        args.interval = int(args.interval)
    level = _number(args.target, "--target", 0, 99.99, "a percentage above 0 and below 100", low_open=True)
    within = _number(args.within, "--within", 0, 600, "a number of seconds between 0 and 600", low_open=True)
    occ = _number(args.max_occupancy, "--max-occupancy", 0, 100, "a percentage above 0, at most 100",
                  low_open=True)
    return staffing_mod.Target(level / 100, round(within * 1000), occ / 100)


def _conv(args) -> answers_mod.Conventions:
    if not hasattr(args, "short_abandon"):
        return answers_mod.Conventions()
    text = args.short_abandon
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds <= 600:  # also false for nan
        raise ReportError(f"--short-abandon {text!r} is not a number of seconds between 0 and 600")
    if args.abandon_treatment not in answers_mod.TREATMENTS:
        raise ReportError(f"--abandon-treatment {args.abandon_treatment!r} is not one of "
                          + ", ".join(answers_mod.TREATMENTS))
    return answers_mod.Conventions(round(seconds * 1000), args.abandon_treatment)


def _dates(args, tz: str, known: bool = True) -> Scope:
    """The days the options name, in zone `tz` (the defaults count from today there)."""
    today = datetime.now(ZoneInfo(tz)).date()
    if args.report in ("monthly", "agent"):
        scope = month_scope(args.month, tz, args.site, args.seat)
    elif args.report == "daily":
        scope = periods.day_scope(args.day or (today - timedelta(days=1)).isoformat(), tz, args.site, args.seat)
    elif args.report == "weekly":
        scope = periods.week_scope(args.week or periods.iso_week(today - timedelta(days=7)), tz, args.site,
                                   args.seat)
    elif args.report == "yearly":
        from seatmon.report import yearly
        scope = yearly.year_scope(args.year, tz, args.site, args.seat)
    elif args.report == "publish":
        on = parse_day(args.on, "--on").isoformat() if args.on else today.isoformat()
        scope = make_scope(on, on, tz, args.site, args.seat)
    else:
        first = args.first or today.isoformat()
        scope = make_scope(first, args.last or first, tz, args.site, args.seat)
    return replace(scope, zone_known=known, agent=getattr(args, "agent", None))


def _scope(args) -> Scope:
    """Every option checked, before any server is contacted. Without --tz or
    $SEATMON_TZ or a site file the dates are checked in UTC; run() rebuilds
    the scope once the data has named the zone."""
    _site_file(args)
    args.given_tz = _given_zone(args)
    scope = _dates(args, args.given_tz or "UTC")
    if args.report == "monthly":
        if args.format == "html" and not (args.out or "").endswith((".html", ".htm")):
            raise ReportError("monthly needs --out FILE.html")
    elif args.report == "publish":
        args.reports = tuple(k.strip() for k in args.reports.split(",") if k.strip())
        unknown = [k for k in args.reports if k not in periods.KINDS]
        if unknown or not args.reports:
            raise ReportError(f"--reports {','.join(unknown) or 'nothing'!r}: expected daily, weekly and/or monthly")
        args.mail = publish_mod.parse_mail(
            setting(args, "smtp"), setting(args, "smtp_tls"), setting(args, "smtp_user"),
            setting(args, "smtp_password"), setting(args, "mail_from"),
            args.mail_to or [os.environ.get("SEATMON_MAIL_TO", "")])
        if args.agent_pages and not args.mail.host:
            raise ReportError("--agent-pages needs a mail server: --smtp HOST[:PORT] (or SEATMON_SMTP)")
        if args.agent_pages and "monthly" not in args.reports:
            raise ReportError("--agent-pages goes with the monthly report: add monthly to --reports")
        args.dir = Path(args.dir)
        if args.dir.exists() and not args.dir.is_dir():
            raise ReportError(f"--dir {str(args.dir)!r} is not a folder")
        try:
            args.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"--dir {str(args.dir)!r}: cannot create it ({exc.strerror})")
        if not args.dir.is_dir() or not os.access(args.dir, os.W_OK | os.X_OK):
            raise ReportError(f"--dir {str(args.dir)!r} is not a folder this user can write to")
    if args.report in ("calls", "agent"):
        evidence.check(args)
    if getattr(args, "out", None):
        folder = Path(args.out).resolve().parent
        if not folder.is_dir():
            raise ReportError(f"--out {args.out!r}: no folder {str(folder)!r} (create it first)")
    agent = getattr(args, "agent", None)
    if agent is not None and (not agent.strip() or any(ord(c) < 32 or c == "," for c in agent)):
        raise ReportError(f"--agent {agent!r} is not an agent id (no commas, control characters, nor blank)")
    for option, values in (("--site", [args.site] if args.site else []), ("--seat", args.seat)):
        for value in values:
            if not protocol._is_id(value):  # sites and seats are protocol ids: nothing else can name one
                raise ReportError(f"{option} {value!r} is not an id (1-{protocol.ID_MAX} of A-Z a-z 0-9 - _ .)")
    args.timeout = _timeout(str(args.timeout))
    args.conventions = _conv(args)
    if hasattr(args, "max_occupancy"):
        args.target = _staffing_target(args)
    _url(setting(args, "influx"), "--influx" if args.influx else ENV["influx"][0])
    return scope


def _write(args, text: str, binary_bom: bool = False) -> None:
    if binary_bom:
        text = "\ufeff" + text
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def _render(args, report, text_fn, csv_fn) -> str:
    fmt = args.format
    if fmt == "table":
        return text_fn(report)
    if fmt == "csv":
        return csv_fn(report)
    if fmt == "json":
        return render.json_text(report.as_dict())
    if hasattr(report, "html"):  # a report with a page of its own (yearly)
        return report.html()
    from seatmon.report import monthly
    return monthly.single_page(report)


def run(args) -> int:
    scope = _scope(args)
    db = connect(args, args.timeout)
    # A first tiny query, so a missing database is named as such (statements
    # after a failed one in a batch only say "not executed").
    db.query("SELECT count(seq) FROM call WHERE time < 1ms")
    if args.given_tz is None:  # the zone's precedence: --tz > $SEATMON_TZ > the units' announcement > UTC
        scope = _dates(args, *_data_zone(args, db))
    if args.report not in ("safety", "units", "calls"):  # the reports that read roll-ups
        pending.note(db, scope, args.report)
    if args.report == "publish":
        return _publish(args, db, scope)
    if args.report in ("calls", "agent"):
        return evidence.run(args, db, scope, _write)
    if args.report == "monthly" and args.format == "html":
        from seatmon.report import monthly
        shown = Shown(args.pseudonymise)
        page = monthly.monthly(db, scope, args.conventions, args.target, shown)
        if page is None:
            print(f"seatmon report monthly: no calls in {args.month} ({scope.tz}); nothing written", file=sys.stderr)
            return EXIT_EMPTY
        _audit_agents(args, scope, len(shown))  # the page's agent table
        _write(args, page)
        return 0
    if args.report in periods.KINDS:
        period = periods.collect(db, args.report, scope, args.conventions, args.target,
                                 page=args.format == "html")
        if period.empty:
            print(f"seatmon report {args.report}: no calls in {scope.describe()}; nothing written", file=sys.stderr)
            return EXIT_EMPTY
        if args.format == "csv":
            _write(args, periods.period_csv(period), binary_bom=args.bom)
        else:
            _write(args, periods.period_page(period))
        return 0
    if args.report == "answers":
        report = answers_mod.answers(db, scope, args.by, args.conventions)
        what, text_fn, csv_fn = "calls", render.answers_text, render.answers_csv
    elif args.report == "staffing":
        report = staffing_mod.staffing(db, scope, args.by, args.interval, args.target)
        what, text_fn, csv_fn = "calls or staffed seats", render.staffing_text, render.staffing_csv
    elif args.report == "safety":
        report = safety_mod.safety(db, scope, args.by)
        what, text_fn, csv_fn = "shift ends", render.safety_text, render.safety_csv
    elif args.report == "yearly":
        from seatmon.report import yearly
        report = yearly.yearly(db, scope)
        what, text_fn, csv_fn = "calls", yearly.text, yearly.csv_text
    else:
        report = units_mod.units(db, scope)
        what, text_fn, csv_fn = "unit data", render.units_text, render.units_csv
    if report.empty:
        print(f"seatmon report {args.report}: no {what} from {scope.describe()}"
              + (f" at site {scope.site}" if scope.site else "") + "; nothing to report", file=sys.stderr)
        return EXIT_EMPTY
    if args.report == "yearly" or getattr(args, "by", None) == "agent" or scope.agent is not None:
        report = _agents_shown(args, scope, report)
    _write(args, _render(args, report, text_fn, csv_fn), binary_bom=args.format == "csv" and args.bom)
    return 0


def _agents_shown(args, scope: Scope, report):
    """A report that names agents: its ids pseudonymised when asked, and the
    run in the audit log before a byte is written."""
    shown = Shown(args.pseudonymise)
    if args.report == "yearly" or args.by == "agent":
        for g in report.groups:
            g.group = shown(g.group)
    if scope.agent is not None:
        report.scope = replace(report.scope, agent=shown(scope.agent))
    _audit_agents(args, scope, len(shown))
    return report


def _audit_agents(args, scope: Scope, named: int) -> None:
    if named:
        audit.record(f"report {args.report}", evidence.scope_of(args, scope), named,
                     argv=getattr(args, "_argv", None), path=args.audit_log)


def _publish(args, db, scope: Scope) -> int:
    args.on = scope.first
    written, notes = publish_mod.write_reports(db, args.on, scope.tz, scope.site, scope.seats, args.dir,
                                               args.reports, args.conventions, args.target,
                                               zone_known=scope.zone_known, audit_log=args.audit_log,
                                               argv=getattr(args, "_argv", None))
    for note in notes:
        print(f"seatmon report publish: {note}", file=sys.stderr)
    for w in written:
        print(f"seatmon report publish: wrote {', '.join(str(f) for f in w.files)}", file=sys.stderr)
    if not written:
        print(f"seatmon report publish: nothing due on {args.on} had calls; nothing written, nothing mailed",
              file=sys.stderr)
        return EXIT_EMPTY
    if args.mail.host:
        msg = publish_mod.message(args.mail, args.on, scope.site, written, notes)
        try:
            publish_mod.send(args.mail, msg, timeout=min(args.timeout, 120))
        except (OSError, smtplib.SMTPException) as exc:
            print(f"seatmon report publish: error: mail to {', '.join(args.mail.to)} via "
                  f"{args.mail.host}:{args.mail.port} not sent ({exc}); the files are written", file=sys.stderr)
            return EXIT_ERROR
        print(f"seatmon report publish: mailed to {', '.join(args.mail.to)}", file=sys.stderr)
    if args.agent_pages:
        return _publish_agent_pages(args, db, scope)
    return 0


def _publish_agent_pages(args, db, scope: Scope) -> int:
    try:
        sent, notes = publish_mod.mail_agent_pages(db, args.on, scope.tz, scope.site, args.mail, args.conventions,
                                                   scope.zone_known, min(args.timeout, 120), args.audit_log,
                                                   getattr(args, "_argv", None))
    except (OSError, smtplib.SMTPException) as exc:
        print(f"seatmon report publish: error: agent pages not all mailed via {args.mail.host}:{args.mail.port} "
              f"({exc})", file=sys.stderr)
        return EXIT_ERROR
    for note in notes:
        print(f"seatmon report publish: {note}", file=sys.stderr)
    if sent:
        print(f"seatmon report publish: mailed {len(sent)} agent(s) their own page", file=sys.stderr)
    return 0


def main(args) -> int:
    try:
        return run(args)
    except ReportError as exc:
        print(f"seatmon report {args.report}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except audit.AuditError as exc:
        print(f"seatmon report {args.report}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except InfluxError as exc:
        text = str(exc).splitlines()[0]
        if "timed out" in text:
            text = f"InfluxDB at {setting(args, 'influx')} did not answer within {args.timeout:g} s (see --timeout)"
        elif "database not found" in text:
            text = f"database {setting(args, 'db')!r} not found at {setting(args, 'influx')}"
        print(f"seatmon report {args.report}: error: {text}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # --out (or a publish file) not writable
        print(f"seatmon report {args.report}: error: cannot write {exc.filename or args.out!r}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_ERROR
