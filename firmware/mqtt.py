# A small MQTT 3.1.1 client on asyncio streams, for the desk unit.
#
# Why our own: micropython-lib's umqtt blocks on sockets, sends no automatic
# pings and can wait forever for a PUBACK, which would stall sensing and break
# the Last Will. This client never blocks the event loop, pings on its own,
# bounds every wait, and runs unchanged on MicroPython and CPython, so the
# virtual desk unit exercises the very same code against a real broker.
#
# Delivery policy: a PUBACK only frees an in-flight slot. Nothing is resent by
# this layer; the journal resends whatever the collector has not acknowledged.

try:
    import asyncio
except ImportError:
    try:  # MicroPython before 1.21
        import uasyncio as asyncio  # type: ignore[no-redef]
    except ImportError:  # a build without asyncio: the packet codec still works
        asyncio = None  # type: ignore[assignment]

# The ignores below mark CPython-only fallbacks: mypy-device.ini checks this
# file against MicroPython's stubs, where time has ticks_ms and no monotonic.
try:
    from time import ticks_ms, ticks_diff
except ImportError:  # CPython: the same 30-bit wrapping ticks from the monotonic clock
    import time as _time

    def ticks_ms():  # type: ignore[misc, no-redef]
        return int(_time.monotonic() * 1000) & 0x3FFFFFFF  # type: ignore[attr-defined]

    def ticks_diff(a, b):  # type: ignore[misc, no-redef]
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d >= 0x20000000 else d

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0
MAX_PACKET = 16384  # largest packet accepted from the broker (a retained config is a few KB)

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MQTTError(Exception):
    pass


# ---- packet codec (pure) ----------------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes((len(s) >> 8, len(s) & 0xFF)) + s


def _packet(first, body):
    return bytes((first,)) + _varint(len(body)) + body


def encode_connect(client_id, keepalive=30, clean=True, will=None, user=None, password=None):
    # type: (str, int, bool, Optional[tuple], Optional[str], Optional[str]) -> bytes
    """will = (topic, payload, qos, retain) or None."""
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will is not None:
        wtopic, wpayload, wqos, wretain = will
        flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        payload += _str(wtopic) + _str(wpayload)
    if user is not None:
        flags |= 0x80
        payload += _str(user)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    body = _str(b"MQTT") + bytes((4, flags, keepalive >> 8, keepalive & 0xFF)) + payload
    return _packet(CONNECT, body)


def encode_publish(topic, payload, qos=0, retain=False, pid=0, dup=False):
    # type: (str, bytes, int, bool, int, bool) -> bytes
    first = PUBLISH | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _str(topic)
    if qos:
        body += bytes((pid >> 8, pid & 0xFF))
    return _packet(first, body + payload)


def encode_subscribe(pid, topics):
    # type: (int, List[Tuple[str, int]]) -> bytes
    """topics: list of (filter, qos)."""
    body = bytes((pid >> 8, pid & 0xFF))
    for name, qos in topics:
        body += _str(name) + bytes((qos,))
    return _packet(SUBSCRIBE, body)


def encode_puback(pid):
    # type: (int) -> bytes
    return bytes((PUBACK, 2, pid >> 8, pid & 0xFF))


def encode_pingreq():
    return bytes((PINGREQ, 0))


def encode_disconnect():
    return bytes((DISCONNECT, 0))


def decode_remaining_length(data, start=1):
    """Return (length, index of first body byte) or None if incomplete."""
    mult = 1
    value = 0
    i = start
    while True:
        if i >= len(data):
            return None
        byte = data[i]
        value += (byte & 0x7F) * mult
        i += 1
        if not byte & 0x80:
            return value, i
        mult *= 128
        if mult > 128 * 128 * 128:
            raise MQTTError("malformed remaining length")


def decode_publish(first, body):
    """Return (topic, payload, qos, retain, pid) of a PUBLISH packet."""
    qos = (first >> 1) & 3
    tlen = (body[0] << 8) | body[1]
    topic = bytes(body[2:2 + tlen]).decode()
    i = 2 + tlen
    pid = 0
    if qos:
        pid = (body[i] << 8) | body[i + 1]
        i += 2
    return topic, bytes(body[i:]), qos, bool(first & 1), pid


# ---- client -------------------------------------------------------------------

