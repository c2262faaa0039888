"""The durable spool between MQTT and InfluxDB: one SQLite file in WAL mode.

- `outbox`: line-protocol lines waiting for InfluxDB, in arrival order;
- `quarantine`: every message that was refused, with topic, payload, reason;
- `units`: each unit incarnation's acknowledgement mark
  (collector.tracker.UnitState);
- `boot_clock`, `unsynced_held`: per unit boot, where its unsynced events
  go and which of them wait for the unit's clock event (collector/reclock.py);
- `rollup_dirty`: the (site, seat, 15-minute interval) keys whose roll-ups
  must be recomputed (collector.rollstore): filled in the same transaction
  that removes their lines from `outbox` once InfluxDB stored them, emptied
  only after a refresh succeeded, so a crash in between loses no refresh.

A batch of messages is committed in one fsync'd transaction (synchronous
FULL), and only then are the messages acknowledged to the broker, so a crash
at any point loses nothing that was acked.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from collector.reclock import BootClock, BootKey
from collector.tracker import UnitState, unit_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    r_site TEXT,     -- the roll-up key of a call/outgoing line (collector.rollstore), else NULL
    r_seat TEXT,
    r_start INTEGER
);
CREATE TABLE IF NOT EXISTS rollup_dirty (
    site TEXT NOT NULL,
    seat TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    gen INTEGER NOT NULL DEFAULT 0,     -- bumped each time new rows of the key are stored
    passes INTEGER NOT NULL DEFAULT 0,  -- refreshes done since then
    due_ms INTEGER NOT NULL DEFAULT 0,  -- not to be refreshed before (epoch ms)
    PRIMARY KEY (site, seat, start_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    replayed_ms INTEGER
);
CREATE TABLE IF NOT EXISTS boot_clock (
    site TEXT NOT NULL,
    unit TEXT NOT NULL,
    inc TEXT NOT NULL,
    boot INTEGER NOT NULL,
    est_ms INTEGER NOT NULL,
    offset_ms INTEGER,  -- NULL until the unit's clock event
    PRIMARY KEY (site, unit, inc, boot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unsynced_held (
    site TEXT NOT NULL,
    unit TEXT NOT NULL,
    inc TEXT NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,  -- as the unit sent it (JSON)
    PRIMARY KEY (site, unit, inc, boot, seq)
) WITHOUT ROWID;
"""
UNITS_TABLE = """
CREATE TABLE IF NOT EXISTS units (
    site TEXT NOT NULL,
    unit TEXT NOT NULL,
    mark INTEGER NOT NULL,
    above TEXT NOT NULL,
    known INTEGER NOT NULL,
    unit_acked INTEGER NOT NULL,
    lost INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    inc TEXT NOT NULL DEFAULT '',     -- the board's incarnation ('': a unit from before incarnations)
    held TEXT NOT NULL DEFAULT '[]',  -- seqs handled by quarantining them, as ranges
    PRIMARY KEY (site, unit, inc)
)"""
SCHEMA += UNITS_TABLE + ";\n"


class SpoolError(RuntimeError):
    """The spool cannot be opened where the configuration says."""


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # fsync at every commit: an ack means on disk
    db.execute("PRAGMA busy_timeout=30000")
    return db


