"""HTTP for the board (stdlib http.server, one thread per request): the page,
its update stream (server-sent events), the state as JSON and a health
check. Read-only: only GET and HEAD; optional HTTP basic auth.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import queue
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

log = logging.getLogger("seatmon.board")

KEEPALIVE_S = 10.0  # a comment line this often keeps proxies and idle sockets open


def page_html(title: str, nonce: str | None = None) -> bytes:
    """The board page; with `nonce`, its script carries it (for a CSP without 'unsafe-inline' scripts)."""
    text = resources.files("seatmon.wallboard").joinpath("static/board.html").read_text()
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    if nonce is not None:
        text = text.replace("<script>", f'<script nonce="{nonce}">')
    return text.replace("{{title}}", safe).encode()


class BoardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, board, auth: tuple[str, str] | None = None):
        super().__init__(address, Handler)
        self.board = board
        self.page = page_html(board.cfg.title)
        self.auth = None
        if auth:
            self.auth = b"Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode())


class Handler(BaseHTTPRequestHandler):
    server: BoardServer
    protocol_version = "HTTP/1.1"
    server_version = "seatmon-board"

    def log_message(self, fmt, *args):  # quiet: one line per request is noise on a wallboard
        log.debug("%s %s", self.address_string(), fmt % args)

    def _authorised(self) -> bool:
        expected = self.server.auth
        if expected is None:
            return True
        given = (self.headers.get("Authorization") or "").encode()
        if hmac.compare_digest(given, expected):
            return True
        self._send(401, b"authentication required\n", "text/plain; charset=utf-8",
                   {"WWW-Authenticate": 'Basic realm="seatmon board", charset="UTF-8"'})
        return False

    def _send(self, status: int, body: bytes, ctype: str, headers=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        if not self._authorised():
            return
        path = self.path.split("?", 1)[0]
        board = self.server.board
        if path == "/":
            self._send(200, self.server.page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                                   "script-src 'unsafe-inline'"}, head)
        elif path == "/state":
            self._send(200, board.state(), "application/json", head=head)
        elif path == "/healthz":
            with board.lock:
                health = {"mqtt": "connected" if board.floor.connected else "disconnected",
                          "seats": len(board.floor.seats), "clients": len(board.clients),
                          "bad_messages": board.feed.bad, "history": board.floor.history}
            self._send(200 if board.floor.connected else 503, json.dumps(health).encode(), "application/json",
                       head=head)
        elif path == "/events" and not head:
            self._events()
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", head=head)

    def _refuse(self):
        self._send(405, b"the board is read-only\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _events(self):
        board = self.server.board
        q, snapshot = board.subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            # retry: the page reconnects after 1 s if this stream breaks (board restart).
            self.wfile.write(b"retry: 1000\nevent: snapshot\ndata: " + snapshot + b"\n\n")
            self.wfile.flush()
            while not q.dropped:
                try:
                    data = q.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                else:
                    self.wfile.write(b"event: patch\ndata: " + data + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            board.unsubscribe(q)