class MQTTClient:
    """One connection at a time; the caller owns reconnecting (with backoff).

    on_message(topic, payload, retained) and on_puback(pid) are plain callbacks
    run on the event loop; they must not block.
    """

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30,
                 will=None, ssl=None, max_inflight=16, timeout_ms=10000, max_packet=MAX_PACKET,
                 server_hostname=None):
        # type: (str, str, int, Optional[str], Optional[str], int, Optional[tuple], Any, int, int, int, Optional[str]) -> None
        self.client_id = client_id
        self.host = host  # best an IP address: a name is looked up, blocking, by open_connection
        self.server_hostname = server_hostname or host  # the name the broker's certificate carries
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.will = will
        self.ssl = ssl
        self.max_inflight = max_inflight
        self.timeout_ms = timeout_ms
        self.max_packet = max_packet
        self.on_message = None  # type: Optional[Callable[[str, bytes, bool], None]]
        self.on_puback = None  # type: Optional[Callable[[int], None]]
        self._reader = None  # type: Any
        self._writer = None  # type: Any
        self._tasks = []  # type: List[Any]
        self._pid = 0
        self._inflight = {}  # type: Dict[int, Any]  # pid -> ticks when sent
        self._suback = {}  # type: Dict[int, Any]  # pid -> granted QoS list, None until the SUBACK
        self._last_rx = ticks_ms()
        self._last_tx = ticks_ms()
        self._ping_sent = None  # type: Any  # ticks of the unanswered PINGREQ
        self.connected = False
        self.error = None  # type: Optional[str]
        self._slot = asyncio.Event()
        self._dead = asyncio.Event()

    # -- connection --

    async def connect(self, clean=True):
        # type: (bool) -> None
        """Open the socket, CONNECT, wait for CONNACK, all within timeout_ms.
        Raises MQTTError / OSError / asyncio.TimeoutError."""
        self.error = None
        self._dead = asyncio.Event()
        try:
            # One bound for the TCP connect, the TLS handshake (MicroPython runs
            # it inside the first writes and reads) and the CONNACK.
            await asyncio.wait_for(self._open(clean), self.timeout_ms / 1000)
        except BaseException:  # also the cancellation of a timed-out open
            await self._close_socket()
            raise
        self._inflight = {}
        self._ping_sent = None
        self._last_rx = ticks_ms()
        self.connected = True
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._keepalive_loop())]

    async def _open(self, clean):
        if self.ssl is None:
            conn = asyncio.open_connection(self.host, self.port)
        else:
            conn = asyncio.open_connection(self.host, self.port, ssl=self.ssl,
                                           server_hostname=self.server_hostname)
        self._reader, self._writer = await conn
        await self._send(encode_connect(self.client_id, self.keepalive, clean, self.will,
                                        self.user, self.password))
        first, body = await self._read_packet()
        if first != CONNACK or len(body) != 2:
            raise MQTTError("expected CONNACK, got packet type " + hex(first))
        if body[1] != 0:
            raise MQTTError("broker refused connection: " + CONNACK_REASONS.get(body[1], "code " + str(body[1])))

    async def wait_closed(self):
        """Return when the connection has died (or was closed); self.error says why."""
        await self._dead.wait()

    async def disconnect(self):
        """Clean close: the broker discards the Last Will."""
        if self.connected:
            try:
                await self._send(encode_disconnect())
            except Exception:
                pass
        await self._shutdown(None)

    async def abort(self, reason="aborted"):
        """Drop the connection without DISCONNECT: the broker publishes the Last Will."""
        await self._shutdown(reason)

    async def _shutdown(self, reason):
        was = self.connected
        self.connected = False
        if reason and not self.error:
            self.error = reason
        current = asyncio.current_task() if hasattr(asyncio, "current_task") else None
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        await self._close_socket()
        self._slot.set()
        self._dead.set()
        return was

    async def _close_socket(self):
        writer = self._writer
        self._writer = None
        self._reader = None
        if writer is not None:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    # -- sending --

    async def _send(self, data):
        if self._writer is None:
            raise MQTTError("not connected")
        self._writer.write(data)
        await self._writer.drain()
        self._last_tx = ticks_ms()

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def inflight(self):
        return len(self._inflight)

    async def publish(self, topic, payload, qos=0, retain=False):
        # type: (str, Any, int, bool) -> int
        """Send; for QoS1 return the packet id whose PUBACK will call on_puback.
        Waits (bounded) for an in-flight slot; raises MQTTError when the link is gone."""
        if not self.connected:
            raise MQTTError("not connected")
        pid = 0
        if qos:
            t0 = ticks_ms()
            while len(self._inflight) >= self.max_inflight:
                self._slot.clear()
                if ticks_diff(ticks_ms(), t0) > self.timeout_ms:
                    await self._shutdown("no PUBACK within " + str(self.timeout_ms) + " ms")
                    raise MQTTError("in-flight window stuck")
                try:
                    await asyncio.wait_for(self._slot.wait(), self.timeout_ms / 1000)
                except asyncio.TimeoutError:
                    pass
                if not self.connected:
                    raise MQTTError("connection lost: " + str(self.error))
            pid = self._next_pid()
            self._inflight[pid] = ticks_ms()
        if isinstance(payload, str):
            payload = payload.encode()
        try:
            await self._send(encode_publish(topic, payload, qos, retain, pid))
        except Exception as exc:
            await self._shutdown("send failed: " + repr(exc))
            raise MQTTError("send failed")
        return pid

    async def subscribe(self, topics):
        # type: (List[Tuple[str, int]]) -> List[int]
        """topics: list of (filter, qos). Waits for SUBACK; returns granted QoS list."""
        pid = self._next_pid()
        self._suback[pid] = None
        await self._send(encode_subscribe(pid, topics))
        t0 = ticks_ms()
        while self._suback.get(pid) is None:
            if not self.connected or ticks_diff(ticks_ms(), t0) > self.timeout_ms:
                self._suback.pop(pid, None)
                raise MQTTError("no SUBACK")
            await asyncio.sleep(0.01)
        granted = self._suback.pop(pid)
        if 0x80 in granted:
            raise MQTTError("subscription refused for " + repr([t for t, q in topics]))
        return granted

    # -- receiving --

    async def _read_packet(self):
        reader = self._reader
        if reader is None:
            raise MQTTError("not connected")
        head = await reader.readexactly(1)
        first = head[0]
        mult = 1
        length = 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length += (byte & 0x7F) * mult
            if not byte & 0x80:
                break
            mult *= 128
            if mult > 128 * 128 * 128:
                raise MQTTError("malformed remaining length")
        if length > self.max_packet:
            # Never allocate what a broker announces: the heap is ~100 KB.
            raise MQTTError("packet of " + str(length) + " bytes over the limit of " + str(self.max_packet))
        body = await reader.readexactly(length) if length else b""
        self._last_rx = ticks_ms()
        return first, body

    async def _read_loop(self):
        try:
            while True:
                first, body = await self._read_packet()
                kind = first & 0xF0
                if kind == PUBLISH:
                    topic, payload, qos, retain, pid = decode_publish(first, body)
                    if qos:
                        await self._send(encode_puback(pid))
                    if self.on_message is not None:
                        self.on_message(topic, payload, retain)
                elif kind == PUBACK:
                    pid = (body[0] << 8) | body[1]
                    if self._inflight.pop(pid, None) is not None:
                        self._slot.set()
                        if self.on_puback is not None:
                            self.on_puback(pid)
                elif kind == SUBACK:
                    pid = (body[0] << 8) | body[1]
                    if pid in self._suback:
                        self._suback[pid] = list(body[2:])
                elif kind == PINGRESP:
                    self._ping_sent = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._shutdown("read failed: " + repr(exc))

    async def _keepalive_loop(self):
        # Ping when idle for half the keepalive; give up when a ping goes unanswered
        # for another half, or a PUBACK is overdue: the broker then fires the Will.
        half = self.keepalive * 500
        try:
            while self.connected:
                await asyncio.sleep(min(1, self.keepalive / 4))
                now = ticks_ms()
                if self._ping_sent is not None and ticks_diff(now, self._ping_sent) > half:
                    await self._shutdown("no PINGRESP within " + str(half) + " ms")
                    return
                for sent in self._inflight.values():
                    if ticks_diff(now, sent) > self.timeout_ms:
                        await self._shutdown("no PUBACK within " + str(self.timeout_ms) + " ms")
                        return
                if self._ping_sent is None and ticks_diff(now, self._last_tx) >= half:
                    self._ping_sent = now
                    await self._send(encode_pingreq())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._shutdown("keepalive failed: " + repr(exc))
