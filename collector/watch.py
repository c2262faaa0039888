"""What is wrong with the collector right now, decided from a snapshot of its
counters: the truth behind /health's `ok`, the Prometheus metrics and the
warnings in the log. Pure: the caller passes the times in.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class Snapshot:
    """Monotonic seconds for every `*_since`/`last_*`; None where it does not apply."""

    now: float
    waiting: int  # messages received and not yet acknowledged
    last_progress: float  # last time a batch was stored and acknowledged, or the inbox was empty
    broker: str  # "host:port"
    broker_down_since: float | None
    broker_error: str
    influx: str  # url
    influx_down_since: float | None
    influx_error: str
    spool_depth: int
    spool_max_rows: int
    spool_error_since: float | None
    spool_error: str
    writer_alive: bool
    stopping: bool
    rollup_failing_since: float | None = None  # roll-up refreshes failing (dirty keys wait in the spool)
    rollup_error: str = ""
    rollup_pending: int = 0


@dataclass
class Thresholds:
    stall_s: float = 60.0
    unreachable_s: float = 30.0


def problems(s: Snapshot, t: Thresholds) -> dict[str, str]:
    """name -> why, for every condition that makes the collector not ok."""
    out: dict[str, str] = {}
    if s.stopping:
        out["stopping"] = "the collector is shutting down"
    if s.broker_down_since is not None and s.now - s.broker_down_since >= t.unreachable_s:
        out["broker"] = (f"broker {s.broker} unreachable for {s.now - s.broker_down_since:.0f} s"
                         + (f": {s.broker_error}" if s.broker_error else ""))
    if s.influx_down_since is not None and s.now - s.influx_down_since >= t.unreachable_s:
        out["influx"] = (f"InfluxDB {s.influx} unreachable for {s.now - s.influx_down_since:.0f} s"
                         + (f": {s.influx_error}" if s.influx_error else ""))
    if s.waiting and s.now - s.last_progress >= t.stall_s:
        out["stalled"] = (f"{s.waiting} message(s) waiting and nothing stored or acknowledged "
                          f"for {s.now - s.last_progress:.0f} s")
    if s.spool_error_since is not None:
        out["spool"] = f"spool commit failing for {s.now - s.spool_error_since:.0f} s: {s.spool_error}"
    if s.spool_depth >= s.spool_max_rows:
        out["spool_full"] = f"spool full ({s.spool_depth} of {s.spool_max_rows} rows): acknowledgements held"
    # While InfluxDB is down, "influx" says it all; a refresh failing on its own matters.
    if (s.rollup_failing_since is not None and s.influx_down_since is None
            and s.now - s.rollup_failing_since >= t.unreachable_s):
        out["rollup"] = (f"roll-up refresh failing for {s.now - s.rollup_failing_since:.0f} s "
                         f"({s.rollup_pending} key(s) waiting): {s.rollup_error}")
    if not s.writer_alive and not s.stopping:
        out["writer"] = "the InfluxDB writer has stopped"
    return out


class Reporter:
    """Turns successive problem sets into log lines: each new problem at
    once, a persisting one again every `repeat_s`, and its end."""

    def __init__(self, repeat_s: float = 60.0):
        self.repeat_s = repeat_s
        self._said: dict[str, float] = {}  # name -> when last logged

    def step(self, now: float, current: dict[str, str]) -> list[tuple[str, str, str]]:
        """Return (level, name, text) lines to log now."""
        out = []
        for name, why in current.items():
            said = self._said.get(name)
            if said is None or now - said >= self.repeat_s:
                self._said[name] = now
                out.append(("warning", name, why))
        for name in list(self._said):
            if name not in current:
                del self._said[name]
                out.append(("info", name, "recovered: " + name))
        return out


def tcp_error(host: str, port: int, timeout: float = 2.0) -> str:
    """Why a server cannot be reached, for a warning: MQTT clients keep their
    connect errors to themselves, so try the address once (the one impure
    helper here; call it only when about to warn)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return str(exc)
    return "TCP connects; the MQTT session does not come up"