class Spool:
    """Thread use: one ingest thread calls commit(); one writer thread calls
    read_batch()/delete_through(); anyone may read counters."""

    def __init__(self, path: str | Path, *, commit_delay_s: float = 0.0):
        self.path = Path(path)
        # Never create directories: the spool holds acknowledged events, so it
        # must live where the operator put it (systemd's StateDirectory).
        if not self.path.parent.is_dir():
            raise SpoolError(f"spool directory {self.path.parent} does not exist: create it, or set spool.path "
                             "(the systemd unit creates /var/lib/seatmon/collector)")
        try:
            self._ingest = _connect(self.path)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None
        self._ingest.executescript(SCHEMA)
        _add_key_columns(self._ingest)
        _add_incarnations(self._ingest)
        self._writer = _connect(self.path)
        self._rollup = _connect(self.path)
        # Counters read by any thread (/health, the watch loop): their own connection.
        self._counter = _connect(self.path)
        self._counter_lock = threading.Lock()
        self._lock = threading.Lock()
        self.commit_delay_s = commit_delay_s
        self._depth = self._ingest.execute("SELECT count(*) FROM outbox").fetchone()[0]
        row = self._ingest.execute("SELECT min(received_ms) FROM outbox").fetchone()
        self._oldest_ms = row[0]

    # ---- ingest side ------------------------------------------------------

    def load_units(self) -> dict[str, UnitState]:
        units = {}
        for row in self._ingest.execute(
                "SELECT unit, site, mark, above, known, unit_acked, lost, last_seen_ms, boot, inc, held FROM units"):
            unit, site, mark, above, known, unit_acked, lost, last_seen_ms, boot, inc, held = row
            units[unit_key(site, unit, inc)] = UnitState(
                unit, site, mark, UnitState.above_from_json(above), bool(known), unit_acked, lost, last_seen_ms,
                boot, inc, UnitState.above_from_json(held))
        return units

    def load_clocks(self) -> dict[BootKey, BootClock]:
        clocks = {}
        for site, unit, inc, boot, est, offset in self._ingest.execute(
                "SELECT site, unit, inc, boot, est_ms, offset_ms FROM boot_clock"):
            clocks[(site, unit, inc, boot)] = BootClock(est, offset)
        for site, unit, inc, boot, seq, event in self._ingest.execute(
                "SELECT site, unit, inc, boot, seq, event FROM unsynced_held"):
            clocks[(site, unit, inc, boot)].held[seq] = json.loads(event)
        return clocks

    def commit(self, lines: list[tuple], quarantined: list[tuple[int, str, bytes, str]],
               units: list[UnitState], clock_ops: list[tuple] = ()) -> None:
        """Store one batch durably (returns after the fsync). `lines` holds
        (line, received_ms) or (line, received_ms, roll-up key or None);
        `clock_ops` what collector/reclock.py decided."""
        db = self._ingest
        db.execute("BEGIN IMMEDIATE")
        try:
            if lines:
                db.executemany("INSERT INTO outbox (line, received_ms, r_site, r_seat, r_start) VALUES (?, ?, ?, ?, ?)",
                               [(row[0], row[1], *(row[2] if len(row) > 2 and row[2] else _NO_KEY)) for row in lines])
            if quarantined:
                db.executemany("INSERT INTO quarantine (received_ms, topic, payload, reason) VALUES (?, ?, ?, ?)",
                               quarantined)
            if units:
                db.executemany(
                    "INSERT OR REPLACE INTO units (unit, site, mark, above, known, unit_acked, lost, last_seen_ms, boot,"
                    " inc, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(u.unit, u.site, u.mark, u.above_json(), int(u.known), u.unit_acked, u.lost,
                      u.last_seen_ms, u.boot, u.inc, u.held_json()) for u in units])
            for op in clock_ops:
                db.execute(*_CLOCK_SQL[op[0]](op[1:]))
            if self.commit_delay_s:
                time.sleep(self.commit_delay_s)  # test-only knob: a slow disk
            # Count the lines before they become visible: the writer may read and
            # delete them the moment COMMIT returns.
            self._count_in(lines)
            try:
                db.execute("COMMIT")
            except BaseException:
                self._count_in(lines, -1)
                raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _count_in(self, lines: list[tuple[str, int]], sign: int = 1) -> None:
        if not lines:
            return
        with self._lock:
            self._depth += sign * len(lines)
            if sign > 0 and self._oldest_ms is None:
                self._oldest_ms = lines[0][1]

    # ---- writer side ------------------------------------------------------

    def read_batch(self, limit: int) -> list[tuple[int, str, int, tuple | None]]:
        """The oldest lines: (id, line, received_ms, roll-up key or None)."""
        return [(i, line, received, (site, seat, start) if site is not None else None)
                for i, line, received, site, seat, start in self._writer.execute(
                    "SELECT id, line, received_ms, r_site, r_seat, r_start FROM outbox ORDER BY id LIMIT ?",
                    (limit,))]

    def delete_through(self, last_id: int, count: int, *, mark_dirty: bool = True) -> None:
        """InfluxDB stored the lines up to `last_id`: remove them and, in the
        same transaction, mark their roll-up keys dirty (a key stored again
        starts its passes over)."""
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            if mark_dirty:
                db.execute(
                    "INSERT INTO rollup_dirty (site, seat, start_ms) SELECT DISTINCT r_site, r_seat, r_start"
                    " FROM outbox WHERE id <= ? AND r_site IS NOT NULL"
                    " ON CONFLICT (site, seat, start_ms) DO UPDATE SET gen = gen + 1, passes = 0, due_ms = 0",
                    (last_id,))
            db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        row = self._writer.execute("SELECT received_ms FROM outbox ORDER BY id LIMIT 1").fetchone()
        with self._lock:
            self._depth -= count
            self._oldest_ms = row[0] if row else None

    def quarantine_lines(self, rows: list[tuple[str, int]], reason: str) -> None:
        """Lines InfluxDB refused (a 4xx): keep them, with the reason."""
        self._writer.executemany(
            "INSERT INTO quarantine (received_ms, topic, payload, reason) VALUES (?, ?, ?, ?)",
            [(received, "(influx write)", line.encode(), reason) for line, received in rows])

    # ---- roll-up side ------------------------------------------------------

    def dirty_due(self, now_ms: int, limit: int) -> list[tuple[str, str, int, int, int]]:
        """Dirty keys due for a refresh: (site, seat, start_ms, gen, passes)."""
        return self._rollup.execute(
            "SELECT site, seat, start_ms, gen, passes FROM rollup_dirty WHERE due_ms <= ?"
            " ORDER BY due_ms, start_ms LIMIT ?", (now_ms, limit)).fetchall()

    def dirty_done(self, again: list[tuple], finished: list[tuple], due_ms: int) -> None:
        """After a successful refresh of keys (site, seat, start_ms, gen):
        `again` get another pass at `due_ms`, `finished` are removed. A key
        whose gen moved on meanwhile (new rows stored) is left as it is."""
        db = self._rollup
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("UPDATE rollup_dirty SET passes = passes + 1, due_ms = ?"
                           " WHERE site = ? AND seat = ? AND start_ms = ? AND gen = ?",
                           [(due_ms, *key) for key in again])
            db.executemany("DELETE FROM rollup_dirty WHERE site = ? AND seat = ? AND start_ms = ? AND gen = ?",
                           finished)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def dirty_span(self) -> tuple[int, int, int]:
        """(keys waiting, first interval start, last interval start; 0, 0 when none)."""
        with self._counter_lock:
            n, lo, hi = self._counter.execute(
                "SELECT count(*), min(start_ms), max(start_ms) FROM rollup_dirty").fetchone()
        return n, lo or 0, hi or 0

    def dirty_count(self) -> int:
        """Keys waiting for a refresh, as the spool holds them now (any thread)."""
        with self._counter_lock:
            return self._counter.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0]

    # ---- counters -----------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def oldest_ms(self) -> int | None:
        return self._oldest_ms

    def close(self) -> None:
        self._ingest.close()
        self._writer.close()
        self._rollup.close()
        self._counter.close()


