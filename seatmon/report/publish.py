"""`seatmon report publish`: the reports that are due on a date, written to
a folder and, when a mail server is set, mailed with the pages attached.
Run daily by deploy/seatmon-reports.timer. Documented in docs/reports.md.

Due on date D (the site's local date): the daily report of D-1; on a
Monday the weekly report of the ISO week before; on the 1st the monthly
report of the month before (regulation 002: the monthly analysis is due by
the 22nd). `--on` reruns any past date.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from collector.influx import InfluxV1
from seatmon import audit
from seatmon.pseudonym import Shown
from seatmon.report import answers as answers_mod
from seatmon.report import monthly, periods
from seatmon.report import staffing as staffing_mod
from seatmon.report.query import ReportError, Scope, month_scope

TLS_MODES = ("auto", "starttls", "ssl", "none")


@dataclass(frozen=True)
class Mail:
    """Where and how the reports are mailed; `host` None: no mail."""

    host: str | None = None
    port: int = 25
    tls: str = "auto"  # auto: STARTTLS when the server offers it
    user: str | None = None
    password: str | None = None
    sender: str = ""
    to: tuple[str, ...] = field(default=())


def parse_mail(host: str | None, tls: str, user, password, sender: str | None, to: list[str]) -> Mail:
    """Check the mail settings (before anything is contacted)."""
    to = [a.strip() for item in to for a in item.split(",") if a.strip()]
    if not host:
        if to:
            raise ReportError("--mail-to needs a mail server: --smtp HOST[:PORT] (or SEATMON_SMTP)")
        return Mail()
    if tls not in TLS_MODES:
        raise ReportError(f"--smtp-tls {tls!r} is not one of " + ", ".join(TLS_MODES))
    name, _, port_text = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    try:
        port = int(port_text) if port_text else (465 if tls == "ssl" else 25)
    except ValueError:
        port = -1
    if not name or not 0 < port < 65536:
        raise ReportError(f"--smtp {host!r} is not HOST or HOST:PORT")
    if not to:
        raise ReportError("--smtp needs at least one --mail-to ADDRESS (or SEATMON_MAIL_TO)")
    for address in to + ([sender] if sender else []):
        if "@" not in address or any(c in address for c in " <>\r\n,"):
            raise ReportError(f"mail address {address!r} is not a plain address such as lead@example.com")
    if bool(user) != bool(password):
        raise ReportError("--smtp-user and --smtp-password go together")
    return Mail(name, port, tls, user or None, password or None, sender or f"seatmon@{socket.getfqdn()}",
                tuple(to))


def due(on: date, wanted: tuple[str, ...]) -> list[tuple[str, date]]:
    """(kind, first day) of the reports due on `on` (pure)."""
    out = []
    if "daily" in wanted:
        out.append(("daily", on - timedelta(days=1)))
    if "weekly" in wanted and on.isoweekday() == 1:
        out.append(("weekly", on - timedelta(days=7)))
    if "monthly" in wanted and on.day == 1:
        out.append(("monthly", (on - timedelta(days=1)).replace(day=1)))
    return out


def scope_of(kind: str, first: date, tz: str, site, seats, zone_known: bool = True) -> Scope:
    if kind == "daily":
        scope = periods.day_scope(first.isoformat(), tz, site, seats)
    elif kind == "weekly":
        scope = periods.week_scope(periods.iso_week(first), tz, site, seats)
    else:
        scope = month_scope(first.strftime("%Y-%m"), tz, site, seats)
    return replace(scope, zone_known=zone_known)


def _write_atomic(path: Path, text: str) -> None:
    """Whole file or none: a reader of the folder never sees half a page."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@dataclass
class Written:
    kind: str
    name: str
    files: list[Path]
    summary: str


def write_reports(db: InfluxV1, on: date, tz: str, site, seats, out_dir: Path, wanted: tuple[str, ...],
                  conv: answers_mod.Conventions, target: staffing_mod.Target,
                  zone_known: bool = True, audit_log=None, argv=None) -> tuple[list[Written], list[str]]:
    """Write the reports due on `on`; (written, notes on the empty ones).
    zone_known False: `tz` is the UTC fallback, and the pages say so. A
    monthly page with an agent table is in the audit log before it is
    written (`audit_log`: the --audit-log; `argv`: the command line)."""
    written, notes = [], []
    for kind, first in due(on, wanted):
        scope = scope_of(kind, first, tz, site, seats, zone_known)
        p = periods.collect(db, kind, scope, conv, target, page=kind != "monthly")
        if p.empty:
            notes.append(f"{kind} {p.name}: no calls in {scope.describe()}; nothing written")
            continue
        shown = Shown()
        html = periods.period_page(p) if kind != "monthly" else monthly.monthly(db, scope, conv, target, shown) or ""
        if len(shown):
            audit.record("report publish", {"report": kind, "site": site, "from": scope.first.isoformat(),
                                            "to": scope.last.isoformat(), "tz": tz}, len(shown), argv=argv,
                         path=audit_log)
        stem = f"{kind}-{p.name}" + (f"-{site}" if site else "")
        files = [out_dir / f"{stem}.html", out_dir / f"{stem}.csv"]
        _write_atomic(files[0], html)
        _write_atomic(files[1], periods.period_csv(p))
        t = p.answers_main.total
        summary = (f"{kind} {p.name}: {t.calls:,} calls, answer timeliness rate "
                   f"{monthly._pct(t.timeliness_rate)}, {t.caller_abandoned:,} caller abandoned, "
                   f"peak seats needed {p.staffing_main.total.seats_needed if p.staffing_main else '-'}")
        written.append(Written(kind, p.name, files, summary))
    return written, notes


