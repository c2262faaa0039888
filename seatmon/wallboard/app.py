"""The board process: MQTT feed -> Floor (under a lock) -> page updates to
every connected browser, plus the stored-calls loader. Thin on purpose: the
deciding happens in floor.py.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

from collector.influx import InfluxError, InfluxV1
from collector.watch import Reporter, tcp_error
from seatmon.wallboard.floor import Floor
from seatmon.wallboard.history import load_shift_calls
from seatmon.wallboard.live import LiveFeed
from shared import protocol

log = logging.getLogger("seatmon.board")

CLIENT_QUEUE = 64  # updates a slow browser may lag behind before it is dropped (it reconnects)
HISTORY_RETRY_S = 10.0
UNREACHABLE_S = 10.0  # warn once a server has been unreachable this long...
WARN_EVERY_S = 60.0  # ...and again this often while it lasts


class ClientQueue(queue.Queue):
    """Updates waiting for one page; `dropped` once it fell too far behind.
    `wake`, when set, is called after each update is queued (on the board's
    thread): an asyncio reader sets it instead of polling the queue."""

    dropped = False
    wake = None

    def _put(self, item) -> None:
        super()._put(item)
        if self.wake is not None:
            self.wake()


def now_ms() -> int:
    return int(time.time() * 1000)


class Board:
    def __init__(self, cfg, clock=now_ms):
        self.cfg = cfg
        self.clock = clock
        self.floor = Floor(notice_ms=cfg.notice_ms, limit_ms=cfg.limit_ms, layout=cfg.layout,
                           sites=cfg.sites or None)
        self.lock = threading.Lock()
        self.clients: set[queue.Queue] = set()
        self.db = None
        if cfg.influx_url:
            self.db = InfluxV1(cfg.influx_url, cfg.influx_database, username=cfg.influx_username,
                               password=cfg.influx_password, token=cfg.influx_token, timeout=60)
        self._history_wanted = threading.Event()
        self._history_done: str | None = None  # shift label loaded since the last (re)connect
        self._stop = threading.Event()
        self.influx_down_since: float | None = None
        self.influx_error = ""
        self._reporter = Reporter(WARN_EVERY_S)
        self.feed = LiveFeed(cfg, self)
        self.threads: list[threading.Thread] = []

    # ---- sink for LiveFeed (called on the MQTT thread) ---------------------

    def message(self, site, unit, channel, msg, retained) -> None:
        now = self.clock()
        with self.lock:
            f = self.floor
            if channel == protocol.LIVE:
                f.on_live(site, unit, msg, now, retained)
            elif channel == protocol.STATUS:
                f.on_status(site, unit, msg, now, retained)
            elif channel == protocol.HEARTBEAT:
                f.on_heartbeat(site, unit, msg, now)
            elif channel == protocol.EVENT:
                f.on_event(site, unit, msg, now)
            if f.current_shift and f.current_shift != self._history_done:
                self._history_wanted.set()

    def connection(self, connected: bool) -> None:
        with self.lock:
            self.floor.set_connected(connected, self.clock())
            if connected:
                # Calls stored while we were away: merge them again (de-duplicated).
                self._history_done = None
                self._history_wanted.set()

    # ---- page clients -------------------------------------------------------

    def subscribe(self) -> tuple[ClientQueue, bytes]:
        q = ClientQueue(CLIENT_QUEUE)
        with self.lock:
            snap = self.floor.snapshot(self.clock())
            self.clients.add(q)
        return q, _json(snap)

    def unsubscribe(self, q: queue.Queue) -> None:
        with self.lock:
            self.clients.discard(q)

    def state(self) -> bytes:
        with self.lock:
            return _json(self.floor.snapshot(self.clock()))

    def tick(self) -> None:
        """Send what changed since the last tick to every page."""
        with self.lock:
            changes = self.floor.changes(self.clock())
            if changes is None:
                return
            data = _json(changes)
            for q in list(self.clients):
                try:
                    q.put_nowait(data)
                except queue.Full:
                    self.clients.discard(q)
                    q.dropped = True  # its handler closes the stream; the page reconnects

    # ---- threads ------------------------------------------------------------

    def _ticker(self) -> None:
        period = self.cfg.update_ms / 1000
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:
                log.exception("page update failed")

    def _history(self) -> None:
        while not self._stop.is_set():
            if not self._history_wanted.wait(1.0):
                continue
            self._history_wanted.clear()
            with self.lock:
                shift = self.floor.current_shift
                if self.db is None or shift is None or shift == self._history_done:
                    continue
                self.floor.history = "loading"
            try:
                rows = load_shift_calls(self.db, shift, self.cfg.sites)
            except InfluxError as exc:
                if self.influx_down_since is None:
                    self.influx_down_since = time.monotonic()
                    log.warning("could not load stored calls of shift %s: %s; retrying", shift, exc)
                self.influx_error = str(exc)
                with self.lock:
                    self.floor.history = "failed"
                if not self._stop.wait(HISTORY_RETRY_S):
                    self._history_wanted.set()
                continue
            self.influx_down_since = None
            with self.lock:
                added = self.floor.on_history(shift, rows)
                self.floor.history = "ok"
                self._history_done = shift
            log.info("shift %s: %d stored calls, %d not yet seen live", shift, len(rows), added)

    def problems(self, now: float) -> dict[str, str]:
        """What keeps the board from showing the truth, by name."""
        out = {}
        cfg, down = self.cfg, self.feed.down_since
        if down is not None and now - down >= UNREACHABLE_S:
            out["broker"] = (f"broker {cfg.mqtt_host}:{cfg.mqtt_port} unreachable for {now - down:.0f} s"
                             + (f": refused: {self.feed.refused}" if self.feed.refused else ""))
        if self.influx_down_since is not None and now - self.influx_down_since >= UNREACHABLE_S:
            out["influx"] = f"InfluxDB {cfg.influx_url} unreachable for {now - self.influx_down_since:.0f} s: " \
                            f"{self.influx_error}"
        return out

    def _watch(self) -> None:
        """Warn while a server is away: when it starts, every WARN_EVERY_S, and when it ends."""
        while not self._stop.wait(1.0):
            for level, name, text in self._reporter.step(time.monotonic(), self.problems(time.monotonic())):
                if name == "broker" and level == "warning" and not self.feed.refused:
                    text += ": " + tcp_error(self.cfg.mqtt_host, self.cfg.mqtt_port)
                getattr(log, level)(text)

    def start(self) -> None:
        for target in (self._ticker, self._history, self._watch):
            t = threading.Thread(target=target, daemon=True, name="board-" + target.__name__.strip("_"))
            t.start()
            self.threads.append(t)
        self.feed.start()

    def stop(self) -> None:
        self._stop.set()
        self.feed.stop()
        with self.lock:
            for q in self.clients:
                q.dropped = True
            self.clients.clear()
        for t in self.threads:
            t.join(5)


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