_NO_KEY = (None, None, None)
_CLOCK_SQL = {
    "boot": lambda a: ("INSERT OR REPLACE INTO boot_clock (site, unit, inc, boot, est_ms, offset_ms)"
                       " VALUES (?, ?, ?, ?, ?, ?)", a),
    "held": lambda a: ("INSERT OR REPLACE INTO unsynced_held (site, unit, inc, boot, seq, event)"
                       " VALUES (?, ?, ?, ?, ?, ?)", a),
    "release": lambda a: ("DELETE FROM unsynced_held WHERE site = ? AND unit = ? AND inc = ? AND boot = ?", a),
}


class WritesInFlight:
    """The roll-up keys of the lines the writer is sending to InfluxDB, so
    that a refresh never derives from rows whose write may still be in
    flight: InfluxDB 1.x makes a point's fields visible one by one, and a
    read during the write can return the point with fields missing.

    A write is in flight from its first attempt until its lines leave the
    spool (a write that failed, e.g. timed out on a stalled server, may
    still land). A refresh reads inside `watch()`; its `tainted` keys then
    hold every key a write had in flight at any moment of the read. One
    writer: one write at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._writes = 0  # writes begun so far
        self._current: frozenset = frozenset()  # the keys of the write in flight
        self._last: dict = {}  # key -> number of the last write begun with it (while reads are open)
        self._open: list["_Watch"] = []

    def begin(self, keys) -> None:
        with self._lock:
            self._writes += 1
            self._current = frozenset(keys)
            if self._open:
                for key in self._current:
                    self._last[key] = self._writes

    def end(self) -> None:
        with self._lock:
            self._current = frozenset()

    def watch(self) -> "_Watch":
        return _Watch(self)


class _Watch:
    def __init__(self, owner: WritesInFlight):
        self.owner = owner
        self.tainted: set = set()

    def __enter__(self) -> "_Watch":
        o = self.owner
        with o._lock:
            self._since = o._writes
            self._at_start = o._current
            o._open.append(self)
        return self

    def __exit__(self, *exc) -> None:
        o = self.owner
        with o._lock:
            self.tainted = set(self._at_start) | set(o._current)
            self.tainted.update(key for key, n in o._last.items() if n > self._since)
            o._open.remove(self)
            oldest = min((w._since for w in o._open), default=o._writes)
            o._last = {key: n for key, n in o._last.items() if n > oldest}


def _add_key_columns(db: sqlite3.Connection) -> None:
    """Spools made before roll-ups lack outbox's key columns: add them (their
    old lines carry no key; `seatmon collect rollup` rebuilds such ranges)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for name, kind in (("r_site", "TEXT"), ("r_seat", "TEXT"), ("r_start", "INTEGER")):
        if name not in have:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")


