# Journal cases: crash safety, seq/boot persistence, acknowledgement, bounds.
# Run by tests/test_firmware_journal.py (CPython) and, unchanged, inside
# MicroPython by tests/test_micropython.py, on the in-memory flash (MemFS)
# that can cut the power after any byte.

import json

from firmware import journal
from firmware.flashfs import MemFS, PowerCut
from shared import protocol
from tests.portable import mpgc
from tests.portable.check import eq, raises

mpgc.manual()

TS = 1795392000000


def _event(n=0, kind="outgoing"):
    ev = {"v": 1, "kind": kind, "site": "hq", "unit": "u-0001", "seat": "A-01",
          "ts": TS + n, "clock": "ntp"}
    if kind == "outgoing":
        ev["talk_ms"] = n
    return ev


def _seqs(j, after=None, limit=1000):
    return [s for s, _ in j.entries(after, limit)]


def _parse(data):
    """-> (payloads, bytes of whole records, torn) of a segment holding `data`."""
    fs = MemFS()
    fs.append("j000001.log", data)
    r = journal.Records(fs.open_read("j000001.log"))
    out = []
    p = r.next()
    while p is not None:
        out.append(p)
        p = r.next()
    return out, r.valid, r.torn


def test_record_roundtrip_and_torn_tail():
    """A record is found whole; every strict prefix of it reads as torn and
    yields nothing; a flipped byte fails the CRC."""
    rec = journal.encode_record(b'{"a":1}')
    eq(_parse(rec), ([b'{"a":1}'], len(rec), False))
    eq(_parse(rec + rec), ([b'{"a":1}', b'{"a":1}'], 2 * len(rec), False))
    for k in range(len(rec)):
        got, valid, torn = _parse(rec + rec[:k])
        eq((got, valid, torn), ([b'{"a":1}'], len(rec), k > 0), "prefix " + str(k))
    bad = bytearray(rec)
    bad[7] = ord("b")
    eq(_parse(bytes(bad))[2], True)
    return len(rec)


def test_a_record_longer_than_any_event_reads_as_torn():
    """A corrupt length field is not believed (nor allocated): no event
    encodes longer than the protocol's limit."""
    rec = journal.encode_record(b'{"a":1}')
    huge = b"@ffff" + b"x" * 40
    eq(_parse(rec + huge), ([b'{"a":1}'], len(rec), True))
    return protocol.MAX_PAYLOAD


def test_seq_continues_and_boot_counts_across_reboots():
    fs = MemFS()
    j = journal.Journal(fs)
    eq(j.boot, 1)
    eq([j.append(_event(i)) for i in range(3)], [1, 2, 3])
    j.sync()
    j2 = journal.Journal(fs)
    eq(j2.boot, 2)
    eq(j2.append(_event(9)), 4)
    j2.sync()
    eq(_seqs(j2), [1, 2, 3, 4])
    ev = json.loads(j2.entries(3)[0][1])
    eq([ev["boot"], ev["seq"], ev["talk_ms"]], [2, 4, 9])
    return [j.boot, j2.boot]


def test_only_synced_records_are_offered_for_sending():
    """Never send an event before it is on flash: entries() stops at the last
    sync; a power cut that loses unsynced bytes loses only unsent records."""
    fs = MemFS()
    j = journal.Journal(fs)
    j.append(_event(1))
    j.sync()
    j.append(_event(2))
    eq(_seqs(j), [1])
    fs.lose_unsynced()
    j2 = journal.Journal(fs)
    eq(_seqs(j2), [1])
    eq(j2.append(_event(3)), 2)  # seq 2 was never sent, so reusing it is safe
    return j2.boot


def test_syncs_are_batched():
    """Flash wear: appends cost no sync; one sync() covers any number of
    them; a segment is synced once when it fills and the next one starts."""
    fs = MemFS()
    j = journal.Journal(fs, segment_bytes=1200)
    base = fs.syncs
    for i in range(5):
        j.append(_event(i))
    eq(fs.syncs, base)
    j.sync()
    j.sync()  # nothing new: no flash sync
    eq(fs.syncs, base + 1)
    for i in range(10):
        j.append(_event(i))
    segs = len([n for n in fs.list() if n.endswith(".log")])
    eq(fs.syncs - base - 1, segs - 1, "one sync per filled segment")
    return segs


def test_invalid_event_is_rejected_and_writes_nothing():
    fs = MemFS()
    j = journal.Journal(fs)
    bad = _event(1)
    bad["talk_ms"] = "long"
    msg = raises(protocol.ProtocolError, j.append, bad)
    eq(j.next_seq, 1)
    eq(j.append(_event(2)), 1)
    return msg


def test_ack_removes_segments_and_seq_never_restarts():
    """Entries go only when acknowledged; with the journal emptied by acks,
    the persisted mark still keeps seq from restarting after a reboot."""
    fs = MemFS()
    j = journal.Journal(fs, segment_bytes=600)
    for i in range(10):
        j.append(_event(i))
    j.sync()
    segs = len([n for n in fs.list() if n.endswith(".log")])
    eq(segs > 2, True, "several segments")
    j.ack(4)
    eq(j.ack_mark, 4)
    eq(_seqs(j)[0], 5)
    eq(j.depth(), 6)
    j.ack(10)
    eq(j.depth(), 0)
    left = [n for n in fs.list() if n.endswith(".log")]
    eq(len(left), 1, "only the active segment stays")
    j.ack(99)  # beyond what was written: another board's, ignored
    eq(j.ack_mark, 10)
    j2 = journal.Journal(fs, segment_bytes=600)
    eq(j2.append(_event(11)), 11)
    j2.sync()
    # Empty the journal completely, then reboot: seq continues from the mark.
    j2.ack(11)
    for i in range(6):
        j2.append(_event(i))
    j2.sync()
    j2.ack(j2.next_seq - 1)
    top = j2.next_seq - 1
    for name in fs.list():
        if name.endswith(".log"):
            fs.remove(name)  # even with every segment gone
    j3 = journal.Journal(fs, segment_bytes=600)
    eq(j3.next_seq, top + 1)
    return [segs, top]


