"""The web application (Starlette, served by uvicorn): logins, the live
wallboard, the reports and the fleet view, each checked against the
account's role and sites on every request.

The deciding is elsewhere: guard.py (who may see what, login throttling),
accounts.py (accounts, sessions), reports.py (the pickers -> the report
command's own functions). This module wires requests to them.

A new view joins in three places: its name in guard.VIEWS for the roles that
may open it, a route here that calls `allow()` before anything is read, and
its figures from the report code. Every refusal goes through `refuse()`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import queue
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from collector.influx import InfluxError, InfluxV1
from seatmon.report import pending
from seatmon.report import zone as zone_mod
from seatmon.report.query import ReportError
from seatmon.web import guard, reports
from seatmon.web.accounts import Accounts, Session, User

log = logging.getLogger("seatmon.web")

HERE = Path(__file__).parent
COOKIE = "seatmon_session"
KEEPALIVE_S = 10.0  # a comment line this often keeps proxies and idle sockets open
STREAM_POLL_S = 0.02  # how often an update stream looks for the board's next change
STREAM_RECHECK_S = 5.0  # how often an open update stream checks that its session still lives
SITES_CACHE_S = 60.0
LOOPBACK = ("127.0.0.1", "::1")


@dataclass
class WebSettings:
    site: object  # seatmon.sitefile.HostSite
    accounts: Accounts
    db: InfluxV1
    board: object | None = None  # seatmon.wallboard.app.Board of the site file's site(s)
    board_page: object | None = None  # title -> the board page with a script nonce (seatmon.wallboard.web.page_html)
    idle_s: float = 1800.0
    lifetime_s: float = 12 * 3600.0
    limits: guard.LoginLimits = field(default_factory=guard.LoginLimits)
    trust_user_header: str | None = None
    fleet_status: object | None = None  # site path -> rows, the `seatmon fleet status` code
    clock: object = time.time


class LoginNeeded(Exception):
    pass


# ---- security headers, the client's real address ------------------------------------------

def csp(nonce: str) -> str:
    return ("default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class SecurityHeaders:
    """Every response: CSP with a per-request script nonce, no framing, no
    sniffing, no referrer off the site, no caching; HSTS over HTTPS."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["nonce"] = nonce
        https = scope.get("scheme") == "https"

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                           or not scope["path"].startswith("/static/")]
                extra = {b"content-security-policy": csp(nonce), b"x-frame-options": "DENY",
                         b"referrer-policy": "same-origin", b"x-content-type-options": "nosniff",
                         b"cross-origin-opener-policy": "same-origin"}
                if not scope["path"].startswith("/static/"):
                    extra[b"cache-control"] = "no-store"
                if https:
                    extra[b"strict-transport-security"] = "max-age=31536000"
                present = {k.lower() for k, _ in headers}
                headers += [(k, v.encode()) for k, v in extra.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RecordPeer:
    """Keep the address of whoever opened the connection (the proxy, when
    there is one) before the forwarded headers replace the client's."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope["seatmon.peer"] = (scope.get("client") or ("", 0))[0]
        await self.app(scope, receive, send)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


# ---- the application ------------------------------------------------------------------------

def create_app(s: WebSettings) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    throttle = guard.LoginThrottle(s.limits)
    sites_cache: dict[str, object] = {"at": -SITES_CACHE_S, "sites": []}

    # -- sessions and the current user --

    def session_of(request: Request) -> Session | None:
        if "session" not in request.state._state:
            request.state.session = s.accounts.session(request.cookies.get(COOKIE), s.idle_s, s.lifetime_s)
        return request.state.session

    def user_of(request: Request) -> User | None:
        if s.trust_user_header and request.scope.get("seatmon.peer") in LOOPBACK:
            name = request.headers.get(s.trust_user_header)
            if name:
                user = s.accounts.get(name)
                return user if user and not user.disabled else None
        session = session_of(request)
        return session.user if session else None

    def login_required(request: Request) -> User:
        user = user_of(request)
        if user is None:
            raise LoginNeeded()
        return user

    def refuse(request: Request, user: User | None, why: str):
        # The app's log keeps every refused view or download: who, what, from where.
        log.warning("refused: user %s (%s) from %s: %s %s: %s", user.name if user else "-",
                    user.role if user else "-", client_address(request), request.method,
                    request.url.path + (f"?{request.url.query}" if request.url.query else ""), why)
        raise HTTPException(403, why)

    def allow(request: Request, user: User, view: str, site: str | None) -> None:
        if not guard.may(user, view, site):
            refuse(request, user, f"a {user.role} account may not open {view}"
                   + (f" of site {site}" if site else ""))

    def check_csrf(request: Request, form) -> Session:
        session = session_of(request)
        given = str(form.get("csrf_token") or "")
        if session is None or not hmac.compare_digest(given.encode(), session.csrf.encode()):
            refuse(request, session.user if session else None, "the form's security token is missing or stale: "
                   "reload the page and send it again")
        return session

    def set_cookie(response: Response, request: Request, token: str) -> None:
        response.set_cookie(COOKIE, token, max_age=int(s.lifetime_s), path="/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    def render(request: Request, name: str, status: int = 200, **context) -> Response:
        user = context.pop("user", None) or user_of(request)
        session = session_of(request)
        context.update(user=user, csrf=session.csrf if session else "", nonce=request.state.nonce,
                       views=_views(user) if user else {})
        return templates.TemplateResponse(request, name, context, status_code=status)

    def known_sites() -> list[str]:
        now = time.monotonic()
        if now - sites_cache["at"] >= SITES_CACHE_S:
            found = {s.site.id}
            try:
                for result in s.db.query('SHOW TAG VALUES FROM "call" WITH KEY = "site"'):
                    for series in result.get("series", []):
                        found.update(v[1] for v in series["values"])
            except InfluxError as exc:
                log.warning("could not list the sites in InfluxDB: %s", str(exc).splitlines()[0])
            sites_cache.update(at=now, sites=sorted(found))
        return list(sites_cache["sites"])

    def _views(user: User) -> dict:
        sites = guard.sites_of(user, known_sites())
        return {"sites": sites, "board": [x for x in sites if guard.may(user, "board", x) and board_has(x)],
                "reports": [k for k in guard.REPORT_VIEWS if any(guard.may(user, k, x) for x in sites)],
                "fleet": guard.may(user, "fleet", s.site.id)}

    def board_has(site: str) -> bool:
        return s.board is not None and (not s.board.cfg.sites or site in s.board.cfg.sites)

    def zone_of(site: str) -> tuple[str, bool]:
        if site == s.site.id:
            return s.site.timezone, True
        tz = zone_mod.stored_zone(s.db, [site])
        return (tz, True) if tz else ("UTC", False)

    # -- login, logout, account --

    async def login_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            s.accounts.purge(s.idle_s, s.lifetime_s)
            token, session = s.accounts.new_session(None)
            request.state.session = session
            response = render(request, "login.html", next=_safe_next(request.query_params.get("next")))
            set_cookie(response, request, token)
            return response
        if session.user is not None:
            return RedirectResponse("/", 303)
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form)
        name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        nxt = _safe_next(form.get("next"))
        address = client_address(request)
        wait = throttle.locked_for(name, address, s.clock())
        if wait > 0:
            log.warning("login of %r from %s refused: too many failed attempts", name, address)
            return render(request, "login.html", 429, next=nxt, username=name,
                          error=f"Too many failed logins for this account or from this address: try again in "
                                f"{max(1, round(wait / 60))} minute(s).")
        user = await run_in_threadpool(s.accounts.verify, name, password)
        if user is None:
            throttle.failed(name, address, s.clock())
            log.warning("failed login for %r from %s", name, address)
            return render(request, "login.html", 401, next=nxt, username=name,
                          error="Wrong user name or password, or the account is disabled.")
        throttle.succeeded(name)
        old = session_of(request)
        if old is not None:
            s.accounts.end_session(old.token_hash)
        token, _ = s.accounts.new_session(user)  # a new id at login: no session fixation
        log.info("login: %s (%s) from %s", user.name, user.role, address)
        response = RedirectResponse(nxt or "/", 303)
        set_cookie(response, request, token)
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        session = check_csrf(request, form)
        s.accounts.end_session(session.token_hash)
        if session.user:
            log.info("logout: %s from %s", session.user.name, client_address(request))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def account(request: Request) -> Response:
        user = login_required(request)
        if request.method == "GET":
            return render(request, "account.html")
        form = await request.form()
        check_csrf(request, form)
        old, new, again = (str(form.get(k) or "") for k in ("current", "new", "again"))
        address = client_address(request)
        if throttle.locked_for(user.name, address, s.clock()) > 0:
            return render(request, "account.html", 429, error="Too many wrong passwords: try again later.")
        if await run_in_threadpool(s.accounts.verify, user.name, old) is None:
            throttle.failed(user.name, address, s.clock())
            return render(request, "account.html", 400, error="The current password is wrong.")
        if new != again:
            return render(request, "account.html", 400, error="The two new passwords differ.")
        from seatmon.web.accounts import AccountError
        try:
            await run_in_threadpool(s.accounts.set_password, user.name, new)
        except AccountError as exc:
            return render(request, "account.html", 400, error=f"{exc}.")
        log.info("password changed: %s from %s", user.name, address)
        token, session = s.accounts.new_session(user)  # every other session of the account has ended
        request.state.session = session
        response = render(request, "account.html", message="Password changed; other browsers are logged out.")
        set_cookie(response, request, token)
        return response

    # -- home --

    async def home(request: Request) -> Response:
        user = login_required(request)
        if user.role == "agent":
            return RedirectResponse("/account", 303)
        return render(request, "home.html")

    # -- the wallboard --

    def board_site(request: Request) -> str:
        user = login_required(request)
        site = request.path_params["site"]
        allow(request, user, "board", site)
        if not board_has(site):
            raise HTTPException(404, f"no live board for site {site} here")
        return site

    async def board_page(request: Request) -> Response:
        board_site(request)
        body = s.board_page(s.board.cfg.title, request.state.nonce)
        return Response(body, media_type="text/html; charset=utf-8")

    async def board_state(request: Request) -> Response:
        board_site(request)
        return Response(s.board.state(), media_type="application/json")

    async def board_events(request: Request) -> Response:
        board_site(request)
        token = request.cookies.get(COOKIE)
        board = s.board
        q, snapshot = board.subscribe()

        async def stream():
            try:
                yield b"retry: 1000\nevent: snapshot\ndata: " + snapshot + b"\n\n"
                sent = checked = time.monotonic()
                while not q.dropped:
                    now = time.monotonic()
                    if now - checked >= STREAM_RECHECK_S:
                        checked = now
                        if user_of_token(token, request) is None:
                            return  # logged out or expired: the page's reconnect meets the login
                    try:
                        data = q.get_nowait()
                    except queue.Empty:
                        if now - sent >= KEEPALIVE_S:
                            sent = now
                            yield b": keepalive\n\n"
                        await asyncio.sleep(STREAM_POLL_S)
                        continue
                    sent = now
                    yield b"event: patch\ndata: " + data + b"\n\n"
            finally:
                board.unsubscribe(q)

        return StreamingResponse(stream(), media_type="text/event-stream")

    def user_of_token(token: str | None, request: Request) -> User | None:
        if s.trust_user_header and request.scope.get("seatmon.peer") in LOOPBACK \
                and request.headers.get(s.trust_user_header):
            return user_of(request)
        session = s.accounts.session(token, s.idle_s, s.lifetime_s)
        return session.user if session else None

    # -- reports --

    def report_view(request: Request) -> Response:
        user = login_required(request)
        kind = request.path_params["kind"]
        if kind not in guard.REPORT_VIEWS:
            raise HTTPException(404, f"no report {kind!r}")
        allowed = guard.sites_of(user, known_sites())
        site = request.query_params.get("site") or (allowed[0] if allowed else s.site.id)
        allow(request, user, kind, site)
        if site not in known_sites():
            raise HTTPException(404, f"no site {site!r}: no data names it and it is not this server's site")
        tz, known = zone_of(site)
        today = datetime.now(ZoneInfo(tz)).date()
        context = {"kind": kind, "sites": [x for x in allowed if guard.may(user, kind, x)], "site": site,
                   "groups": reports.GROUPS[kind], "ranges": reports.RANGES, "treatments": reports.answers_mod.TREATMENTS,
                   "intervals": reports.staffing_mod.INTERVALS, "user": user}
        try:
            choice = reports.parse(kind, request.query_params, site, today)
            context["choice"] = choice
            scope = reports.scope_of(choice, tz, known)
        except ReportError as exc:
            if request.query_params.get("format") in ("csv", "json"):
                return Response(f"{exc}\n", 400, media_type="text/plain; charset=utf-8")
            context.setdefault("choice", reports.parse(kind, {}, site, today))
            return render(request, "report.html", 400, error=str(exc), **context)
        try:
            out = reports.produce(s.db, choice, scope)
            notes = pending.pending_notes(s.db, scope) if kind not in ("safety", "units") else []
        except ReportError as exc:
            return _report_error(request, choice, context, 400, str(exc))
        except InfluxError as exc:
            log.warning("report %s for site %s: InfluxDB: %s", kind, site, str(exc).splitlines()[0])
            return _report_error(request, choice, context, 502,
                                 f"InfluxDB could not answer: {str(exc).splitlines()[0]}")
        if choice.fmt != "html":
            if out.text is None:
                return Response(f"{out.empty_note}\n", 404, media_type="text/plain; charset=utf-8")
            name = f"{kind}-{site}-{scope.first}" + (f"-to-{scope.last}" if scope.last != scope.first else "")
            return Response(out.text, media_type=out.media_type,
                            headers={"Content-Disposition": f'attachment; filename="{name}.{choice.fmt}"'})
        style, body = reports.split_page(out.text) if out.text else ("", "")
        downloads = {f: "?" + urlencode(choice.query(format=f)) for f in ("csv", "json")}
        return render(request, "report.html", report_style=style, report_body=body, notes=notes,
                      empty=out.empty_note if out.text is None else "", downloads=downloads, **context)

    def _report_error(request, choice, context, status, text):
        if choice.fmt != "html":
            return Response(f"{text}\n", status, media_type="text/plain; charset=utf-8")
        return render(request, "report.html", status, error=text, **context)

    # -- the fleet --

    def fleet(request: Request) -> Response:
        user = login_required(request)
        site = request.query_params.get("site") or s.site.id
        allow(request, user, "fleet", site)
        if site != s.site.id:
            raise HTTPException(404, f"the fleet view covers this server's site {s.site.id} only")
        try:
            rows = s.fleet_status(s.site.path)
        except Exception as exc:  # the fleet's own errors (inventory, credentials, broker): one line
            log.warning("fleet status: %s", str(exc).splitlines()[0])
            return render(request, "fleet.html", 502, site=site, rows=[],
                          error=f"could not read the fleet's status: {str(exc).splitlines()[0]}")
        if request.query_params.get("format") == "json":
            return JSONResponse(rows, headers={"Content-Disposition": f'attachment; filename="fleet-{site}.json"'})
        return render(request, "fleet.html", site=site, rows=rows)

    # -- errors --

    async def login_needed(request: Request, exc: LoginNeeded) -> Response:
        if request.url.path.endswith(("/events", "/state")) or request.query_params.get("format") in ("csv", "json"):
            return Response("log in first\n", 401, media_type="text/plain; charset=utf-8")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), 303)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.query_params.get("format") in ("csv", "json") or request.url.path.endswith(("/events", "/state")):
            return Response(f"{exc.detail}\n", exc.status_code, media_type="text/plain; charset=utf-8")
        return render(request, "error.html", exc.status_code, code=exc.status_code, detail=exc.detail)

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/account", account, methods=["GET", "POST"]),
        Route("/board/{site}/", board_page),
        Route("/board/{site}/state", board_state),
        Route("/board/{site}/events", board_events),
        Route("/reports/{kind}", report_view),
        Route("/fleet", fleet),
        Route("/favicon.ico", no_icon),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={LoginNeeded: login_needed, HTTPException: http_error})
    app.state.settings = s
    return app


async def no_icon(request: Request) -> Response:
    return Response(status_code=204)  # browsers ask for one; there is none


def _safe_next(value) -> str:
    """Only a path on this site (never //host or a scheme) is followed after login."""
    value = str(value or "")
    if value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return ""