def _add_incarnations(db: sqlite3.Connection) -> None:
    """Spools made before board incarnations key `units` by (site, unit):
    rebuild the table keyed by (site, unit, inc), their rows as the legacy
    incarnation ''."""
    have = {row[1] for row in db.execute("PRAGMA table_info(units)")}
    if "inc" in have:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE units RENAME TO units_before_inc")
        db.execute(UNITS_TABLE)
        db.execute("INSERT INTO units (unit, site, mark, above, known, unit_acked, lost, last_seen_ms, boot)"
                   " SELECT unit, site, mark, above, known, unit_acked, lost, last_seen_ms, boot FROM units_before_inc")
        db.execute("DROP TABLE units_before_inc")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


# ---- quarantine access for the CLI ------------------------------------------

def open_readonly(path: str | Path) -> sqlite3.Connection:
    if not Path(path).exists():
        raise FileNotFoundError(f"spool {path} does not exist (run `seatmon collect init-db` or start the collector)")
    db = _connect(Path(path))
    db.executescript(SCHEMA)
    _add_key_columns(db)
    _add_incarnations(db)
    return db


def quarantine_list(db: sqlite3.Connection, limit: int = 50, include_replayed: bool = False) -> list[tuple]:
    where = "" if include_replayed else "WHERE replayed_ms IS NULL"
    return db.execute(f"SELECT id, received_ms, topic, reason, length(payload), replayed_ms FROM quarantine {where}"
                      " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()


def quarantine_get(db: sqlite3.Connection, qid: int) -> tuple | None:
    return db.execute("SELECT id, received_ms, topic, payload, reason, replayed_ms FROM quarantine WHERE id = ?",
                      (qid,)).fetchone()


def quarantine_mark_replayed(db: sqlite3.Connection, qid: int) -> None:
    db.execute("UPDATE quarantine SET replayed_ms = ? WHERE id = ?", (int(time.time() * 1000), qid))


def quarantine_count(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
