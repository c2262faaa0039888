# Crash-safe, append-only event journal on flash.
#
# Records live in small segment files (j000001.log, ...) so that LittleFS,
# which rewrites the last block on every sync of an appended file, wears
# little, and so old segments can be removed whole. One record:
#
#   b"@" + 4 hex digits payload length + payload (protocol JSON)
#        + 8 hex digits CRC-32 of the payload + b"\n"
#
# A power cut can tear only the last record of the segment being written;
# reading stops there (the record is dropped) and that segment is never
# appended to again, so earlier records are never affected.
#
# journal.st holds {"boot", "ack", "dropped", "seg", "inc"} and is replaced
# atomically (write journal.tmp, sync, rename). seq never restarts: on open
# the next seq is max(highest seq on flash, ack mark) + 1.
#
# A journal that starts empty (a new board, an erased or re-flashed one)
# starts seq at 1 again, so it is a new incarnation of the unit: it takes a
# new id (`inc`) that every event carries and every ack must name, so that
# nothing of it is confused with what an earlier board sent under the same
# unit id. A journal from before incarnations keeps "" (sent as no field).

import binascii
import json

from shared import protocol

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, List, Tuple

STATE = "journal.st"
STATE_TMP = "journal.tmp"
_HEAD = 5  # b"@" + 4 hex length
_TAIL = 9  # 8 hex CRC + b"\n"
_STATE_MAX = 256  # bytes; the state is ~60


def seg_name(n):
    return "j%06d.log" % n


def _seg_number(name):
    if len(name) == 11 and name[0] == "j" and name[7:] == ".log" and name[1:7].isdigit():
        return int(name[1:7])
    return None


def encode_record(payload):
    # One formatting: concatenating the parts copied the record four times.
    return b"@%04x%s%08x\n" % (len(payload), payload, binascii.crc32(payload) & 0xFFFFFFFF)


class Records:
    """The records of one segment file, read one at a time so that memory
    stays at one record whatever the segment size:

        r = Records(fh); p = r.next()   payload bytes, or None at the end
        r.torn                          it ended at an incomplete or corrupt record
        r.valid                         bytes of whole records before that point
    """

    def __init__(self, fh):
        self.fh = fh
        self.valid = 0
        self.torn = False

    def _stop(self):
        self.torn = True
        return None

    def next(self):
        if self.torn:
            return None
        head = self.fh.read(_HEAD)
        if not head:
            return None
        if len(head) < _HEAD or head[0] != 0x40:  # b"@"
            return self._stop()
        try:
            size = int(head[1:], 16)
        except ValueError:
            return self._stop()
        if size > protocol.MAX_PAYLOAD:  # no valid record is that long: do not allocate it
            return self._stop()
        payload = self.fh.read(size)
        tail = self.fh.read(_TAIL)
        if len(payload) < size or len(tail) < _TAIL or tail[8] != 0x0A:  # b"\n"
            return self._stop()
        try:
            crc = int(tail[:8], 16)
        except ValueError:
            return self._stop()
        if binascii.crc32(payload) & 0xFFFFFFFF != crc:
            return self._stop()
        self.valid += _HEAD + size + _TAIL
        return payload


def _seq_of(payload):
    return json.loads(payload)["seq"]


