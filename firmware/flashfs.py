# The journal's filesystem seam: the few calls it needs, two implementations.
#
#   list() -> [names]            open_read(name) -> file with read(n), close(); None if missing
#   append(name, data)           sync(name): appended bytes are durable
#   remove(name)                 rename(old, new): atomic replace
#
# Reading goes through a file object so the journal can read a segment a
# record at a time: a whole 64 KB segment does not fit an ESP32's free heap.
#
# DirFS runs on MicroPython (LittleFS) and CPython; MemFS is an in-memory
# flash for tests and the simulator that can cut the power after any byte.

import os

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any


class PowerCut(Exception):
    """Raised by MemFS when its byte budget runs out mid-write."""


class DirFS:
    """Files in one directory, with the active file kept open for appends."""

    def __init__(self, root):
        self.root = root
        self._open_name = None
        self._fh = None  # type: Any  # the open file of _open_name
        try:
            os.mkdir(root)
        except OSError:
            pass  # already there

    def _path(self, name):
        return self.root + "/" + name

    def list(self):
        return os.listdir(self.root)

    def open_read(self, name):
        if name == self._open_name:
            self._fh.flush()
        try:
            return open(self._path(name), "rb")
        except OSError:
            return None

    def append(self, name, data):
        if name != self._open_name:
            self._close()
            self._fh = open(self._path(name), "ab")
            self._open_name = name
        self._fh.write(data)

    def sync(self, name):
        if name == self._open_name:
            self._fh.flush()
            if hasattr(os, "fsync"):  # CPython; MicroPython's flush() syncs LittleFS
                os.fsync(self._fh.fileno())

    def _close(self):
        if self._fh is not None:
            self._fh.close()
        self._fh = None
        self._open_name = None

    def remove(self, name):
        if name == self._open_name:
            self._close()
        try:
            os.remove(self._path(name))
        except OSError:
            pass

    def rename(self, old, new):
        if old == self._open_name or new == self._open_name:
            self._close()
        try:
            os.remove(self._path(new))  # MicroPython's rename does not replace on every port
        except OSError:
            pass
        os.rename(self._path(old), self._path(new))

    def close(self):
        self._close()


class _MemReader:
    """A read-only file over a MemFS buffer (it sees later appends, as a file does)."""

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def read(self, n=-1):
        end = len(self.buf) if n < 0 else self.pos + n
        data = bytes(self.buf[self.pos:end])
        self.pos += len(data)
        return data

    def close(self):
        pass


class MemFS:
    """In-memory flash. `budget` is how many more bytes may reach flash before
    the power fails (None: no cut); the write that exceeds it keeps only the
    bytes within budget and raises PowerCut. Appended bytes are counted as on
    flash at once (the worst case for torn-record detection); lose_unsynced()
    models the other case, where a cut loses what was not synced."""

    def __init__(self):
        self.files = {}
        self.synced = {}  # name -> length known durable
        self.budget = None
        self.syncs = 0
        self.bytes_written = 0

    def _spend(self, n):
        if self.budget is None:
            return n
        if n <= self.budget:
            self.budget -= n
            return n
        n, self.budget = self.budget, 0
        return n

    def list(self):
        return list(self.files)

    def open_read(self, name):
        buf = self.files.get(name)
        return None if buf is None else _MemReader(buf)

    def append(self, name, data):
        if self.budget == 0 and data:
            raise PowerCut()
        buf = self.files.get(name)
        if buf is None:
            buf = bytearray()
            self.files[name] = buf
        n = self._spend(len(data))
        buf.extend(data if n == len(data) else data[:n])  # no copy unless the power is cut
        self.bytes_written += n
        if n < len(data):
            raise PowerCut()

    def sync(self, name):
        self.syncs += 1
        self.synced[name] = len(self.files.get(name, b""))

    def remove(self, name):
        if name in self.files:
            del self.files[name]
        if name in self.synced:
            del self.synced[name]

    def rename(self, old, new):
        if self.budget == 0:
            raise PowerCut()
        self.files[new] = self.files.pop(old)
        self.synced[new] = self.synced.pop(old, len(self.files[new]))

    def lose_unsynced(self):
        for name in list(self.files):
            keep = self.synced.get(name, 0)
            if keep == 0:
                del self.files[name]
            else:
                self.files[name] = self.files[name][:keep]

    def close(self):
        pass