def test_a_new_journal_is_a_new_incarnation_and_ignores_other_acks():
    """An empty journal takes a new incarnation id, which its events and
    heartbeat carry and every ack must name; an ack above the last seq
    written is another board's. The id survives a reboot, even one that lost
    the state file; a journal from before incarnations keeps none."""
    fs = MemFS()
    j = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "24a160c0ffee-0a0b0c")
    eq(j.inc, "24a160c0ffee-0a0b0c")
    for i in range(3):
        j.append(_event(i))
    j.sync()
    eq([json.loads(p)["inc"] for _, p in j.entries()], ["24a160c0ffee-0a0b0c"] * 3)
    eq(j.heartbeat_fields()["inc"], "24a160c0ffee-0a0b0c")
    for seq, inc in ((2, ""), (2, "24a160c0ffee-ffffff"), (4000, "24a160c0ffee-0a0b0c")):
        j.ack(seq, inc)
        eq(j.ack_mark, 0, "ack %d for %r ignored" % (seq, inc))
    j.ack(2, "24a160c0ffee-0a0b0c")
    eq(j.ack_mark, 2)
    j2 = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "other")
    eq((j2.inc, j2.next_seq), ("24a160c0ffee-0a0b0c", 4))
    fs.remove(journal.STATE)
    j3 = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "other")
    eq(j3.inc, "24a160c0ffee-0a0b0c")
    # The board erased: a new journal, seq from 1 again, under a new id.
    j4 = journal.Journal(MemFS(), segment_bytes=600, new_inc=lambda: "24a160c0ffee-0d0e0f")
    eq((j4.inc, j4.append(_event(9))), ("24a160c0ffee-0d0e0f", 1))
    # A journal from before incarnations: no id, legacy acks apply.
    old = MemFS()
    j5 = journal.Journal(old, segment_bytes=600)
    j5.append(_event(1))
    j5.sync()
    j6 = journal.Journal(old, segment_bytes=600, new_inc=lambda: "other")
    eq(j6.inc, "")
    eq("inc" in json.loads(j6.entries()[0][1]), False)
    j6.ack(1)
    eq(j6.ack_mark, 1)
    return [j.inc, j4.inc]


def test_a_journal_left_by_another_unit_is_removed_and_counted():
    """A board provisioned as another unit: the old unit's journal is not
    sent under the new unit's name; a new incarnation starts at seq 1, and
    the old events not yet acknowledged are counted."""
    fs = MemFS()
    j = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "b-1", unit="u-0001")
    for i in range(8):
        j.append(_event(i))
    j.sync()
    j.ack(5, "b-1")
    j2 = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "b-2", unit="u-0001")
    eq((j2.inc, j2.discarded, j2.next_seq), ("b-1", 0, 9))
    j3 = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "b-3", unit="u-0002")
    eq((j3.inc, j3.discarded, j3.next_seq, j3.ack_mark, j3.entries()), ("b-3", 3, 1, 0, []))
    eq(len([n for n in fs.list() if n.endswith(".log")]), 0)
    eq(j3.append(_event(1)), 1)
    j3.sync()
    j4 = journal.Journal(fs, segment_bytes=600, new_inc=lambda: "b-4", unit="u-0002")
    eq((j4.inc, j4.discarded, j4.next_seq), ("b-3", 0, 2))
    return [j3.discarded]


def test_bounded_size_drops_oldest_and_counts():
    """4 segments of 600 bytes, nothing acknowledged: the oldest segments go,
    `dropped` counts their records, and the ack mark covers them so the
    collector never waits for them."""
    fs = MemFS()
    j = journal.Journal(fs, segment_bytes=600, segments=4)
    per_seg = 600 // len(journal.encode_record(protocol.encode(protocol.EVENT, dict(_event(10), boot=1, seq=10))))
    n = 40
    for i in range(n):
        j.append(_event(10 + i % 10))
    j.sync()
    segs = [x for x in fs.list() if x.endswith(".log")]
    eq(len(segs) <= 4, True)
    seqs = _seqs(j)
    eq(seqs[-1], n)
    eq(seqs[0], j.ack_mark + 1)
    eq(j.dropped, j.ack_mark)
    eq(j.depth(), len(seqs))
    eq(j.heartbeat_fields(), {"journal_depth": len(seqs), "dropped": j.dropped, "acked": j.ack_mark})
    j2 = journal.Journal(fs, segment_bytes=600, segments=4)
    eq(j2.dropped, j.dropped)
    eq(j2.next_seq, n + 1)
    return [per_seg, j.dropped > 0]


def test_power_cut_while_saving_state_keeps_the_old_state():
    """The state file is replaced by rename: a cut while writing the temp
    file leaves the previous boot counter and mark readable."""
    fs = MemFS()
    j = journal.Journal(fs)
    j.append(_event(1))
    j.sync()
    for k in (0, 5, 20):
        fs.budget = k
        try:
            journal.Journal(fs)
        except PowerCut:
            pass
        fs.budget = None
    j2 = journal.Journal(fs)
    eq(j2.boot >= 2, True)
    eq(_seqs(j2), [1])
    eq(j2.append(_event(2)), 2)
    return j2.boot
