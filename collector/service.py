"""The collector service: MQTT -> validation -> durable spool -> InfluxDB.

Threads, each with one job:
- paho's network thread only queues what arrives (no slow work there);
- the ingest thread validates a batch, commits it to the spool in one fsync'd
  transaction, then acknowledges the batch's messages to the broker in arrival
  order (manual ack) and publishes the units' end-to-end `ack` marks;
- the writer thread drains the spool to InfluxDB in batches, with capped
  exponential backoff while InfluxDB is away; removing stored lines from the
  spool marks their roll-up keys dirty in the same transaction;
- the roll-up thread refreshes the dirty keys' roll-ups (collector.rollstore)
  at most every `rollup.interval_s`, each key twice (again `rollup.settle_s`
  later, for collectors that share a subscription; docs/schema.md);
- the health server answers on loopback.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.config import Config
from collector.influx import InfluxError, make_writer
from collector import rollup as ru
from collector.ingest import BatchResult, Ingestor, Limits, peer_message, quarantine_row, storable
from collector.reclock import DELETE, Reclock
from collector.rollstore import refresh_changed
from collector.spool import Spool, WritesInFlight
from collector.watch import Reporter, Snapshot, Thresholds, problems, tcp_error
from shared import protocol as p

log = logging.getLogger("seatmon.collector")


def now_ms() -> int:
    return int(time.time() * 1000)


def transient(exc: BaseException) -> bool:
    """A spool error that can pass (database locked, disk full, I/O error):
    retry the same batch. Anything else is the batch's own fault."""
    return isinstance(exc, (sqlite3.OperationalError, OSError))


def peer_topic(prefix: str, group: str) -> str:
    """Where the collectors of one shared-subscription group tell each other
    which seqs they stored, so every ack mark stays contiguous."""
    return f"{prefix}/collector/{group}/stored"


class _Client(mqtt.Client):
    """paho's network loop reads one packet per select() call (loop_read
    ignores its max_packets), which costs more than our whole validation at
    thousands of messages a second. Read what the socket already holds, up to
    READ_BURST packets, per wake-up. Same private calls as paho 2.x's own."""

    READ_BURST = 512

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        for _ in range(self.READ_BURST):
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


class Stats:
    def __init__(self):
        self.received = 0
        self.acked = 0
        self.events = 0
        self.written = 0
        self.duplicates = 0
        self.quarantined = 0
        self.lost = 0
        self.acks_published = 0
        self.write_errors = 0
        self.write_rejected = 0
        self.last_write_lag_ms: int | None = None
        self.rollup_refreshes = 0  # keys refreshed (a key counts once per pass)
        self.rollup_errors = 0
        self.connected = False
        self.isolated = 0  # messages quarantined because the spool could not store them


