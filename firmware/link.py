# The unit's MQTT link: connect with backoff, birth and Last Will, config and
# ack subscriptions, heartbeat, the live channel, and the journal replay.
#
# Delivery (docs/protocol.md): events go out from the journal in seq order,
# QoS1. A PUBACK only frees an in-flight slot; a journal entry is deleted only
# when the collector's retained `ack` covers it. After every (re)connect the
# send cursor goes back to the ack mark, so everything unacknowledged is sent
# again; if the ack stalls below what was sent (a broker may drop queued
# messages after its PUBACK), the cursor goes back again after resend_ms. The
# backlog drains at most drain_per_s events per second; heartbeat and live go
# out on their own tasks, so a long backlog never starves them.
#
# Name lookup: MicroPython's getaddrinfo blocks the whole event loop (and
# asyncio.open_connection calls it on every connect), for seconds when DNS is
# down, which could outlast the watchdog. So the broker's name is looked up
# once and its address kept (BrokerAddress); it is looked up again only after
# REFRESH_AFTER failed connects in a row, with the watchdog fed before and
# after. An IP address in board.json is never looked up.
#
# Reconnecting (ReconnectBackoff): the wait doubles from BACKOFF_MIN_MS up to
# backoff_max_ms while connects fail, and starts again from the bottom after a
# session that lasted SESSION_LASTED_MS. Every wait is drawn at random around
# its step, so a floor of units that lost the broker in the same instant
# (a restart, an access point rebooting) does not come back in the same second.

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore
import random

from firmware.mqtt import MQTTClient, MQTTError
from firmware.ticks import ticks_diff
from shared import protocol
from shared.boardfiles import MQTT_DEFAULTS

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

BACKOFF_MIN_MS = 2000  # first reconnect: 1-3 s after the drop
SESSION_LASTED_MS = 30000  # a session this long was a good one: the backoff starts again
REFRESH_AFTER = 3  # failed connects in a row to a looked-up address before looking the name up again

# Link settings: /board.json's "mqtt" (shared/boardfiles.py), all optional but host.
DEFAULTS = MQTT_DEFAULTS


def is_ip(host):
    """True for an IPv4 or IPv6 address literal (no lookup needed)."""
    if ":" in host:
        return True
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


def resolve(host, port):
    """The first IPv4/IPv6 address of `host` as a string. Blocks (DNS);
    raises OSError when the name does not resolve."""
    import socket
    found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not found:
        raise OSError("no address for " + host)
    best = found[0]
    for ai in found:  # IPv4 first: brokers listen there ("localhost" may list ::1 first)
        if ai[0] == socket.AF_INET:
            best = ai
            break
    sa = best[-1]
    if isinstance(sa, tuple):  # CPython, the ESP32 port: (ip, port)
        return sa[0]
    # The unix port: a raw sockaddr_in (family, port, 4 address bytes)
    return ".".join([str(b) for b in bytes(sa)[4:8]])


class BrokerAddress:
    """Where the link connects: the broker's address, looked up once and
    kept. Pure bookkeeping; the link does the lookups it asks for."""

    def __init__(self, host, refresh_after=REFRESH_AFTER):
        self.host = host
        self.literal = is_ip(host)
        self.ip = host if self.literal else None  # type: Optional[str]
        self.refresh_after = refresh_after
        self.failures = 0  # failed connects in a row to self.ip
        self.lookups = 0

    def needs_lookup(self):
        return not self.literal and (self.ip is None or self.failures >= self.refresh_after)

    def looked_up(self, ip):
        self.lookups += 1
        self.ip = ip
        self.failures = 0

    def lookup_failed(self):
        """DNS is down: keep the address we had (if any) for another round."""
        self.lookups += 1
        self.failures = 0

    def connect_failed(self):
        self.failures += 1

    def connected(self):
        self.failures = 0


class ReconnectBackoff:
    """The waits between connects (pure: the caller passes the random bits
    and how long the last session lasted)."""

    def __init__(self, max_ms):
        self.max_ms = max_ms
        self.step_ms = min(BACKOFF_MIN_MS, max_ms)

    def session_ended(self, lasted_ms):
        """A session ended after `lasted_ms` of real time (None: the connect failed)."""
        if lasted_ms is not None and lasted_ms >= SESSION_LASTED_MS:
            self.step_ms = min(BACKOFF_MIN_MS, self.max_ms)

    def next_ms(self, r16):
        """The wait before the next connect, uniform over [step/2, step*3/2)
        for a random 16-bit `r16`; the step then doubles up to max_ms."""
        step = self.step_ms
        self.step_ms = min(step * 2, self.max_ms)
        return step // 2 + step * r16 // 65536


