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
from urllib.parse import quote, urlencode
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
from seatmon import audit
from seatmon.report import agent_page
from seatmon.report import calls as calls_mod
from seatmon.report import render as render_mod
from seatmon.roster import store as roster_store
from seatmon.web import guard, people, reports
from seatmon.web.accounts import Accounts, Session, User

log = logging.getLogger("seatmon.web")

HERE = Path(__file__).parent
COOKIE = "seatmon_session"
KEEPALIVE_S = 10.0  # a comment line this often keeps proxies and idle sockets open
STREAM_WAIT_S = 1.0  # longest wait for the board's next change before the stream checks its session and keep-alive
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
    audit_log: str | None = None  # the audit log of views naming agents (None: $SEATMON_AUDIT_LOG or the default)
    clock: object = time.time


class LoginNeeded(Exception):
    pass


class AuditUnavailable(Exception):
    """The audit line of a view naming agents could not be written: the view is refused (503)."""


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
            refuse(request, user, f"{guard.article(user.role)} {user.role} account may not open {view}"
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
            return RedirectResponse(f"/agents/{quote(user.agent_id)}" if user.agent_id else "/account", 303)
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
        # The board's thread wakes this stream when it queues an update: no polling delay.
        loop, woken = asyncio.get_running_loop(), asyncio.Event()

        def wake():
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:  # the server's loop has closed: nobody to wake
                pass

        q.wake = wake

        async def stream():
            try:
                yield b"retry: 1000\nevent: snapshot\ndata: " + snapshot + b"\n\n"
                sent = checked = time.monotonic()
                while not q.dropped:
                    now = time.monotonic()
                    if now - checked >= STREAM_RECHECK_S:
                        checked = now
                        # off the event loop: the session's lookup writes its last use to the accounts file
                        if await run_in_threadpool(user_of_token, token, request) is None:
                            return  # logged out or expired: the page's reconnect meets the login
                    try:
                        data = q.get_nowait()
                    except queue.Empty:
                        if now - sent >= KEEPALIVE_S:
                            sent = now
                            yield b": keepalive\n\n"
                        woken.clear()
                        if q.empty():  # an update queued after this check sets `woken` again
                            try:
                                await asyncio.wait_for(woken.wait(), STREAM_WAIT_S)
                            except asyncio.TimeoutError:
                                pass
                        continue
                    sent = now
                    yield b"event: patch\ndata: " + data + b"\n\n"
            finally:
                q.wake = None
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
        if (choice.by in reports.NAMES_PEOPLE or out.agents_named) and out.text is not None:
            # A view that names agents: audited like the agent pages (and refused when it cannot be).
            audited(request, user, people.audit_scope(kind, scope, request.query_params, client_address(request),
                                                      by=choice.by), out.agents_named)
        if choice.fmt != "html":
            if out.text is None:
                return Response(f"{out.empty_note}\n", 404, media_type="text/plain; charset=utf-8")
            name = f"{kind}-{site}-{scope.first}" + (f"-to-{scope.last}" if scope.last != scope.first else "")
            return Response(out.text, media_type=out.media_type,
                            headers={"Content-Disposition": f'attachment; filename="{name}.{choice.fmt}"'})
        style, body = reports.split_page(out.text) if out.text else ("", "")
        linked = (kind == "answers" and choice.by == "seat") or kind in ("daily", "weekly", "monthly")
        if linked and guard.may_list_seat_calls(user, site):
            body = people.link_counts(body, site, scope)  # one click from a seat's figure to its calls
        downloads = {f: "?" + urlencode(choice.query(format=f)) for f in ("csv", "json")}
        return render(request, "report.html", report_style=style, report_body=body, notes=notes,
                      empty=out.empty_note if out.text is None else "", downloads=downloads, **context)

    def _report_error(request, choice, context, status, text):
        if choice.fmt != "html":
            return Response(f"{text}\n", status, media_type="text/plain; charset=utf-8")
        return render(request, "report.html", status, error=text, **context)

    # -- the views that name agents: audited, every view and every refusal --

    def audited(request: Request, user: User, scope: dict, named: int) -> None:
        try:
            audit.record(f"web {request.method} {request.url.path}", scope, named, argv=[], path=s.audit_log,
                         user=user.name)
        except audit.AuditError as exc:
            log.error("%s", exc)
            raise AuditUnavailable(str(exc)) from None

    def refuse_people(request: Request, user: User, view: str, why: str, **extra):
        scope = people.audit_scope(view, None, request.query_params, client_address(request), refused=why, **extra)
        try:
            audited(request, user, scope, 0)
        except AuditUnavailable:
            pass  # refused either way; the app's log below keeps it
        refuse(request, user, why)

    def people_site(request: Request, user: User, view: str) -> str:
        if view not in guard.VIEWS.get(user.role, ()):
            refuse_people(request, user, view, f"{guard.article(user.role)} {user.role} account may not open {view}")
        site = request.query_params.get("site") or s.site.id
        if user.role != "agent":
            if not guard.may(user, view, site):
                refuse_people(request, user, view, f"{guard.article(user.role)} {user.role} account may not open "
                                                   f"{view} of site {site}")
        if site not in known_sites():
            raise HTTPException(404, f"no site {site!r}: no data names it and it is not this server's site")
        return site

    def sites_worked(agent: str, scope) -> set[str]:
        """The sites the roster puts `agent` at in the scope's range."""
        return {a.site for a in roster_store.load(s.db, scope.start_ms, scope.end_ms, None, agent=agent).assignments}

    def check_agent(request: Request, user: User, view: str, agent: str, scope) -> None:
        worked = sites_worked(agent, scope) if user.role == "leader" else set()
        if not guard.may_see_agent(user, agent, worked):
            refuse_people(request, user, view, f"{guard.article(user.role)} {user.role} account may not see agent {agent}"
                          + (" (who worked at none of its sites in that range)" if user.role == "leader" else ""),
                          agent=agent)

    def bad_people_input(request, fmt: str, template: str, text: str, status: int = 400, **context):
        if fmt != "html":
            return Response(f"{text}\n", status, media_type="text/plain; charset=utf-8")
        return render(request, template, status, error=text, **context)

    async def agent_view(request: Request) -> Response:
        user = login_required(request)
        site = people_site(request, user, "agent")
        agent = request.path_params["agent"]
        fmt = request.query_params.get("format") or "html"
        tz, known = zone_of(site)
        today = datetime.now(ZoneInfo(tz)).date()
        context = {"agent": agent, "site": site, "month": request.query_params.get("month") or today.strftime("%Y-%m")}
        try:
            fmt, scope = people.parse_agent(request.query_params, agent, site, tz, known, today)
        except ReportError as exc:
            return bad_people_input(request, fmt, "agent.html", str(exc), **context)
        try:
            await run_in_threadpool(check_agent, request, user, "agent", agent, scope)
            page = await run_in_threadpool(agent_page.collect, s.db, scope, agent)
        except ReportError as exc:
            return bad_people_input(request, fmt, "agent.html", str(exc), **context)
        except InfluxError as exc:
            log.warning("agent page for %s: InfluxDB: %s", agent, str(exc).splitlines()[0])
            return bad_people_input(request, fmt, "agent.html", f"InfluxDB could not answer: "
                                    f"{str(exc).splitlines()[0]}", 502, **context)
        if page.empty:
            return bad_people_input(request, fmt, "agent.html", f"the roster puts agent {agent} at no seat in "
                                    f"{scope.first:%Y-%m} ({scope.tz}) at site {site}", 404, **context)
        audited(request, user, people.audit_scope("agent", scope, request.query_params, client_address(request),
                                                  agent=agent), 1)
        if fmt == "json":
            return Response(render_mod.json_text(page.as_dict()), media_type="application/json", headers={
                "Content-Disposition": f'attachment; filename="agent-{quote(agent)}-{scope.first:%Y-%m}.json"'})
        style, body = reports.split_page(agent_page.html(page))
        month = f"{scope.first:%Y-%m}"
        calls_link = "/calls?" + urlencode({"site": site, "agent": agent, "from": scope.first.isoformat(),
                                            "to": scope.last.isoformat()})
        return render(request, "agent.html", report_style=style, report_body=body, calls_link=calls_link,
                      json_link="?" + urlencode({"site": site, "month": month, "format": "json"}),
                      **{**context, "month": month})

    async def calls_view(request: Request) -> Response:
        user = login_required(request)
        site = people_site(request, user, "calls")
        tz, known = zone_of(site)
        today = datetime.now(ZoneInfo(tz)).date()
        fmt = request.query_params.get("format") or "html"
        context = {"site": site, "q": None}
        try:
            q = people.parse_calls(request.query_params, site, today,
                                   user.agent_id if user.role == "agent" else None)
            context["q"] = q
            scope = people.calls_scope(q, tz, known)
        except ReportError as exc:
            return bad_people_input(request, fmt, "calls.html", str(exc), **context)
        try:
            if q.agent is not None:
                await run_in_threadpool(check_agent, request, user, "calls", q.agent, scope)
            elif not guard.may_list_seat_calls(user, site):
                refuse_people(request, user, "calls",
                              f"{guard.article(user.role)} {user.role} account may not list a seat's calls")
            rep = await run_in_threadpool(calls_mod.calls, s.db, scope, q.agent, q.outcomes)
        except ReportError as exc:
            return bad_people_input(request, fmt, "calls.html", str(exc), **context)
        except InfluxError as exc:
            log.warning("calls for site %s: InfluxDB: %s", site, str(exc).splitlines()[0])
            return bad_people_input(request, fmt, "calls.html", f"InfluxDB could not answer: "
                                    f"{str(exc).splitlines()[0]}", 502, **context)
        audited(request, user, people.audit_scope("calls", scope, request.query_params, client_address(request),
                                                  agent=q.agent, seats=list(q.seats), outcome=list(q.outcomes)),
                rep.agents_named())
        if fmt != "html":
            if rep.empty:
                return Response(f"no calls in {scope.describe()}\n", 404, media_type="text/plain; charset=utf-8")
            who = f"agent-{q.agent}" if q.agent else "seat-" + "-".join(q.seats)
            name = quote(f"calls-{site}-{who}-{scope.first}" + (f"-to-{scope.last}" if scope.last != scope.first
                                                                  else ""))
            text = calls_mod.csv_text(rep) if fmt == "csv" else render_mod.json_text(rep.as_dict())
            return Response(text, media_type=reports.MEDIA[fmt],
                            headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})
        zone = scope.zone
        rows = [dict(c.as_dict(zone), time=calls_mod.local_iso(c.time_ms, zone).replace("T", " "),
                     limit=calls_mod.limit_text(c), apology=calls_mod.yes_no(c.apology_prompted),
                     answer_s="-" if c.answer_ms is None else f"{c.answer_ms / 1000:.1f}") for c in rep.calls]
        downloads = {f: "?" + urlencode(q.query(format=f)) for f in ("csv", "json")}
        return render(request, "calls.html", rows=rows, counts=rep.counts(), describe=scope.describe(),
                      zone_note=scope.zone_note(), downloads=downloads, **context)

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

    async def audit_unavailable(request: Request, exc: AuditUnavailable) -> Response:
        text = ("This view names agents and is shown only when it is written to the audit log, which cannot be "
                "written now; tell the administrator.")
        if request.query_params.get("format") in ("csv", "json"):
            return Response(f"{text}\n", 503, media_type="text/plain; charset=utf-8")
        return render(request, "error.html", 503, code=503, detail=text)

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
        Route("/agents/{agent}", agent_view),
        Route("/calls", calls_view),
        Route("/fleet", fleet),
        Route("/favicon.ico", no_icon),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={LoginNeeded: login_needed, HTTPException: http_error,
                                                          AuditUnavailable: audit_unavailable})
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