def message(mail: Mail, on: date, site, written: list[Written], notes: list[str]) -> EmailMessage:
    msg = EmailMessage()
    names = ", ".join(f"{w.kind} {w.name}" for w in written)
    msg["Subject"] = f"seatmon reports{f' (site {site})' if site else ''}: {names}"
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    msg.set_content("\n".join([f"seatmon reports due on {on}:", ""] + [w.summary for w in written] + notes
                              + ["", "The pages are attached (open the .html in a browser); the .csv files "
                                     "open in a spreadsheet."]) + "\n")
    for w in written:
        for path in w.files:
            subtype = "html" if path.suffix == ".html" else "csv"
            msg.add_attachment(path.read_bytes(), maintype="text", subtype=subtype, filename=path.name)
    return msg


def send(mail: Mail, msg: EmailMessage, timeout: float = 60) -> None:
    assert mail.host, "send() needs a mail server"
    smtp: smtplib.SMTP
    if mail.tls == "ssl":
        smtp = smtplib.SMTP_SSL(mail.host, mail.port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(mail.host, mail.port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if mail.tls == "starttls" or (mail.tls == "auto" and smtp.has_extn("starttls")):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if mail.user and mail.password:
            smtp.login(mail.user, mail.password)
        smtp.send_message(msg)


# ---- each agent their own month (--agent-pages) ----------------------------------------------

def agent_message(mail: Mail, address: str, month: str, site, page_name: str, page_html: str) -> EmailMessage:
    """One agent's page, to that agent only."""
    msg = EmailMessage()
    msg["Subject"] = f"seatmon: your month {month}" + (f" (site {site})" if site else "")
    msg["From"] = mail.sender
    msg["To"] = address
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    msg.set_content(f"Your figures for {month}, next to the site's, and the calls behind them are in the attached "
                    "page (open it in a browser). It is for you alone.\n")
    msg.add_attachment(page_html.encode("utf-8"), maintype="text", subtype="html", filename=page_name)
    return msg


def mail_agent_pages(db: InfluxV1, on: date, tz: str, site, mail: Mail, conv: answers_mod.Conventions,
                     zone_known: bool = True, timeout: float = 60, audit_path=None,
                     argv: list[str] | None = None) -> tuple[list[str], list[str]]:
    """On the 1st: mail each agent of last month's roster their own page (to
    the e-mail in the roster), each mail audited before it is sent.
    (agents mailed, notes). Nothing is written to the reports' folder: an
    agent's page goes to that agent only."""
    from seatmon.report import agent_page
    from seatmon.roster import store as roster_store

    if on.day != 1:
        return [], [f"agent pages are mailed on the 1st of a month only (not {on})"]
    first = (on - timedelta(days=1)).replace(day=1)
    scope = scope_of("monthly", first, tz, site, (), zone_known)
    month = first.strftime("%Y-%m")
    roster = roster_store.load(db, scope.start_ms, scope.end_ms, site=site)
    people = roster_store.agents(db)
    site_figures = agent_page.site_figures(db, scope, conv)
    sent, notes, no_mail = [], [], []
    for agent in roster.agents():
        address = people.get(agent).email if agent in people else ""
        if not address or "@" not in address:
            no_mail.append(agent)
            continue
        page = agent_page.collect(db, scope, agent, conv, site=site_figures)
        if page.empty:
            continue
        audit.record("report publish", {"report": "agent", "site": site, "from": scope.first.isoformat(),
                                        "to": scope.last.isoformat(), "tz": tz, "agent": agent,
                                        "mailed_to": address}, 1, argv=argv, path=audit_path)
        send(mail, agent_message(mail, address, month, site, f"agent-{month}.html", agent_page.html(page)),
             timeout=timeout)
        sent.append(agent)
    if no_mail:
        notes.append(f"{len(no_mail)} agent(s) of {month} have no e-mail in the roster; their pages were not "
                     "mailed (seatmon report agent --agent ID --month " + month + " writes one)")
    return sent, notes
