"""The floor right now: every seat's state and the current shift's figures.

Pure and deterministic: the shell feeds it decoded protocol messages with the
time they arrived (`now`, epoch ms) and asks it for the view model at a given
`now`. No sockets, threads or clocks in here.

What it decides:
- a seat's tile: offline (with last seen) beats ringing (with seconds and a
  level: `ring`, `notice` at the notice threshold, `limit` at the limit), beats
  talking / outgoing / idle; badges for a pending missed-call reminder and for
  equipment left on after the shift ended; the units' events (QoS1) end a
  ringing or call that a lost live message (QoS0) left showing, and start and
  end the missed-call badge as the unit starts and ends its reminder;
- a seat's over-the-air update line, from the unit's `update` events: shown
  while an update is under way (receiving, staged) or went wrong (refused,
  failed, rolled back) until the unit's next update step; a confirmed update
  clears it and becomes the unit's running version (`fw`, also from its status);
- the current shift's figures, from call events de-duplicated on
  (unit, boot, seq), whether they came from InfluxDB or the live stream:
  timeliness rate = answered within limit / all calls that rang; service
  level = answered within limit / (answered + missed) (abandoned left out);
- the longest ring right now, and whether the numbers are stale (broker lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seatmon.sitefile import SELFCHECK_UNIT


def call_unit(unit: str, inc: str | None) -> str:
    """The unit part of a call's identity (unit, boot, seq): a re-flashed or
    replaced board (a new incarnation `inc`) numbers its calls from 1 again."""
    return unit + "/" + inc if inc else unit


# What a tile says of the unit's last update step; a confirmed update says nothing
# (the tile's `fw` is then the new version).
UPDATE_TEXT = {"receiving": "updating {}", "staged": "installing {}", "refused": "update {} refused",
               "failed": "update {} failed", "rolled_back": "rolled back from {}"}
UPDATE_TROUBLE = ("refused", "failed", "rolled_back")

UNIT_FIELDS = ("fw", "update_step", "update_version", "update_ts")  # a moved unit takes these along

KEEP_SHIFTS = 3  # shift figures kept in memory: the current one and a late event's


def row_of(seat: str) -> str:
    """A seat's row: the id's prefix before the last '-' (A-01 -> A)."""
    head, sep, _tail = seat.rpartition("-")
    return head if sep and head else seat


@dataclass
class Seat:
    site: str
    seat: str
    row: str
    unit: str | None = None
    state: str | None = None  # live state; None until the unit has told us
    since: int | None = None  # epoch ms the live state began
    rings: int | None = None
    missed_pending: bool = False
    missed_ts: int = 0  # ts of the last missed-call reminder event: an older live message does not undo it
    left_on: bool = False
    online: bool | None = None  # from the retained status; None when unknown
    last_seen: int | None = None  # epoch ms we last heard of the unit
    fw: str | None = None  # the code the unit runs: its status's `fw`, or a confirmed update's version
    update_step: str | None = None  # the unit's last over-the-air update step
    update_version: str | None = None
    update_ts: int = 0  # ts of that step's event: an older event does not undo it


@dataclass
class ShiftFigures:
    """Call outcomes of one shift, keyed by event identity so that the same
    call from InfluxDB and from the live stream counts once."""

    calls: dict = field(default_factory=dict)  # (unit, boot, seq) -> (answered, timely, missed)
    answered: int = 0
    timely: int = 0
    missed: int = 0

    def add(self, ident: tuple, answered: bool, timely: bool, missed: bool) -> bool:
        if ident in self.calls:
            return False
        self.calls[ident] = (answered, timely, missed)
        self.answered += answered
        self.timely += timely
        self.missed += missed
        return True

    def as_dict(self) -> dict:
        total = len(self.calls)
        base = self.answered + self.missed
        return {
            "calls": total, "answered": self.answered, "timely": self.timely, "missed": self.missed,
            "timeliness_rate": self.timely / total if total else None,
            "service_level": self.timely / base if base else None,
        }


class Floor:
    """State of every seat, fed message by message."""

    def __init__(self, *, notice_ms: int = 5000, limit_ms: int = 10000, layout=(), sites=None):
        self.notice_ms = notice_ms
        self.limit_ms = limit_ms
        self.sites = set(sites) if sites else None  # None: every site
        self.seats: dict[tuple[str, str], Seat] = {}
        self.unit_seat: dict[tuple[str, str], tuple[str, str]] = {}  # (site, unit) -> seat key
        self.unit_seen: dict[tuple[str, str], dict] = {}  # units heard before their seat is known
        self.order: dict[tuple[str, str], int] = {}  # explicit layout order
        for site, row, seats in layout:
            for seat in seats:
                key = (site, seat)
                self.order[key] = len(self.order)
                self.seats[key] = Seat(site, seat, row)
        self.shifts: dict[str, ShiftFigures] = {}
        self.current_shift: str | None = None
        self._shift_ts = -1  # ts of the message that named the current shift
        self.connected = False
        self.disconnected_at: int | None = None
        self.ignored = 0  # messages from sites not on this board
        self.history = None  # how loading stored calls went: loading / ok / failed
        self._dirty: set[tuple[str, str]] = set(self.seats)
        self._ringing: set[tuple[str, str]] = set()
        self._sent: dict[tuple[str, str], dict] = {}
        self._sent_header: dict | None = None

    # ---- input -------------------------------------------------------------

    def _wanted(self, site: str) -> bool:
        if self.sites is not None and site not in self.sites:
            self.ignored += 1
            return False
        return True

    def _seat(self, site: str, seat: str) -> Seat:
        key = (site, seat)
        found = self.seats.get(key)
        if found is None:
            found = self.seats[key] = Seat(site, seat, row_of(seat))
        return found

    def _bind(self, site: str, unit: str, seat_id: str) -> Seat:
        """Attach a unit to its seat (a unit may be moved to another seat)."""
        key = (site, seat_id)
        old = self.unit_seat.get((site, unit))
        moved = None
        if old is not None and old != key and self.seats[old].unit == unit:
            moved = self.seats[old]
            moved.unit = None
            moved.online = None
            moved.state = None
            self._ringing.discard(old)
            self._touch(old)
        self.unit_seat[(site, unit)] = key
        seat = self._seat(site, seat_id)
        seat.unit = unit
        if moved is not None:  # the code it runs and its update go with the unit
            for name in UNIT_FIELDS:
                setattr(seat, name, getattr(moved, name))
                setattr(moved, name, getattr(Seat, name))
        early = self.unit_seen.pop((site, unit), None)
        if early:
            if seat.online is None:
                seat.online = early.get("online")
            seat.last_seen = _later(seat.last_seen, early.get("last_seen"))
            seat.fw = seat.fw or early.get("fw")
        return seat

    def _unit(self, site: str, unit: str) -> Seat | None:
        key = self.unit_seat.get((site, unit))
        return self.seats[key] if key else None

    def _touch(self, key) -> None:
        self._dirty.add(key)

    def _heard(self, seat: Seat, msg: dict, now: int, retained: bool) -> None:
        # A retained message may be hours old: trust its own ts, not arrival.
        seat.last_seen = _later(seat.last_seen, msg.get("ts"))
        if not retained:
            seat.last_seen = _later(seat.last_seen, now)

    def _note_shift(self, label: str | None, ts: int | None) -> None:
        if not label:
            return
        ts = ts or 0
        if self.current_shift is None or (ts >= self._shift_ts and label != self.current_shift and ts > 0):
            self.current_shift = label
            self._shift_ts = ts
        elif label == self.current_shift:
            self._shift_ts = max(self._shift_ts, ts)

    def on_live(self, site: str, unit: str, msg: dict, now: int, retained: bool = False) -> None:
        if not self._wanted(site):
            return
        seat = self._bind(site, unit, msg["seat"])
        seat.state = msg["state"]
        seat.since = msg.get("since") or msg.get("ts") or now
        seat.rings = msg.get("rings")
        if (msg.get("ts") or 0) >= seat.missed_ts:
            seat.missed_pending = msg["missed_pending"]
        seat.left_on = msg["left_on"]
        if not retained:
            seat.online = True  # a unit that speaks is online, whatever an old status said
        self._heard(seat, msg, now, retained)
        self._note_shift(msg.get("shift"), msg.get("ts"))
        key = (site, seat.seat)
        if seat.state == "ringing":
            self._ringing.add(key)
        else:
            self._ringing.discard(key)
        self._touch(key)

    def on_status(self, site: str, unit: str, msg: dict, now: int, retained: bool = False) -> None:
        if not self._wanted(site):
            return
        online = msg["state"] == "online"
        seat = self._bind(site, unit, msg["seat"]) if msg.get("seat") else self._unit(site, unit)
        if seat is None:
            early = self.unit_seen.setdefault((site, unit), {})
            early["online"] = online
            early["last_seen"] = _later(early.get("last_seen"), msg.get("ts") or (None if retained else now))
            early["fw"] = msg.get("fw") or early.get("fw")
            return
        seat.online = online
        seat.fw = msg.get("fw") or seat.fw
        self._heard(seat, msg, now, retained)
        self._touch((site, seat.seat))

    def on_heartbeat(self, site: str, unit: str, msg: dict, now: int) -> None:
        if not self._wanted(site):
            return
        seat = self._unit(site, unit)
        if seat is None:
            early = self.unit_seen.setdefault((site, unit), {})
            early["last_seen"] = _later(early.get("last_seen"), now)
            return
        self._heard(seat, msg, now, False)
        self._touch((site, seat.seat))

    def on_event(self, site: str, unit: str, msg: dict, now: int) -> bool:
        """Count a `call` event in its shift; True when it was new."""
        if not self._wanted(site) or unit == SELFCHECK_UNIT:  # `seatmon selfcheck`'s test event: no seat
            return False
        if msg.get("seat"):
            seat = self._unit(site, unit) or self._bind(site, unit, msg["seat"])
            self._heard(seat, msg, now, False)
            self._follow(seat, msg)
            self._touch((site, seat.seat))
        if msg["kind"] != "call" or not msg.get("shift"):
            return False
        self._note_shift(msg["shift"], msg["ts"])
        outcome = msg["outcome"]
        return self.shift(msg["shift"]).add(
            (call_unit(unit, msg.get("inc")), msg["boot"], msg["seq"]), outcome == "answered",
            outcome == "answered" and msg["within_limit"], outcome == "missed")

    def _follow(self, seat: Seat, msg: dict) -> None:
        """What an event (QoS1: never lost) says of the seat now. A call or
        outgoing call that ended after the seat's shown ringing or talking
        began ends that too: the QoS0 live message that said so was lost (a
        tile read "723 s, 2 rings" long after the call). A missed-call
        reminder starts, and ends when acknowledged or at the shift's end,
        as the unit ends it. An update step replaces the one before."""
        kind = msg["kind"]
        if kind == "update" and msg["ts"] >= seat.update_ts:
            seat.update_step, seat.update_version, seat.update_ts = msg["step"], msg["version"], msg["ts"]
            if msg["step"] == "confirmed":
                seat.fw = msg["version"]
        elif kind == "reminder" and msg["pattern"] == "missed":
            seat.missed_pending = msg["action"] == "start"
            seat.missed_ts = msg["ts"]
        elif kind in ("call", "outgoing") and seat.state in ("ringing", "talking", "outgoing"):
            end = msg["ts"] + msg.get("ring_ms", 0) + msg.get("talk_ms", 0)
            if seat.since is not None and seat.since <= end:
                seat.state, seat.since, seat.rings = "idle", end, None
                self._ringing.discard((seat.site, seat.seat))

    def on_history(self, label: str, rows) -> int:
        """Merge stored calls of one shift: rows of (unit, boot, seq, answered,
        timely, missed) with 0/1 flags. Returns how many were new."""
        figures = self.shift(label)
        return sum(figures.add((u, b, s), bool(a), bool(t), bool(m)) for u, b, s, a, t, m in rows)

    def shift(self, label: str) -> ShiftFigures:
        if label not in self.shifts:
            self.shifts[label] = ShiftFigures()
            # A board runs for months: keep the few latest shifts, not every call ever.
            for old in list(self.shifts)[:-KEEP_SHIFTS]:
                if old != self.current_shift:
                    del self.shifts[old]
        return self.shifts[label]

    def set_connected(self, connected: bool, now: int) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        self.disconnected_at = None if connected else now
        self._dirty.update(self.seats)  # tiles show the stale state too

    # ---- output ------------------------------------------------------------

    def tile(self, seat: Seat, now: int) -> dict:
        t = {"id": seat.site + "/" + seat.seat, "site": seat.site, "row": seat.row, "seat": seat.seat,
             "unit": seat.unit, "status": "unknown", "level": None, "ring_s": None, "rings": None,
             "missed": seat.missed_pending, "left_on": seat.left_on, "last_seen": seat.last_seen,
             "fw": seat.fw, "update": update_line(seat)}
        if seat.online is False:
            t["status"] = "offline"
        elif seat.state is not None:
            t["status"] = seat.state
        if t["status"] == "ringing":
            ring_ms = max(0, now - seat.since)
            t["ring_s"] = ring_ms // 1000
            t["rings"] = seat.rings
            t["level"] = "limit" if ring_ms >= self.limit_ms else "notice" if ring_ms >= self.notice_ms else "ring"
        return t

    def longest_ring(self, now: int) -> dict | None:
        best = None
        for key in self._ringing:
            seat = self.seats[key]
            if seat.online is False or seat.state != "ringing":
                continue
            ms = max(0, now - seat.since)
            if best is None or ms > best[0] or (ms == best[0] and key < best[1]):
                best = (ms, key)
        if best is None:
            return None
        return {"seat": best[1][1], "site": best[1][0], "ring_s": best[0] // 1000,
                "level": "limit" if best[0] >= self.limit_ms else "notice" if best[0] >= self.notice_ms else "ring"}

    def header(self, now: int) -> dict:
        stale = not self.connected
        figures = self.shifts.get(self.current_shift) if self.current_shift else None
        counts = {"ringing": 0, "talking": 0, "outgoing": 0, "idle": 0, "offline": 0, "unknown": 0}
        return {
            "stale": stale, "stale_since": self.disconnected_at,
            "shift": self.current_shift, "history": self.history,
            # While the broker is lost the numbers would be stale: send none.
            "figures": None if stale else (figures or ShiftFigures()).as_dict(),
            "longest": None if stale else self.longest_ring(now),
            "notice_ms": self.notice_ms, "limit_ms": self.limit_ms, "seats": len(self.seats),
            "counts": None if stale else counts,
        }

    def _sort_key(self, key):
        return (key[0], self.order.get(key, len(self.order)), self.seats[key].row, key[1])

    def snapshot(self, now: int) -> dict:
        """The whole view, for a client that just connected. Change tracking
        is left alone: later patches may repeat a tile, never miss one."""
        tiles = [self.tile(self.seats[k], now) for k in sorted(self.seats, key=self._sort_key)]
        return {"now": now, "header": self._with_counts(self.header(now), tiles), "tiles": tiles}

    def changes(self, now: int) -> dict | None:
        """Tiles and header that differ from what was last sent, or None."""
        keys = self._dirty | self._ringing
        self._dirty = set()
        tiles = []
        for key in sorted(keys, key=self._sort_key):
            t = self.tile(self.seats[key], now)
            if self._sent.get(key) != t:
                self._sent[key] = t
                tiles.append(t)
        header = self._with_counts(self.header(now), self._sent.values())
        if header == self._sent_header:
            header = None
        else:
            self._sent_header = header
        if not tiles and header is None:
            return None
        return {"now": now, "header": header, "tiles": tiles}

    def _with_counts(self, header: dict, tiles) -> dict:
        if header["counts"] is not None:
            counts = header["counts"]
            for t in tiles:
                counts[t["status"]] = counts.get(t["status"], 0) + 1
        return header


def update_line(seat: Seat) -> dict | None:
    """The tile's update line: the step, its version, what the tile says and
    whether it went wrong; None when no update is under way or failed."""
    text = UPDATE_TEXT.get(seat.update_step or "")
    if text is None:
        return None
    return {"step": seat.update_step, "version": seat.update_version, "text": text.format(seat.update_version),
            "trouble": seat.update_step in UPDATE_TROUBLE}


def _later(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
