"""A fake NTP server for tests and the virtual boards: a real UDP socket on
loopback that answers SNTP requests the way a server under test should
(good, late, wrong, zero, Kiss-o'-Death, silent).

    with NtpServer(now_ms=lambda: world_ms) as srv:   # srv.address: "127.0.0.1:PORT"
        srv.mode = "zero"
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable

NTP_TO_UNIX_S = 2208988800
MODES = ("good", "late", "wrong", "zero", "kod", "silent")


def answer_packet(epoch_ms: int | None, stratum: int = 2, li: int = 0, mode: int = 4,
                  kod: bytes = b"\0\0\0\0") -> bytes:
    """An SNTP server answer whose transmit time is `epoch_ms` (None: an
    all-zero transmit time)."""
    pkt = bytearray(48)
    pkt[0] = (li << 6) | (4 << 3) | mode
    pkt[1] = stratum
    pkt[12:16] = kod
    if epoch_ms is not None:
        secs = (epoch_ms // 1000 + NTP_TO_UNIX_S) & 0xFFFFFFFF
        frac = ((epoch_ms % 1000) << 32) // 1000 + 1
        pkt[40:48] = struct.pack("!II", secs, frac)
    return bytes(pkt)


class NtpServer:
    """`mode`: good (the time `now_ms()` gives), late (good, `late_s` after
    the request), wrong (good plus `wrong_ms`), zero (transmit time 0, what a
    broken server or a naive Kiss-o'-Death reply sends), kod (stratum 0,
    RATE), silent (no answer). `requests` counts what arrived."""

    def __init__(self, now_ms: Callable[[], int] | None = None, mode: str = "good",
                 wrong_ms: int = 10 * 365 * 86400000, late_s: float = 5.0):
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.mode = mode
        self.wrong_ms = wrong_ms
        self.late_s = late_s
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ntp-server", daemon=True)

    def start(self) -> "NtpServer":
        self._thread.start()
        return self

    def __enter__(self) -> "NtpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                _, peer = self.sock.recvfrom(512)
            except (socket.timeout, OSError):
                continue
            self.requests += 1
            mode = self.mode
            if mode == "silent":
                continue
            if mode == "late":
                threading.Timer(self.late_s, self._send, (peer, answer_packet(self.now_ms()))).start()
                continue
            if mode == "zero":
                pkt = answer_packet(None)
            elif mode == "kod":
                pkt = answer_packet(self.now_ms(), stratum=0, kod=b"RATE")
            else:
                pkt = answer_packet(self.now_ms() + (self.wrong_ms if mode == "wrong" else 0))
            self._send(peer, pkt)

    def _send(self, peer, pkt: bytes) -> None:
        try:
            self.sock.sendto(pkt, peer)
        except OSError:
            pass
