"""`seatmon web`: the web front end (Starlette on uvicorn) with logins and
roles: the live wallboard, the reports and the fleet view; and `seatmon web
user add|set-role|disable|passwd|list` for its accounts. Documented in
docs/web.md.

Modules: accounts.py (accounts and sessions, SQLite + argon2), guard.py
(who may see what, login throttling; pure), reports.py (the pickers -> the
report command's functions), app.py (the routes).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from seatmon import options

EXIT_ERROR, EXIT_USAGE = 1, 2
ACCOUNTS_FILE = "web-accounts.db"  # beside the site file unless --accounts says otherwise
ENV_ACCOUNTS = "SEATMON_WEB_ACCOUNTS"


class WebError(Exception):
    """Bad input or configuration: one line, exit 2."""


def _accounts_option(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument("--accounts", metavar="FILE", default=default,
                   help=f"the accounts file (SQLite) [${ENV_ACCOUNTS}, else {ACCOUNTS_FILE} beside the site file]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from seatmon import sitefile

    sitefile.add_option(parser)
    _accounts_option(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on [127.0.0.1]; any other needs --tls-cert/--tls-key or --behind-proxy")
    parser.add_argument("--port", type=options.whole_number, default=8090, help="port [8090]")
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument("--behind-proxy", action="store_true",
                        help="a reverse proxy on this host terminates TLS: trust its X-Forwarded-For/-Proto "
                             "(from loopback only)")
    parser.add_argument("--trust-user-header", metavar="HEADER",
                        help="with --behind-proxy: the proxy's header naming the logged-in user (single sign-on), "
                             "e.g. X-Remote-User; only from loopback, and only for existing, enabled accounts")
    parser.add_argument("--session-idle", type=options.duration, default=1800.0, metavar="DURATION",
                        help="a session ends after this long without a request [30m]")
    parser.add_argument("--session-lifetime", type=options.duration, default=12 * 3600.0, metavar="DURATION",
                        help="a session ends this long after login, whatever happens [12h]")
    parser.add_argument("--login-attempts", type=options.positive_int, default=5, metavar="N",
                        help="failed logins per account within --login-window before it is locked out [5]; "
                             "four times as many per client address")
    parser.add_argument("--login-window", type=options.duration, default=900.0, metavar="DURATION",
                        help="the window of --login-attempts, and how long a lockout lasts [15m]")
    parser.add_argument("--audit-log", metavar="FILE",
                        help="the audit log of the views that name agents (agent pages, calls) [$SEATMON_AUDIT_LOG, "
                             "/var/lib/seatmon/audit.jsonl when writable, else ~/.local/state/seatmon/audit.jsonl]")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="web_command", metavar="ACTION")
    user = sub.add_parser("user", help="manage the accounts: add, set-role, disable, enable, passwd, list")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for name, help_text in (("add", "a new account (the password is asked twice, or read from --password-stdin)"),
                            ("set-role", "change an account's role, sites and agent id"),
                            ("disable", "lock an account out; its sessions end at once"),
                            ("enable", "let a disabled account log in again"),
                            ("passwd", "set an account's password; its sessions end"),
                            ("list", "the accounts")):
        p = actions.add_parser(name, help=help_text)
        _accounts_option(p, argparse.SUPPRESS)
        if name == "list":
            continue
        p.add_argument("name", metavar="USER")
        if name in ("add", "set-role"):
            p.add_argument("--role", required=True, choices=("head", "leader", "agent", "technician"))
            p.add_argument("--site", dest="sites", action="append", default=[], type=options.site_id, metavar="SITE",
                           help="a site the account covers (repeatable); required for a leader; a technician "
                                "without one covers every site")
            p.add_argument("--agent-id", metavar="ID", help="the agent id of an agent account (as in the roster)")
        if name in ("add", "passwd"):
            p.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of standard input (never give it as an argument)")


def accounts_path(args) -> Path:
    import os

    from seatmon import sitefile

    if args.accounts:
        return Path(args.accounts)
    if os.environ.get(ENV_ACCOUNTS):
        return Path(os.environ[ENV_ACCOUNTS])
    site = sitefile.path_from(args.site_file)
    if not site:
        raise WebError("no accounts file: pass --accounts FILE or --site FILE (it is kept beside the site file)")
    return Path(site).resolve().parent / ACCOUNTS_FILE


def read_password(args, stdin=None, prompt=getpass.getpass) -> str:
    if args.password_stdin:
        line = (stdin or sys.stdin).readline()
        if not line:
            raise WebError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise WebError("no terminal to ask the password on: use --password-stdin")
    first = prompt(f"password for {args.name}: ")
    if prompt("again: ") != first:
        raise WebError("the two passwords differ; nothing changed")
    return first


def user_main(args) -> int:
    from seatmon.web.accounts import AccountError, Accounts

    accounts = Accounts(accounts_path(args))
    try:
        cmd = args.user_command
        if cmd == "list":
            for u in accounts.users():
                print(f"{u.name}\t{u.role}\t{','.join(u.sites) or '-'}\t{u.agent_id or '-'}\t"
                      f"{'disabled' if u.disabled else 'enabled'}")
            return 0
        if cmd == "add":
            from seatmon.web.accounts import check_user

            check_user(args.name, args.role, args.sites, args.agent_id)  # before asking for a password
            if accounts.get(args.name) is not None:
                raise AccountError(f"user {args.name!r} exists already (set-role, passwd or disable change it)")
            accounts.add(args.name, args.role, read_password(args), args.sites, args.agent_id)
            what = "added"
        elif cmd == "set-role":
            accounts.set_role(args.name, args.role, args.sites, args.agent_id)
            what = f"now {args.role}"
        elif cmd in ("disable", "enable"):
            accounts.set_disabled(args.name, cmd == "disable")
            what = cmd + "d"
        else:
            if accounts.get(args.name) is None:
                raise AccountError(f"no user {args.name!r} (seatmon web user add creates one)")
            accounts.set_password(args.name, read_password(args))
            what = "password set; its sessions ended"
        print(f"seatmon web user {cmd}: {args.name}: {what} ({accounts.path})", file=sys.stderr)
        return 0
    finally:
        accounts.close()


def check_exposure(args) -> None:
    """Off loopback the pages and passwords cross the network: TLS here or a declared proxy."""
    from seatmon.wallboard.config import is_loopback

    if bool(args.tls_cert) != bool(args.tls_key):
        raise WebError("--tls-cert and --tls-key go together")
    if args.trust_user_header and not args.behind_proxy:
        raise WebError("--trust-user-header needs --behind-proxy (only a proxy on this host may name the user)")
    if not is_loopback(args.host) and not args.tls_cert and not args.behind_proxy:
        raise WebError(f"--host {args.host} is not loopback: serve TLS (--tls-cert and --tls-key) or declare a "
                       "reverse proxy that does (--behind-proxy)")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path and not Path(path).is_file():
            raise WebError(f"{option} {path}: no such file")


def serve(args) -> int:
    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from collector.influx import InfluxV1
    from seatmon import sitefile
    from seatmon.wallboard.app import Board
    from seatmon.wallboard.config import ConfigError, load as board_config
    from seatmon.wallboard.web import page_html
    from seatmon.web import guard
    from seatmon.web.accounts import Accounts
    from seatmon.web.app import RecordPeer, SecurityHeaders, WebSettings, create_app

    check_exposure(args)
    site_path = sitefile.path_from(args.site_file)
    if not site_path:
        raise WebError("no site file: pass --site FILE (deploy/site.example.toml) or set $SEATMON_SITE")
    try:
        site = sitefile.load(site_path)
        cfg = board_config(None, site=site)
    except (sitefile.SiteFileError, ConfigError) as exc:
        raise WebError(str(exc)) from None
    accounts = Accounts(accounts_path(args))
    if not accounts.users():
        log.warning("no accounts yet in %s: add one with `seatmon web user add NAME --role head`", accounts.path)
    db = InfluxV1(site.influx("url", "http://127.0.0.1:8086"), site.influx("database", "seatmon"),
                  username=site.influx("username"), password=site.influx("password"), token=site.influx("token"),
                  timeout=300)
    board = Board(cfg)
    settings = WebSettings(site=site, accounts=accounts, db=db, board=board, board_page=page_html,
                           idle_s=args.session_idle, lifetime_s=args.session_lifetime,
                           limits=guard.LoginLimits(args.login_attempts, args.login_attempts * 4, args.login_window),
                           trust_user_header=args.trust_user_header, fleet_status=fleet_status,
                           audit_log=args.audit_log)
    app = SecurityHeaders(create_app(settings))
    if args.behind_proxy:
        app = ProxyHeadersMiddleware(app, trusted_hosts=["127.0.0.1", "::1"])
    app = RecordPeer(app)
    config = uvicorn.Config(app, host=args.host, port=args.port, ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
                            proxy_headers=False, server_header=False, log_level=args.log_level.lower(),
                            access_log=args.log_level == "DEBUG", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    board.start()
    try:
        scheme = "https" if args.tls_cert else "http"
        print(f"seatmon web: {scheme}://{args.host}:{args.port}/", flush=True)
        server.run()
    finally:
        board.stop()
        accounts.close()
    return 0 if server.started else EXIT_ERROR


def fleet_status(site_path) -> list[dict]:
    """What `seatmon fleet status --json` prints, from the same code."""
    from tools import fleet
    from tools import inventory as inv

    site = inv.load(site_path)
    client = fleet.broker_client(site, fleet.load_credentials(site), None, None, True)
    try:
        return fleet.status(site, client)
    finally:
        client.loop_stop()
        client.disconnect()


log = logging.getLogger("seatmon.web")


def main(args) -> int:
    from seatmon.web.accounts import AccountError

    logging.basicConfig(level=getattr(args, "log_level", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.web_command == "user":
            return user_main(args)
        return serve(args)
    except (WebError, AccountError) as exc:
        print(f"seatmon web: {exc}", file=sys.stderr)
        return EXIT_USAGE