def pem_to_der(pem):
    """The first certificate of a PEM file, as DER: every MicroPython build's
    mbedTLS takes DER, not every one parses PEM (the unix port's does not)."""
    import binascii
    body = []
    inside = False
    for line in pem.split(b"\n"):
        line = line.strip()
        if line.startswith(b"-----BEGIN CERTIFICATE"):
            inside = True
        elif line.startswith(b"-----END CERTIFICATE"):
            break
        elif inside and line:
            body.append(line)
    if not body:
        raise ValueError("no certificate in the CA file")
    return binascii.a2b_base64(b"".join(body))


def tls_context(ca_path):
    """A client TLS context that verifies the broker against `ca_path` (PEM)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_path:
        ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # not in tls.pyi; MicroPython's ssl has it
        with open(ca_path, "rb") as f:
            ctx.load_verify_locations(cadata=pem_to_der(f.read()))
    else:  # encrypted but unverified: only where the site has no CA yet
        if hasattr(ctx, "check_hostname"):  # CPython refuses CERT_NONE while it is on
            ctx.check_hostname = False  # type: ignore[attr-defined]
        ctx.verify_mode = ssl.CERT_NONE  # type: ignore[attr-defined]
    return ctx


class Link:
    """One unit's MQTT link. `unit` is the shell (it owns the core, journal,
    board and clock); the link calls back unit.apply_remote_config(raw, config_id)."""

    def __init__(self, unit, settings, secrets):
        s = dict(DEFAULTS)  # type: Dict[str, Any]
        s.update(settings or {})
        self.s = s
        self.unit = unit
        self.secrets = secrets or {}
        self.client = None  # type: Optional[MQTTClient]
        self.address = BrokerAddress(s["host"])
        self.resolve = resolve  # the name service (blocking)
        self.connected = False
        self.sent = 0  # highest seq published on this connection
        self.sent_at = 0  # ticks when the cursor last moved, or the ack last advanced
        self.pubacks = 0
        self.sent_again = 0  # times the cursor went back to the ack mark (ack stalled)
        self.connects = 0
        self.connected_at = None  # ticks when the current session connected
        self.random16 = lambda: random.getrandbits(16)  # seeded from the chip's RNG on an ESP32
        self.last_error = None
        self.alive = unit.board.ticks_ms()  # the link loop's last sign of life
        self._live_dirty = True
        self._reported = {}  # payloads that failed to encode, reported this session
        self._wake_send = asyncio.Event()
        self._wake_live = asyncio.Event()

    def topic(self, channel):
        c = self.unit.core.conf
        return protocol.topic(c["site"], c["unit"], channel, self.s["prefix"])

    def live_changed(self):
        self._live_dirty = True
        self._wake_live.set()

    def acked(self):
        """The collector's ack advanced: what was sent is being consumed."""
        self.sent_at = self.unit.board.ticks_ms()

    def events_ready(self):
        self._wake_send.set()

    # ---- connection loop -----------------------------------------------------
    async def run(self):
        backoff = ReconnectBackoff(self.s["backoff_max_ms"])
        board = self.unit.board
        while True:
            self.alive = self.unit.board.ticks_ms()
            if not self.unit.wifi_up():
                await self.unit.board.sleep_ms(500)
                continue
            if self.s["tls"] and not self.unit.clock_plausible():
                # The RTC reads 2000 after power-on and the broker's certificate
                # is checked against it: wait for NTP rather than fail the handshake.
                self.last_error = "waiting for the clock (TLS checks certificate dates)"
                await self.unit.board.sleep_ms(500)
                continue
            self.connected_at = None
            try:
                await self._session()  # ends by raising when the connection is lost
            except (OSError, MQTTError, asyncio.TimeoutError) as exc:
                self.last_error = repr(exc)
            self.connected = False
            lasted = None
            if self.connected_at is not None:  # ticks run `speed` times real time under the simulator
                lasted = ticks_diff(board.ticks_ms(), self.connected_at) // board.speed
            backoff.session_ended(lasted)
            await self._sleep_real(backoff.next_ms(self.random16()))

    async def _sleep_real(self, ms):
        # Network timers run in real time, also under an accelerated simulator.
        await asyncio.sleep(ms / 1000)

    def _broker_ip(self):
        """The broker's address, looked up only when BrokerAddress asks (the
        lookup blocks the loop: the watchdog is fed before and after)."""
        addr = self.address
        if addr.host != self.s["host"]:  # the settings moved the broker: start afresh
            addr = self.address = BrokerAddress(self.s["host"])
        if addr.needs_lookup():
            board = self.unit.board
            board.wdt_feed()
            try:
                ip = self.resolve(addr.host, self.s["port"])
            except (OSError, IndexError, ValueError) as exc:
                addr.lookup_failed()
                if addr.ip is None:
                    raise OSError("cannot look up " + addr.host + ": " + repr(exc))
            else:
                addr.looked_up(ip)
            finally:
                board.wdt_feed()
                self.alive = board.ticks_ms()
        return addr.ip

    def _make_client(self, ip):
        c = self.unit.core.conf
        will = (self.topic(protocol.STATUS),
                protocol.encode(protocol.STATUS, {"v": 1, "site": c["site"], "unit": c["unit"], "state": "offline"}),
                1, True)
        ssl = tls_context(self.s["ca"]) if self.s["tls"] else None
        return MQTTClient("seatmon-" + c["site"] + "-" + c["unit"], ip, self.s["port"],
                          user=self.secrets.get("mqtt_user"), password=self.secrets.get("mqtt_password"),
                          keepalive=self.s["keepalive"], will=will, ssl=ssl,
                          max_inflight=self.s["max_inflight"], timeout_ms=self.s["timeout_ms"],
                          server_hostname=self.s["host"])

    async def _session(self):
        client = self._make_client(self._broker_ip())
        client.on_message = self._on_message
        client.on_puback = self._on_puback
        self.client = client
        try:
            await client.connect(clean=True)
        except Exception:
            self.address.connect_failed()
            raise
        self.address.connected()
        self.connects += 1
        self.connected = True
        self.connected_at = self.unit.board.ticks_ms()
        self._reported = {}
        try:
            await client.publish(self.topic(protocol.STATUS), self.unit.birth_payload(), qos=1, retain=True)
            await client.subscribe([(self.topic(protocol.CONFIG), 1), (self.topic(protocol.ACK), 1),
                                    (self.topic(protocol.UPDATE), 1)])
            # Everything above the ack mark is sent again on every connection.
            self.sent = self.unit.journal.ack_mark
            self.sent_at = self.unit.board.ticks_ms()
            self._live_dirty = True
            tasks = [asyncio.create_task(self._quietly(self._sender())),
                     asyncio.create_task(self._quietly(self._heartbeat())),
                     asyncio.create_task(self._quietly(self._live())),
                     asyncio.create_task(self._quietly(self.unit.updater.answers(client, self.topic(protocol.UPDATE_ACK)))),
                     asyncio.create_task(self._watch_wifi())]
            try:
                await client.wait_closed()
            finally:
                for t in tasks:
                    t.cancel()
        finally:
            self.connected = False
            if client.connected:
                await client.abort("session ended")
        raise MQTTError("connection lost: " + str(client.error))

    async def _watch_wifi(self):
        # Wi-Fi gone: the socket is dead even if no error surfaced yet; drop
        # the session now rather than after the keepalive runs out.
        client = self.client
        assert client is not None  # the session sets it before starting this task
        while client.connected:
            if not self.unit.wifi_up():
                await client.abort("wifi lost")
                return
            await asyncio.sleep(0.5)

    async def _quietly(self, coro):
        # A publish on a dying connection raises; the session loop notices the
        # closed client and reconnects, so the error needs no second report.
        # Anything else (also an OSError while the connection is up: the flash)
        # is a defect: reported, and the session restarts rather than running
        # on without this task.
        try:
            await coro
        except (MQTTError, OSError) as exc:
            self.last_error = repr(exc)
            if self.client is not None and self.client.connected:
                self.unit.report_fault("link_task", repr(exc))
                await self.client.abort("task failed")
        except Exception as exc:
            self.last_error = repr(exc)
            self.unit.report_fault("link_task", repr(exc))
            if self.client is not None and self.client.connected:
                await self.client.abort("task failed")

    async def close(self, clean=True):
        """Clean close (the broker discards the Will) or abort (the Will fires)."""
        if self.client is not None:
            if clean:
                await self.client.disconnect()
            else:
                await self.client.abort("closed")

    # ---- incoming --------------------------------------------------------------
    def _on_puback(self, pid):
        self.pubacks += 1  # only frees the slot: deletion waits for the collector's ack

    def _on_message(self, topic, payload, retained):
        try:
            if topic == self.topic(protocol.UPDATE):
                self.unit.updater.on_message(payload)
            elif topic == self.topic(protocol.ACK):
                msg = protocol.decode(protocol.ACK, payload)
                if msg["unit"] == self.unit.core.conf["unit"]:
                    self.unit.on_ack(msg["seq"], protocol.incarnation(msg))
            elif topic == self.topic(protocol.CONFIG):
                msg = protocol.decode(protocol.CONFIG, payload)
                self.unit.apply_remote_config(msg["config"], msg.get("id"))
        except protocol.ProtocolError as exc:
            # A bad message is reported, never fatal.
            self.unit.report_fault("bad_message", topic.split("/")[-1] + ": " + str(exc))
        except Exception as exc:
            self.unit.report_fault("bad_message", topic.split("/")[-1] + ": " + repr(exc))

    # ---- outgoing ----------------------------------------------------------------
    async def _sender(self):
        j = self.unit.journal
        board = self.unit.board
        topic = self.topic(protocol.EVENT)
        client = self.client
        assert client is not None  # the session sets it before starting this task
        gap_ms = 1000 // self.s["drain_per_s"] if self.s["drain_per_s"] else 0
        while client.connected:
            self.alive = board.ticks_ms()
            if self.sent < j.ack_mark:
                self.sent = j.ack_mark
            if j.synced_seq > self.sent:
                batch = j.entries(self.sent, 8)
                for seq, payload in batch:
                    await client.publish(topic, payload, qos=1)
                    self.sent = seq
                    self.sent_at = board.ticks_ms()
                    if j.synced_seq > seq and gap_ms:
                        await asyncio.sleep(gap_ms / 1000)  # bounded drain rate (real time)
                continue
            if j.next_seq - 1 > j.synced_seq:
                self.unit.sync_journal()  # send promptly: sync now rather than at the next batch
                continue
            if self.sent > j.ack_mark and ticks_diff(board.ticks_ms(), self.sent_at) > self.s["resend_ms"] * board.speed:
                # Sent, but the ack has stalled below it for resend_ms: a broker
                # may have dropped some (after its PUBACK). Send from the mark again.
                self.sent = j.ack_mark
                self.sent_at = board.ticks_ms()
                self.sent_again += 1
                continue
            self._wake_send.clear()
            try:
                await asyncio.wait_for(self._wake_send.wait(), 1)
            except asyncio.TimeoutError:
                pass

    def _payload(self, build, what):
        # One payload that does not encode is reported once per session and
        # skipped; the channel goes on with the next one.
        try:
            return build()
        except protocol.ProtocolError as exc:
            if what not in self._reported:
                self._reported[what] = True
                self.unit.report_fault("payload_invalid", what + ": " + str(exc))
            return None

    async def _heartbeat(self):
        client = self.client
        assert client is not None  # the session sets it before starting this task
        while client.connected:
            self.alive = self.unit.board.ticks_ms()
            payload = self._payload(self.unit.heartbeat_payload, protocol.HEARTBEAT)
            if payload is not None:
                await client.publish(self.topic(protocol.HEARTBEAT), payload, qos=0)
            await self.unit.board.sleep_ms(self.s["heartbeat_ms"])

    async def _live(self):
        client = self.client
        assert client is not None  # the session sets it before starting this task
        while client.connected:
            if self._live_dirty:
                self._live_dirty = False
                payload = self._payload(self.unit.live_payload, protocol.LIVE)
                if payload is not None:
                    await client.publish(self.topic(protocol.LIVE), payload, qos=0, retain=True)
            self._wake_live.clear()
            try:
                await asyncio.wait_for(self._wake_live.wait(), 1)
            except asyncio.TimeoutError:
                pass