class Reachability:
    """Since when a server has been unreachable, and why (monotonic seconds)."""

    def __init__(self, down_since: float | None = None):
        self.down_since = down_since
        self.error = ""

    def up(self) -> None:
        self.down_since = None
        self.error = ""

    def down(self, error: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.error = error


class Collector:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.stats = Stats()
        self.spool = Spool(cfg.spool.path, commit_delay_s=cfg.spool.test_commit_delay_s)
        self.ingestor = Ingestor(self.spool.load_units(), Limits(
            max_future_ms=cfg.validation.max_future_s * 1000,
            max_past_ms=cfg.validation.max_past_s * 1000,
            max_payload=cfg.validation.max_payload), prefix=cfg.mqtt.prefix,
            reclock=Reclock(self.spool.load_clocks()))
        self.influx = make_writer(cfg)
        self.in_flight = WritesInFlight()  # the writer's keys, which refreshes must not read yet
        self.inbox: queue.Queue = queue.Queue()
        self.subscribed = threading.Event()  # SUBACK received since the last connect
        self._stop = threading.Event()
        self._ingest_done = threading.Event()
        self._wake_writer = threading.Event()  # new lines, or a flush when stopping
        self._writer_halt = threading.Event()  # the only thing that cuts a backoff short
        self._rollup_stop = threading.Event()
        self._ack_sent: dict[str, tuple[float, int]] = {}  # unit -> (monotonic time, seq)
        self._ack_pending: set[str] = set()
        self._spool_warned = False
        # What /health's `ok` is decided from (collector.watch).
        started = time.monotonic()
        self.broker_state = Reachability(started)  # down until the first CONNACK
        self.influx_state = Reachability()
        self.spool_state = Reachability()
        self.rollup_state = Reachability()
        self._last_progress = started
        self._reporter = Reporter(cfg.health.warn_every_s)
        self._threads: list[threading.Thread] = []
        self.health_server: ThreadingHTTPServer | None = None
        self.client = self._make_client()

    # ---- MQTT -----------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        client = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=m.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if m.username:
            client.username_pw_set(m.username, m.password or None)
        if m.tls:
            client.tls_set(ca_certs=m.ca_file or None, certfile=m.cert_file or None,
                           keyfile=m.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.2, 5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _subscriptions(self) -> list[tuple[str, SubscribeOptions]]:
        m = self.cfg.mqtt
        share = f"$share/{m.shared_group}/" if m.shared_group else ""
        qos1 = SubscribeOptions(qos=1)
        subs = [(share + p.subscription(ch, m.prefix, m.site), qos1) for ch in (p.EVENT, p.STATUS, p.HEARTBEAT)]
        # Our own and our peers' retained ack marks seed the trackers (never shared).
        subs.append((p.subscription(p.ACK, m.prefix, m.site), SubscribeOptions(qos=1, noLocal=True)))
        if m.shared_group:
            subs.append((peer_topic(m.prefix, m.shared_group), SubscribeOptions(qos=1, noLocal=True)))
        return subs

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused connection", extra={"reason": str(reason_code)})
            self.broker_state.down(f"refused: {reason_code}")
            return
        self.stats.connected = True
        self.broker_state.up()
        self.subscribed.clear()
        log.info("connected to broker", extra={"session_present": flags.session_present})
        client.subscribe(self._subscriptions())
        self._ack_pending.update(self.ingestor.units)  # re-announce every mark after a reconnect

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:  # e.g. an ACL that does not let this account read a channel
            log.error("broker refused subscriptions", extra={"refused": refused})
            self.broker_state.down("subscriptions refused: " + ", ".join(refused))
        else:
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.stats.connected = False
        self.broker_state.down(f"disconnected: {reason_code}")
        if not self._stop.is_set():
            log.warning("disconnected from broker; reconnecting", extra={"reason": str(reason_code)})

    _closing = False

    def _on_message(self, client, userdata, msg):
        # Network thread: queue and return. The ack comes from the ingest thread.
        if self._closing:
            return
        self.stats.received += 1
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # the ingest thread quarantines it by its topic
            topic = storable(msg._topic.decode("utf-8", "backslashreplace"))
        self.inbox.put((msg.mid, msg.qos, topic, msg.payload, now_ms()))

    # ---- lifecycle ---------------------------------------------------------------

    def start(self) -> "Collector":
        if self.cfg.health.port >= 0:  # first: a taken port stops the start before anything runs
            self.health_server = _health_server(self)
        m = self.cfg.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = m.receive_maximum
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s, clean_start=False, properties=props)
        self.client.loop_start()
        loops = [(self._ingest_loop, "ingest"), (self._writer_loop, "writer"), (self._watch_loop, "watch")]
        if self.cfg.rollup.enabled:
            loops.append((self._rollup_loop, "rollup"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.health_server is not None:
            threading.Thread(target=self.health_server.serve_forever, name="health", daemon=True).start()
            log.info("health endpoint up", extra={"url": self.health_url})
        return self

    @property
    def health_url(self) -> str | None:
        if self.health_server is None:
            return None
        host, port = self.health_server.server_address[:2]
        return f"http://{host}:{port}/health"

    def stop(self, flush_timeout: float = 30.0) -> None:
        """Clean shutdown: store and acknowledge what arrived, stop MQTT, then
        give the writer up to `flush_timeout` s to empty the spool."""
        log.info("stopping: flushing")
        # From here on, arriving messages are neither queued nor acknowledged:
        # the broker keeps them in our persistent session and redelivers them
        # after the restart (no unsubscribe, which would end the queueing).
        self._closing = True
        self._stop.set()
        self._ingest_done.wait(30)
        self._publish_acks(force=True)
        self.client.disconnect()
        self.client.loop_stop()
        deadline = time.monotonic() + flush_timeout
        while self.spool.depth and time.monotonic() < deadline and self._threads[1].is_alive():
            self._wake_writer.set()
            time.sleep(0.05)
        self._writer_stop = True
        self._writer_halt.set()
        self._wake_writer.set()
        self._threads[1].join(10)
        self._rollup_stop.set()  # after the writer: its last batch's keys get their first pass
        for thread in self._threads:
            thread.join(10)
        if self.health_server:
            self.health_server.shutdown()
        self.spool.close()
        log.info("stopped", extra={"spool_depth": self.spool.depth, "written": self.stats.written})

    _writer_stop = False

    # ---- ingest ------------------------------------------------------------------------

    def _ingest_loop(self) -> None:
        limit = self.cfg.spool.commit_max_messages
        while True:
            try:
                first = self.inbox.get(timeout=0.1)
            except queue.Empty:
                self._last_progress = time.monotonic()
                if self._stop.is_set():
                    break
                self._publish_acks()
                continue
            batch = [first]
            while len(batch) < limit:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self._ingest(batch)
            except Exception:
                # Only when stopping while the spool is failing, or on a bug:
                # the batch stays unacknowledged (the broker redelivers it
                # after the next reconnect), and the marks go back to what the
                # spool holds, so a redelivery is not taken for a duplicate.
                log.exception("ingest failed; batch left unacknowledged")
                self._reload_units()
                if not self._stop.is_set():
                    time.sleep(1)
        self._ingest_done.set()

    def _reload_units(self) -> None:
        self.ingestor.replace_units(self.spool.load_units())
        self.ingestor.reclock.clocks = self.spool.load_clocks()

    def _decide(self, batch: list) -> BatchResult:
        peer = self._peer_topic()
        unit_msgs = [(topic, payload, received) for _, _, topic, payload, received in batch if topic != peer]
        result = self.ingestor.batch(unit_msgs)
        for _, _, topic, payload, received in batch:
            if topic == peer:
                try:
                    extra = self.ingestor.peer_stored(payload, received)
                except Exception as exc:
                    log.warning("bad peer message ignored", extra={"error": repr(exc)})
                    continue
                result.changed.update(extra.changed)
                result.ack_due |= extra.ack_due
                result.lines += extra.lines
                result.clock_ops += extra.clock_ops
        return result

    def _peer_topic(self) -> str | None:
        m = self.cfg.mqtt
        return peer_topic(m.prefix, m.shared_group) if m.shared_group else None

    def _commit(self, result: BatchResult) -> None:
        """Store one result durably. Errors that can pass are retried here
        (and health says so) until they pass or the collector stops; any
        other error is raised to the caller."""
        while True:
            try:
                self.spool.commit(result.lines, result.quarantined, list(result.changed.values()), result.clock_ops)
                self.spool_state.up()
                return
            except Exception as exc:
                if not transient(exc) or self._stop.is_set():
                    raise
                if self.spool_state.down_since is None:
                    log.error("spool commit failed; retrying", extra={"error": repr(exc)})
                self.spool_state.down(repr(exc))
                time.sleep(1)

    def _isolate(self, batch: list) -> BatchResult:
        """The spool refused a batch for a reason a retry cannot cure: store
        it message by message, and quarantine the message that cannot be
        stored with the error as its reason. Nothing stalls behind it."""
        total = BatchResult()
        for item in batch:
            one = self._decide([item])
            try:
                self._commit(one)
            except Exception as exc:
                if transient(exc):
                    raise
                self._reload_units()  # the refused message changed no mark
                _, _, topic, payload, received = item
                one = BatchResult(quarantined=[quarantine_row(received, topic, payload,
                                                              f"could not be stored: {exc!r}")])
                self._commit(one)
                self.stats.isolated += 1
            total.merge(one)
        return total

    def _ingest(self, batch: list) -> None:
        result = self._decide(batch)
        self._wait_for_room()
        try:
            self._commit(result)
        except Exception as exc:
            if transient(exc):
                raise
            log.error("spool refused a batch; storing it message by message",
                      extra={"error": storable(repr(exc)), "messages": len(batch)})
            self._reload_units()
            result = self._isolate(batch)
        # Durable now: acknowledge in arrival order.
        for mid, qos, *_ in batch:
            if qos > 0:
                self.client.ack(mid, qos)
        self._last_progress = time.monotonic()
        s = self.stats
        s.acked += len(batch)
        s.events += result.events
        s.duplicates += result.duplicates
        s.quarantined += len(result.quarantined)
        s.lost += result.lost
        for received, topic, _, reason in result.quarantined[:5]:
            log.warning("quarantined", extra={"topic": topic, "reason": reason})
        if result.lines:
            self._wake_writer.set()
        peer = self._peer_topic()
        told = peer_message(self.cfg.mqtt.client_id, result) if peer else None
        if told:
            self.client.publish(peer, json.dumps(told), qos=1)
        self._ack_pending |= result.ack_due
        self._publish_acks()

    def _wait_for_room(self) -> None:
        """The spool is bounded: when full, stop acknowledging (the broker and
        the units keep the messages) until the writer makes room."""
        cfg = self.cfg.spool
        depth = self.spool.depth
        if depth >= cfg.warn_fraction * cfg.max_rows and not self._spool_warned:
            self._spool_warned = True
            log.warning("spool nearly full", extra={"depth": depth, "max_rows": cfg.max_rows})
        elif depth < cfg.warn_fraction * cfg.max_rows * 0.9:
            self._spool_warned = False
        if self.spool.depth >= cfg.max_rows:
            log.error("spool full: holding acknowledgements until InfluxDB drains it",
                      extra={"depth": self.spool.depth})
        while self.spool.depth >= cfg.max_rows and not self._writer_stop:
            time.sleep(1)

    def _publish_acks(self, force: bool = False) -> None:
        if not self._ack_pending or not self.stats.connected:
            return
        interval = self.cfg.ack.interval_s
        now = time.monotonic()
        done = []
        for key in list(self._ack_pending):
            state = self.ingestor.units.get(key)
            if state is None or not self.ingestor.is_current(state):
                done.append(key)  # an older incarnation: the unit's ack topic is the current one's
                continue
            sent_at, sent_seq = self._ack_sent.get(key, (0.0, -1))
            if not force and now - sent_at < interval:
                continue  # coalesce: at most one ack per unit per interval
            ack = {"v": p.VERSION, "unit": state.unit, "seq": state.mark, "ts": now_ms()}
            if state.inc:
                ack["inc"] = state.inc
            payload = p.encode(p.ACK, ack)
            self.client.publish(p.topic(state.site, state.unit, p.ACK, self.cfg.mqtt.prefix), payload,
                                qos=1, retain=True)
            self._ack_sent[key] = (now, state.mark)
            self.stats.acks_published += 1
            done.append(key)
        self._ack_pending.difference_update(done)

    # ---- writer -----------------------------------------------------------------------------

    IDLE_PING_S = 10.0  # while nothing is to be written, check InfluxDB this often

    def _writer_loop(self) -> None:
        cfg = self.cfg.influx
        backoff = cfg.retry_initial_s
        last_ping = 0.0
        while not self._writer_stop:
            try:
                rows = self.spool.read_batch(cfg.batch_lines)
                if not rows:
                    if time.monotonic() - last_ping >= self.IDLE_PING_S:
                        last_ping = time.monotonic()
                        self.influx.ping()
                        self.influx_state.up()
                    self._wake_writer.wait(0.5)
                    self._wake_writer.clear()
                    continue
                self.in_flight.begin({r[3] for r in rows if r[3] is not None})
                self._write(rows)
            except InfluxError as exc:
                self.stats.write_errors += 1
                if self.influx_state.down_since is None:
                    log.warning("InfluxDB write failed; will retry", extra={
                        "influx": self.cfg.influx.url, "error": str(exc), "retry_in_s": backoff,
                        "spool_depth": self.spool.depth})
                self.influx_state.down(str(exc))
                # Not the wake event: ingest sets it for every batch, and a
                # flushing stop every 50 ms, which would make this a spin.
                self._writer_halt.wait(backoff)
                backoff = min(backoff * 2, cfg.retry_max_s)
                continue
            except Exception as exc:  # never let the writer die: the spool keeps the rows
                self.stats.write_errors += 1
                log.exception("writer failed; will retry")
                self.influx_state.down(repr(exc))
                self._writer_halt.wait(backoff)
                backoff = min(backoff * 2, cfg.retry_max_s)
                continue
            backoff = cfg.retry_initial_s
            self.influx_state.up()
            self.spool.delete_through(rows[-1][0], len(rows), mark_dirty=self.cfg.rollup.enabled)
            self.in_flight.end()  # stored, and their keys dirty: a refresh may read them now
            self.stats.written += len(rows)
            self.stats.last_write_lag_ms = now_ms() - rows[-1][2]

    def _write(self, rows: list[tuple[int, str, int]]) -> None:
        """Write rows in order: line protocol in batches, each delete (a
        corrected event's old point, collector/reclock.py) on its own."""
        start = 0
        for i, row in enumerate(rows):
            if row[1].startswith(DELETE):
                if i > start:
                    self._write_lines(rows[start:i])
                self._delete(row)
                start = i + 1
        if start < len(rows):
            self._write_lines(rows[start:])

    def _delete(self, row: tuple[int, str, int]) -> None:
        query = getattr(self.influx, "query", None)
        try:
            if query is None:  # influx.api "v2": no InfluxQL, the old point stays (docs/protocol.md)
                raise InfluxError("the v2 write API cannot run an InfluxQL delete", retryable=False)
            query(row[1], method="POST")
        except InfluxError as exc:
            if exc.retryable:
                raise
            self.spool.quarantine_lines([(row[1], row[2])], f"InfluxDB refused the delete: {exc}")
            self.stats.write_rejected += 1
            self.stats.quarantined += 1

    def _write_lines(self, rows: list[tuple[int, str, int]]) -> None:
        """Write rows; a batch InfluxDB refuses (4xx) is split until the bad
        lines are isolated, and those go to the quarantine with the reason."""
        try:
            self.influx.write_lines([r[1] for r in rows])
        except InfluxError as exc:
            if exc.retryable:
                raise
            if len(rows) == 1:
                self.spool.quarantine_lines([(rows[0][1], rows[0][2])], f"InfluxDB refused the line: {exc}")
                self.stats.write_rejected += 1
                self.stats.quarantined += 1
                return
            half = len(rows) // 2
            self._write_lines(rows[:half])
            self._write_lines(rows[half:])

    # ---- roll-ups ------------------------------------------------------------------------------

    # Refreshes may take at most this share of the time, so that a backlog of
    # keys cannot crowd out ingest (the refresh runs in this process and its
    # queries on the same InfluxDB). A live floor's refresh takes milliseconds
    # and still runs every `rollup.interval_s`. The share is of the refresh's
    # CPU time, which grows with the rows it read and wrote: a refresh that
    # only waited on a stalled server did no work, and its wall time would
    # hold back the next one for 19 times the stall.
    ROLLUP_DUTY = 0.05

    def _rollup_loop(self) -> None:
        cfg = self.cfg.rollup
        wait = cfg.interval_s
        while True:
            stopping = self._rollup_stop.wait(wait)
            if stopping and self.influx_state.down_since is not None:
                break  # the keys wait in the spool for the next start
            try:
                # When stopping: one last pass over everything dirty, due or not.
                worked = self._refresh_due(now_ms() + (10 ** 12 if stopping else 0))
                self.rollup_state.up()
                wait = max(cfg.interval_s, worked * (1 / self.ROLLUP_DUTY - 1))
            except Exception as exc:  # the keys stay dirty in the spool: retried
                self.stats.rollup_errors += 1
                if self.rollup_state.down_since is None:
                    log.warning("roll-up refresh failed; will retry", extra={"error": str(exc)})
                self.rollup_state.down(str(exc))
                wait = min(max(wait * 2, cfg.interval_s), self.cfg.influx.retry_max_s)
            try:
                self._say_pending()
            except Exception as exc:  # said again at the next turn
                log.debug("could not write the pending roll-ups", extra={"error": str(exc)})
            if stopping:
                break

    PENDING_EVERY_S = 1.0  # a changed count of dirty keys is written to InfluxDB at most this often
    _pending_said: tuple | None = None
    _pending_said_at = 0.0

    def _say_pending(self) -> None:
        """Write this collector's dirty keys (count, span) to InfluxDB when
        they changed, so `seatmon report` can say when the roll-ups of its
        range are still pending (at once when they reach or leave zero)."""
        if self.influx_state.down_since is not None:
            return  # said once InfluxDB is back (the writer keeps its backoff meanwhile)
        keys, lo, hi = self.spool.dirty_span()
        state = (keys, lo, hi + ru.INTERVAL_MS if keys else 0)
        said = self._pending_said
        if state == said:
            return
        now = time.monotonic()
        if said is not None and bool(keys) == bool(said[0]) and now - self._pending_said_at < self.PENDING_EVERY_S:
            return
        self.influx.write_lines([ru.pending_line(self.cfg.mqtt.client_id, *state, now_ms())])
        self._pending_said, self._pending_said_at = state, now

    def _refresh_due(self, due_before_ms: int) -> float:
        """Refresh the due dirty keys; returns the CPU seconds it used. Each key
        gets a further pass `settle_s` later after its first pass, after a
        pass that wrote its 15-minute roll-up (it had changed), or after a
        pass slower than `settle_s`; it leaves the spool after a quick pass
        that wrote none (docs/schema.md: the guarantee)."""
        cfg = self.cfg.rollup
        rows = self.spool.dirty_due(due_before_ms, cfg.max_keys)
        if not rows:
            return 0.0
        started, cpu = time.monotonic(), time.thread_time()
        _, changed = refresh_changed(self.influx, {(site, seat, start) for site, seat, start, _, _ in rows},
                                     cfg.tz, self.in_flight)
        took = time.monotonic() - started
        slow = took > cfg.settle_s
        again, finished = [], []
        for site, seat, start, gen, passes in rows:
            key = (site, seat, start)
            (again if passes == 0 or slow or key in changed else finished).append((site, seat, start, gen))
        self.spool.dirty_done(again, finished, now_ms() + int(cfg.settle_s * 1000))
        self.stats.rollup_refreshes += len(rows)
        return time.thread_time() - cpu

    # ---- health -------------------------------------------------------------------------------

    def _rollup_pending(self) -> int:
        """Dirty keys in the spool now (0 once it is closed, when stopped)."""
        try:
            return self.spool.dirty_count()
        except sqlite3.ProgrammingError:
            return 0

    def snapshot(self) -> Snapshot:
        m = self.cfg.mqtt
        return Snapshot(
            now=time.monotonic(), waiting=max(0, self.stats.received - self.stats.acked),
            last_progress=self._last_progress,
            broker=f"{m.host}:{m.port}", broker_down_since=self.broker_state.down_since,
            broker_error=self.broker_state.error,
            influx=self.cfg.influx.url, influx_down_since=self.influx_state.down_since,
            influx_error=self.influx_state.error,
            spool_depth=self.spool.depth, spool_max_rows=self.cfg.spool.max_rows,
            spool_error_since=self.spool_state.down_since, spool_error=self.spool_state.error,
            writer_alive=len(self._threads) > 1 and self._threads[1].is_alive(),
            stopping=self._stop.is_set(),
            rollup_failing_since=self.rollup_state.down_since, rollup_error=self.rollup_state.error,
            rollup_pending=self._rollup_pending())

    def thresholds(self) -> Thresholds:
        h = self.cfg.health
        return Thresholds(stall_s=h.stall_s, unreachable_s=h.unreachable_s)

    def problems(self) -> dict[str, str]:
        return problems(self.snapshot(), self.thresholds())

    def _watch_loop(self) -> None:
        """Say in the log what /health says: each problem when it starts,
        again every warn_every_s while it lasts, and when it ends."""
        while not self._stop.wait(1.0):
            for level, name, text in self._reporter.step(time.monotonic(), self.problems()):
                if name == "broker" and level == "warning":
                    text += self._broker_probe()
                getattr(log, level)(text, extra={"problem": name})

    def _broker_probe(self) -> str:
        if self.broker_state.error:  # the broker said why
            return ""
        return ": " + tcp_error(self.cfg.mqtt.host, self.cfg.mqtt.port)

    def health(self) -> dict:
        s = self.stats
        oldest = self.spool.oldest_ms
        for _ in range(3):
            try:
                units = {u: {"last_seen_ms": st.last_seen_ms, "acked": st.mark, "lost": st.lost}
                         for u, st in list(self.ingestor.units.items())}
                break
            except RuntimeError:
                units = {}
        current = self.problems()
        return {
            "ok": not current,
            "problems": current,
            "connected": s.connected,
            "subscribed": self.subscribed.is_set(),
            "influx_reachable": self.influx_state.down_since is None,
            "isolated": s.isolated,
            "received": s.received,
            "acked": s.acked,
            "events": s.events,
            "written": s.written,
            "duplicates": s.duplicates,
            "quarantined": s.quarantined,
            "lost": s.lost,
            "acks_published": s.acks_published,
            "write_errors": s.write_errors,
            "write_rejected": s.write_rejected,
            "spool_depth": self.spool.depth,
            "spool_max_rows": self.cfg.spool.max_rows,
            "write_lag_ms": (now_ms() - oldest) if oldest is not None else 0,
            "last_write_lag_ms": s.last_write_lag_ms,
            "rollup_pending": self._rollup_pending(),
            "rollup_refreshes": s.rollup_refreshes,
            "rollup_errors": s.rollup_errors,
            "units": units,
        }


def _health_server(collector: Collector) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] == "/health":
                body = json.dumps(collector.health()).encode()
                ctype = "application/json"
            elif self.path.split("?")[0] == "/metrics":
                body = _prometheus(collector.health()).encode()
                ctype = "text/plain; version=0.0.4"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    cfg = collector.cfg.health
    try:
        return ThreadingHTTPServer((cfg.bind, cfg.port), Handler)
    except OSError as exc:
        raise HealthPortError(
            f"cannot serve /health on {cfg.bind}:{cfg.port}: {exc.strerror} (another collector on this host?); "
            f"set health.port ([collector.health] port in the site file, or SEATMON_COLLECT_HEALTH_PORT) "
            f"to a free port, 0 for any free one or -1 for none") from None


class HealthPortError(Exception):
    """The health endpoint cannot listen on its configured address."""


def _prometheus(h: dict) -> str:
    out = []
    for key in ("received", "acked", "events", "written", "duplicates", "quarantined", "lost",
                "acks_published", "write_errors", "write_rejected", "isolated", "spool_depth", "write_lag_ms",
                "rollup_pending", "rollup_refreshes", "rollup_errors"):
        out.append(f"seatmon_collector_{key} {h[key]}")
    out.append(f"seatmon_collector_ok {int(h['ok'])}")
    out.append(f"seatmon_collector_connected {int(h['connected'])}")
    out.append(f"seatmon_collector_influx_reachable {int(h['influx_reachable'])}")
    for name in ("broker", "influx", "stalled", "spool", "spool_full", "writer", "rollup", "stopping"):
        out.append(f'seatmon_collector_problem{{problem="{name}"}} {int(name in h["problems"])}')
    for unit, u in h["units"].items():
        out.append(f'seatmon_collector_unit_last_seen_ms{{unit="{unit}"}} {u["last_seen_ms"]}')
    return "\n".join(out) + "\n"
