# An in-memory file tree with the operations firmware/ota.py's Receiver uses,
# that can cut the power after a number of written bytes (as flashfs.MemFS
# does for the journal). Portable MicroPython; tests only.

from firmware.flashfs import PowerCut


class _Writer:
    def __init__(self, tree, path):
        self.tree = tree
        self.path = path
        tree.files[path] = bytearray()

    def write(self, data):
        self.tree.spend(self.path, data)
        return len(data)

    def close(self):
        pass


class MemTree:
    def __init__(self):
        self.files = {}  # path -> bytearray
        self.dirs = {}
        self.budget = None  # bytes that may still reach flash (None: no cut)
        self.written = 0

    def spend(self, path, data):
        n = len(data)
        if self.budget is not None:
            if self.budget == 0 and n:
                raise PowerCut()
            if n > self.budget:
                self.files[path].extend(bytes(data[:self.budget]))
                self.written += self.budget
                self.budget = 0
                raise PowerCut()
            self.budget -= n
        self.files[path].extend(bytes(data))
        self.written += n

    def rmtree(self, path):
        for p in list(self.files):
            if p.startswith(path):
                del self.files[p]
        for d in list(self.dirs):
            if d.startswith(path.rstrip("/")):
                del self.dirs[d]

    def makedirs(self, path):
        self.dirs[path.rstrip("/")] = True

    def open_write(self, path):
        return _Writer(self, path)

    def write_file(self, path, data):
        w = _Writer(self, path)
        w.write(data)

    def exists(self, path):
        return path in self.files or path.rstrip("/") in self.dirs
