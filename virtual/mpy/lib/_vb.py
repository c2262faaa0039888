# The virtual board's wire to its host (virtual/board.py): one TCP connection
# on loopback, lines of text both ways. The board modules beside this file
# (machine, network, ntptime, time, esp32, neopixel) use it the way the ESP32
# port uses its hardware: inputs are levels the host drives, outputs are
# levels the host records, the watchdog and resets are the host's to enforce.
#
# host -> board: "in PIN LEVEL", "adc PIN VALUE", "wifi 0|1", "ntp 0|1", "time EPOCH_MS",
#                "cut N" (the power fails at the N+1st flash block write from now),
#                "rfail HEX" (the next read of a flash block holding those bytes fails, once)
# board -> host: "out PIN LEVEL", "wdt MS", "feed", "reset hard|soft", "ntp?",
#                "rtc EPOCH_MS", "neopixel PIN R,G,B",
#                "heapbase ALLOC", "heap ALLOC FREE" (the heap probe, below),
#                "readfailed" (the "rfail" read happened)

import gc
import os
import select
import socket

CHIP = os.getenv("SEATMON_VB_CHIP") or "esp32"
CAUSE = int(os.getenv("SEATMON_VB_CAUSE") or "1")
UID = os.getenv("SEATMON_VB_UID") or "24a160c0ffee"
TICKS0 = int(os.getenv("SEATMON_VB_TICKS0") or "0")  # the board's tick counter when this process starts
RTC_MS = int(os.getenv("SEATMON_VB_RTC_MS") or "946684800000")  # the RTC at start: 2000-01-01 after power-on

levels = {}  # pin -> level (inputs) or raw ADC value
state = {"wifi": True, "ntp": True, "cut": int(os.getenv("SEATMON_VB_CUT_AFTER") or "-1")}
_buf = b""
_sock = None
_poller = None
# The heap probe (a benchmark's, off unless SEATMON_VB_HEAP_PROBE is set):
# every that many pin reads, collect and report the live heap when it is a
# new peak. The firmware's sampler reads its pins every period (10 ms), so
# this samples the unit's live data through everything it does, but not
# inside one C call (a TLS handshake).
_probe_every = int(os.getenv("SEATMON_VB_HEAP_PROBE") or "0")
_probe = [0, 0]  # reads since the last sample, peak seen


def _connect():
    global _sock, _poller
    host, _, port = (os.getenv("SEATMON_VB_CTRL") or "").rpartition(":")
    if not host:
        return
    s = socket.socket()
    s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    _sock = s
    _poller = select.poll()
    _poller.register(s, select.POLLIN)
    send("hello")
    # The host answers with every input level, then "ready".
    while not state.get("ready"):
        _poller.poll(1000)
        if not _read():
            raise OSError("the virtual board's host closed the wire")


def _read():
    global _buf
    data = _sock.recv(512)
    if not data:
        return False
    _buf += data
    while b"\n" in _buf:
        line, _, _buf = _buf.partition(b"\n")
        _apply(line.decode().split())
    return True


def _apply(words):
    if not words:
        return
    if words[0] in ("in", "adc"):
        levels[int(words[1])] = int(words[2])
    elif words[0] in ("wifi", "ntp"):
        state[words[0]] = words[1] == "1"
    elif words[0] == "cut":
        state["cut"] = int(words[1])
    elif words[0] == "rfail":
        state["rfail"] = bytes.fromhex(words[1])
    elif words[0] == "time":
        state["time_ms"] = int(words[1])
    elif words[0] == "ready":
        state["ready"] = True


def heap_base():
    """Tell the host the live heap before main.py runs (the board's own
    modules and the ROMFS image, which an ESP32 keeps out of its heap)."""
    if _probe_every:
        gc.collect()
        _probe[1] = 0
        send("heapbase %d" % gc.mem_alloc())


def _sample_heap():
    _probe[0] += 1
    if _probe[0] < _probe_every:
        return
    _probe[0] = 0
    gc.collect()
    used = gc.mem_alloc()
    if used > _probe[1]:
        _probe[1] = used
        send("heap %d %d" % (used, gc.mem_free()))


def poll():
    """Take in what the host sent since the last call (never blocks); a pin
    read for the heap probe."""
    if _probe_every:
        _sample_heap()
    receive()


def receive():
    """Take in what the host sent since the last call (never blocks)."""
    if _poller is None:
        return
    while _poller.poll(0):
        if not _read():
            break


def send(line):
    if _sock is not None:
        _sock.write((line + "\n").encode())


_connect()


def host_time_ms():
    """The host's wall clock: the NTP server's answer."""
    state.pop("time_ms", None)
    send("ntp?")
    while "time_ms" not in state:
        _poller.poll(1000)
        if not _read():
            raise OSError(110)
    return state["time_ms"]
