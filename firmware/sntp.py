# SNTP for the desk unit, pure: the request packet, the checks an answer
# must pass (RFC 4330), and the judge that decides whether an answer may set
# the clock. The shell (firmware/shell.py) sends and polls the UDP socket
# without blocking; nothing here touches a socket or a clock.

import struct

from firmware.ticks import ticks_diff

NTP_TO_UNIX_S = 2208988800  # 1900-01-01 to 1970-01-01
ERA_PIVOT = 0x80000000  # NTP seconds below this (1968) are era 1 (from 2036-02-07)
PORT = 123


class Refused(ValueError):
    """An answer that must not set the clock; str() says why."""


def request():
    """A client request: LI 0, version 4, mode 3 (client)."""
    pkt = bytearray(48)
    pkt[0] = 0x23
    return pkt


def parse(data):
    """The server's transmit time of an answer as epoch ms (1970). Raises
    Refused for a short packet, a non-server mode, an unsynchronised server
    (leap indicator 3), a Kiss-o'-Death (stratum 0) and a zero transmit
    time (which naive clients read as 2036)."""
    if len(data) < 48:
        raise Refused("short answer (" + str(len(data)) + " bytes)")
    mode = data[0] & 7
    if mode != 4 and mode != 5:
        raise Refused("not a server answer (mode " + str(mode) + ")")
    if data[0] >> 6 == 3:
        raise Refused("server not synchronised (leap indicator 3)")
    stratum = data[1]
    if stratum == 0:
        raise Refused("kiss-o'-death " + repr(bytes(data[12:16])))
    if stratum > 15:
        raise Refused("stratum " + str(stratum))
    secs, frac = struct.unpack("!II", bytes(data[40:48]))
    if secs == 0 and frac == 0:
        raise Refused("zero transmit time")
    if secs < ERA_PIVOT:
        secs += 1 << 32
    return (secs - NTP_TO_UNIX_S) * 1000 + (frac * 1000 >> 32)


def split_server(text):
    """'host' or 'host:port' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return text, PORT


class Judge:
    """Decides which NTP answers set the clock.

    offer() takes an answer (epoch ms read at `tick`, from `server`) and the
    unit's NTP clock at that tick (None before the first sync), and returns
    "accept", "confirm" (held: a second answer must agree) or "refuse".
    An answer before `not_before` (the firmware's build) is refused. One
    within `jump_ms` of the NTP clock is accepted. Any other (the first
    sync, or a jump) is held until a second answer, from another server
    when `distinct` (the site names several), agrees within `agree_ms`."""

    def __init__(self, not_before, jump_ms, distinct=True, agree_ms=2000):
        self.not_before = not_before
        self.jump_ms = jump_ms
        self.distinct = distinct
        self.agree_ms = agree_ms
        self.held = None  # (tick, epoch ms, server) waiting for a second answer
        self.why = ""  # why the last answer was not accepted

    def offer(self, tick, epoch_ms, server, clock_ms=None):
        if epoch_ms < self.not_before:
            self.why = "answer before the firmware's build"
            return "refuse"
        if clock_ms is not None and -self.jump_ms <= epoch_ms - clock_ms <= self.jump_ms:
            self.held = None
            return "accept"
        held = self.held
        if held is not None and (server != held[2] or not self.distinct):
            expected = held[1] + ticks_diff(tick, held[0])
            if -self.agree_ms <= epoch_ms - expected <= self.agree_ms:
                self.held = None
                return "accept"
        self.held = (tick, epoch_ms, server)
        self.why = "a jump from the clock: waiting for a second answer to agree"
        return "confirm"
