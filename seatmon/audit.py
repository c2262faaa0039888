"""The audit log of reports that name agents, and `seatmon audit show`.

Figures about named agents decide pay, so every report run that names an
agent appends one JSON line before its output is written: when (UTC), which
OS user, the command line, the scope (site, range, seat and agent filters)
and how many agents it named. A report that cannot write its line does not
run (exit 1). Documented in docs/reports.md ("Privacy and the audit log").

Where the log lives: `--audit-log FILE`, else $SEATMON_AUDIT_LOG, else
/var/lib/seatmon/audit.jsonl when /var/lib/seatmon exists and this user can
write there (the installed service's state folder, shared by every user
who runs reports on the host), else the user's state folder
($XDG_STATE_HOME or ~/.local/state)/seatmon/audit.jsonl.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

ENV = "SEATMON_AUDIT_LOG"
SYSTEM_DIR = Path("/var/lib/seatmon")
FILE_NAME = "audit.jsonl"


class AuditError(Exception):
    """The audit line could not be written: the report must not run."""


def default_path() -> Path:
    if SYSTEM_DIR.is_dir() and os.access(SYSTEM_DIR, os.W_OK | os.X_OK):
        return SYSTEM_DIR / FILE_NAME
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "seatmon" / FILE_NAME


def log_path(given: str | os.PathLike | None = None) -> Path:
    """--audit-log, else $SEATMON_AUDIT_LOG, else the default."""
    if given:
        return Path(given)
    env = os.environ.get(ENV)
    return Path(env) if env else default_path()


def entry(command: str, scope: dict | str, agents_named: int, argv: list[str] | None = None,
          now: datetime | None = None, user: str | None = None) -> dict:
    """One line of the log (pure, given `now` and `user`)."""
    now = now or datetime.now(timezone.utc)
    return {"ts": now.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "user": user if user is not None else getpass.getuser(),
            "command": command, "argv": list(sys.argv[1:] if argv is None else argv),
            "scope": scope, "agents_named": int(agents_named)}


def record(command: str, scope: dict | str, agents_named: int, *, argv: list[str] | None = None,
           path: str | os.PathLike | None = None, user: str | None = None) -> Path:
    """Append one line for a report run that names agents; AuditError when
    it cannot be written (the caller then refuses to run: exit 1). `scope`:
    what the report covered, e.g. {"site": "hq", "from": "2026-11-01",
    "to": "2026-11-30", "agent": "li.wei"} (or a text saying it); `argv`:
    the command line (args._argv, set by seatmon.cli; else sys.argv);
    `path`: the report's --audit-log (None: $SEATMON_AUDIT_LOG or the
    default); `user`: who asked, when not the OS user (the web front end's
    logged-in account). Returns the log's path."""
    where = log_path(path)
    line = json.dumps(entry(command, scope, agents_named, argv, user=user), ensure_ascii=False, sort_keys=True) + "\n"
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: lines of reports run at the same time never interleave
        # (one write of one short line); 0600: the log names who looked at whom.
        fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            data = line.encode("utf-8")
            if os.write(fd, data) != len(data):
                raise OSError(0, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {str(where)!r} ({exc.strerror or exc}); a report that "
                         f"names agents runs only when it is logged: set --audit-log FILE or {ENV}") from None
    return where


def read(path: Path) -> tuple[list[dict], int]:
    """(the log's entries, how many lines were unreadable)."""
    entries, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(item, dict) and isinstance(item.get("ts"), str):
                entries.append(item)
            else:
                bad += 1
    return entries, bad


def select(entries: list[dict], since: date | None = None, user: str | None = None) -> list[dict]:
    return [e for e in entries
            if (since is None or e["ts"][:10] >= since.isoformat()) and (user is None or e.get("user") == user)]


def scope_text(scope: dict | str) -> str:
    if isinstance(scope, str):
        return scope
    return " ".join(f"{k}={v}" for k, v in scope.items() if v not in (None, "", [], False))


def table(entries: list[dict]) -> str:
    head = f"{'when (UTC)':<20}  {'user':<12} {'command':<14} {'agents':>6}  scope"
    lines = [head, "-" * len(head)]
    for e in entries:
        named = e.get("agents_named")
        lines.append(f"{e['ts']:<20}  {str(e.get('user', '')):<12} {str(e.get('command', '')):<14} "
                     f"{'-' if named is None else named:>6}  {scope_text(e.get('scope') or {})}")
    return "\n".join(lines) + "\n"


# ---- `seatmon audit show` ------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit", metavar="ACTION", required=True)
    p = sub.add_parser("show", help="the report runs that named agents: when, who, what, which scope")
    p.add_argument("--since", metavar="DATE", help="only runs on or after this UTC day, YYYY-MM-DD")
    p.add_argument("--user", metavar="NAME", help="only runs by this OS user")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--audit-log", metavar="FILE",
                   help=f"the log [${ENV}, /var/lib/seatmon/audit.jsonl when writable, else "
                        "~/.local/state/seatmon/audit.jsonl]")


def main(args) -> int:
    since = None
    if args.since:
        try:
            since = date.fromisoformat(args.since)
        except ValueError:
            print(f"seatmon audit show: error: --since {args.since!r} is not a date (expected YYYY-MM-DD)",
                  file=sys.stderr)
            return 2
    path = log_path(args.audit_log)
    if not path.exists():
        print(f"seatmon audit show: no audit log at {str(path)!r} yet: no report has named agents here",
              file=sys.stderr)
        return 4
    try:
        entries, bad = read(path)
    except OSError as exc:
        print(f"seatmon audit show: error: cannot read {str(path)!r} ({exc.strerror})", file=sys.stderr)
        return 1
    if bad:
        print(f"seatmon audit show: note: {bad} line(s) of {str(path)!r} are not audit entries; left out",
              file=sys.stderr)
    shown = select(entries, since, args.user)
    if args.format == "json":
        sys.stdout.write(json.dumps(shown, indent=2, ensure_ascii=False) + "\n")
    elif shown:
        sys.stdout.write(table(shown))
    else:
        print("seatmon audit show: no entries match", file=sys.stderr)
    return 0
