"""Journal cases under CPython on the in-memory flash (the same cases run
under MicroPython in test_micropython.py), plus the real-directory
filesystem (DirFS), which only CPython can exercise here since the
MicroPython test runtime has a read-only filesystem."""

import importlib

import pytest

from firmware import journal
from firmware.flashfs import DirFS

SUITES = ["firmware_journal_cases", "firmware_powercut_cases", "firmware_powercut2_cases"]
CASES = []
for _suite in SUITES:
    _mod = importlib.import_module("tests.portable." + _suite)
    CASES += [(_suite, n) for n in sorted(dir(_mod)) if n.startswith("test_")]


@pytest.mark.parametrize("suite,name", CASES, ids=[s + "." + n for s, n in CASES])
def test_journal_case(suite, name):
    getattr(importlib.import_module("tests.portable." + suite), name)()


def _event(n):
    return {"v": 1, "kind": "outgoing", "site": "hq", "unit": "u-0001", "seat": "A-01",
            "ts": 1795392000000 + n, "clock": "ntp", "talk_ms": n}


def test_dirfs_journal_survives_reopen_and_a_torn_tail(tmp_path):
    root = str(tmp_path / "journal")
    fs = DirFS(root)
    j = journal.Journal(fs, segment_bytes=700)
    for i in range(6):
        j.append(_event(i))
    j.sync()
    fs.close()
    segs = sorted(p.name for p in (tmp_path / "journal").glob("j*.log"))
    assert len(segs) >= 2
    # Tear the newest segment's last record as a power cut would.
    last = tmp_path / "journal" / segs[-1]
    last.write_bytes(last.read_bytes()[:-10])
    j2 = journal.Journal(DirFS(root), segment_bytes=700)
    assert j2.boot == 2
    assert j2.torn == 1
    seqs = [s for s, _ in j2.entries(None, 100)]
    assert seqs == [1, 2, 3, 4, 5]
    assert j2.append(_event(9)) == 6
    j2.sync()
    # The torn segment is never appended to again: the new record opened a new one.
    assert sorted(p.name for p in (tmp_path / "journal").glob("j*.log"))[-1] != segs[-1]
    j2.ack(6)
    assert j2.depth() == 0
    j3 = journal.Journal(DirFS(root), segment_bytes=700)
    assert j3.next_seq == 7