class Journal:
    """Open at boot: increments and persists the boot counter.

    append(event) -> seq      assigns boot/seq, validates, writes (not yet durable)
    sync()                    makes every appended record durable
    synced_seq                highest seq known durable: send nothing above it
    entries(after, limit)     [(seq, payload bytes)] durable records above `after`
    ack(seq, inc)             the collector handled everything of incarnation inc up to seq
    ack_mark, depth(), dropped, boot, next_seq, inc

    new_inc: a function that returns a new incarnation id, called only when
    the journal starts empty. unit: the unit id the board is provisioned as;
    a journal another unit left on the board is not this unit's to send (its
    records name the other unit): it is removed, `discarded` says how many
    of its events were not acknowledged, and the journal starts empty.
    """

    def __init__(self, fs, segment_bytes=4096, segments=16, new_inc=None, unit=None):
        self.fs = fs
        self.segment_bytes = segment_bytes
        self.max_segments = segments
        state = self._load_state()
        self.boot = state.get("boot", 0) + 1
        self.ack_mark = state.get("ack", 0)
        self.dropped = state.get("dropped", 0)
        last_seg = state.get("seg", 0)
        # Index: [segment number, first seq, last seq, bytes] per segment.
        self.segs = []
        self.torn = 0
        active_ok = False
        names = []
        for name in fs.list():
            num = _seg_number(name)
            if num is not None:
                names.append(num)
        names.sort()
        for num in names:
            first, last, valid, torn = self._scan(num)
            if torn:
                self.torn += 1
            if first is None:
                fs.remove(seg_name(num))
                continue
            self.segs.append([num, first, last, valid])
            active_ok = not torn
            last_seg = max(last_seg, num)
        self.unit = unit
        self.discarded = 0
        if unit is not None and state.get("unit", unit) != unit:
            self.discarded = self.depth()
            for seg in self.segs:
                fs.remove(seg_name(seg[0]))
            self.segs = []
            self.ack_mark = self.dropped = 0
            state = {}
        top = self.segs[-1][2] if self.segs else 0
        if "inc" in state:
            self.inc = state["inc"]
        elif self.segs:  # no state: the records say whose they are
            self.inc = self._newest_inc()
        elif not state and new_inc is not None:
            self.inc = new_inc()  # an empty journal: a new incarnation
        else:
            self.inc = ""  # a journal from before incarnations
        self.next_seq = max(top, self.ack_mark) + 1
        self.synced_seq = self.next_seq - 1
        self._last_seg = last_seg
        # Keep appending to the newest segment only if it ended cleanly.
        # [num, first seq, last seq, bytes] of the segment appended to
        self.active = self.segs[-1] if (self.segs and active_ok) else None  # type: Any
        self._dirty = False
        self._save_state()
        self._remove_acked()

    def _scan(self, num):
        """-> (first seq, last seq, bytes of whole records, torn) of a segment;
        the seqs are None if it holds no whole record."""
        fh = self.fs.open_read(seg_name(num))
        if fh is None:
            return None, None, 0, False
        try:
            r = Records(fh)
            first = last = None
            p = r.next()
            while p is not None:
                last = p
                if first is None:
                    first = _seq_of(p)
                p = r.next()
            return first, (None if last is None else _seq_of(last)), r.valid, r.torn
        finally:
            fh.close()

    def _newest_inc(self):
        fh = self.fs.open_read(seg_name(self.segs[-1][0]))
        if fh is None:
            return ""
        try:
            return json.loads(Records(fh).next()).get("inc", "")
        finally:
            fh.close()

    # ---- state ----------------------------------------------------------
    def _load_state(self):
        for name in (STATE, STATE_TMP):
            fh = self.fs.open_read(name)
            if fh is None:
                continue
            try:
                data = fh.read(_STATE_MAX)
            finally:
                fh.close()
            if data:
                try:
                    st = json.loads(data)
                    if isinstance(st, dict):
                        return st
                except ValueError:
                    pass  # torn temp file: fall back
        return {}

    def _save_state(self):
        st = {"boot": self.boot, "ack": self.ack_mark, "dropped": self.dropped, "seg": self._last_seg}
        if self.inc:
            st["inc"] = self.inc
        if self.unit is not None:
            st["unit"] = self.unit
        data = json.dumps(st).encode()
        self.fs.remove(STATE_TMP)
        self.fs.append(STATE_TMP, data)
        self.fs.sync(STATE_TMP)
        self.fs.rename(STATE_TMP, STATE)

    # ---- writing ----------------------------------------------------------
    def append(self, event):
        """Give `event` (a protocol event dict without boot/seq) its boot and
        seq, validate it and append it. Returns the seq. Raises ProtocolError
        for an invalid event (nothing is written then)."""
        seq = self.next_seq
        event["boot"] = self.boot
        event["seq"] = seq
        if self.inc:
            event["inc"] = self.inc
        payload = protocol.encode(protocol.EVENT, event)
        rec = encode_record(payload)
        if self.active is None or self.active[3] + len(rec) > self.segment_bytes:
            self._rotate()
        self.fs.append(seg_name(self.active[0]), rec)
        self.next_seq = seq + 1
        self.active[2] = seq
        self.active[3] += len(rec)
        self._dirty = True
        return seq

    def _rotate(self):
        if self.active is not None and self._dirty:
            self.sync()
        self._last_seg += 1
        self.active = [self._last_seg, self.next_seq, self.next_seq - 1, 0]
        self.segs.append(self.active)
        while len(self.segs) > self.max_segments:
            self._drop_oldest()

    def _drop_oldest(self):
        num, first, last, _ = self.segs[0]
        lost = last - max(first - 1, self.ack_mark)
        if lost > 0:
            self.dropped += lost
        if last > self.ack_mark:
            self.ack_mark = last
        self._save_state()  # mark first, so no seq can be reused after the removal
        self.segs.pop(0)
        self.fs.remove(seg_name(num))

    def sync(self):
        """Make every appended record durable (one flash sync)."""
        if self._dirty and self.active is not None:
            self.fs.sync(seg_name(self.active[0]))
            self._dirty = False
        self.synced_seq = self.next_seq - 1

    # ---- reading and acknowledging ------------------------------------------
    def entries(self, after=None, limit=16):
        """Durable records with seq > after (default: the ack mark), oldest
        first, at most `limit`: [(seq, payload bytes)]."""
        if after is None or after < self.ack_mark:
            after = self.ack_mark
        out = []  # type: List[Tuple[int, bytes]]
        for num, first, last, _ in self.segs:
            if last <= after or first > self.synced_seq:
                continue
            fh = self.fs.open_read(seg_name(num))
            if fh is None:
                continue
            try:
                r = Records(fh)
                seq = first
                p = r.next()
                while p is not None:
                    if seq > self.synced_seq:
                        return out
                    if seq > after:
                        out.append((seq, p))
                        if len(out) >= limit:
                            return out
                    seq += 1
                    p = r.next()
            finally:
                fh.close()
        return out

    def ack(self, seq, inc=""):
        """The collector durably holds everything of incarnation `inc` up to
        `seq`: remove whole segments at or below the mark (the active one
        stays until rotated). An ack for another incarnation, or above the
        last seq written, is another board's (this one's journal restarted):
        it is ignored, never clamped onto this journal."""
        if inc != self.inc or seq > self.next_seq - 1 or seq <= self.ack_mark:
            return
        self.ack_mark = seq
        self._remove_acked()

    def _remove_acked(self):
        done = 0
        while done < len(self.segs) and self.segs[done][2] <= self.ack_mark and self.segs[done] is not self.active:
            done += 1
        if not done:
            return
        self._save_state()
        for _ in range(done):
            self.fs.remove(seg_name(self.segs.pop(0)[0]))

    def depth(self):
        """Records not yet acknowledged."""
        n = 0
        for _, first, last, _ in self.segs:
            lo = first - 1 if first - 1 > self.ack_mark else self.ack_mark
            if last > lo:
                n += last - lo
        return n

    def heartbeat_fields(self):
        out = {"journal_depth": self.depth(), "dropped": self.dropped, "acked": self.ack_mark}
        if self.inc:
            out["inc"] = self.inc
        return out
