# Start-up of the virtual ESP32 board on the MicroPython unix port, run by
# virtual/board.py before the REPL: the board's flash (a LittleFS2 image in a
# host file) becomes "/", the ROMFS image in its romfs partition (another
# host file) is mounted at /rom, sys.path becomes the esp32 port's with a
# ROMFS ("", .frozen, /rom, /rom/lib, /lib), then boot.py and (after a hard
# reset or in the friendly REPL) main.py run, as the esp32 port's start-up does.
import os
import sys
import vfs

BLOCK = 4096


class FileFlash:
    """A block device over the image file: the flash, erase blocks of 4 KiB.
    The host may cut the power after a number of block writes, or make the
    block holding some bytes fail its next read (a bad block)."""

    def __init__(self, f, blocks):
        self.f = f
        self.blocks = blocks

    def readblocks(self, n, buf, off=0):
        _vb.receive()
        bad = _vb.state.get("rfail")
        if bad:
            self.f.seek(n * BLOCK)
            if bad in self.f.read(BLOCK):
                _vb.state["rfail"] = None
                _vb.send("readfailed")
                return -5  # -EIO: LittleFS ends the operation, the caller gets OSError(EIO)
        self.f.seek(n * BLOCK + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        _vb.poll()
        left = _vb.state.get("cut", -1)  # -1: no cut armed
        if left == 0:  # the power fails: this write never happens
            _vb.send("powerfail")
            while True:  # the host cuts us off
                time.sleep_ms(100)
        if left > 0:
            _vb.state["cut"] = left - 1
        self.f.seek(n * BLOCK + (off or 0))
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return BLOCK
        if op == 6:  # erase: LittleFS needs none here
            return 0
        return None


def mount_flash():
    image = os.getenv("SEATMON_VB_IMAGE")
    f = open(image, "r+b")
    size = f.seek(0, 2)
    dev = FileFlash(f, size // BLOCK)
    vfs.umount("/")
    try:
        vfs.mount(vfs.VfsLfs2(dev), "/")
    except OSError:  # a blank flash: format it, as the esp32 port's _boot.py does
        vfs.VfsLfs2.mkfs(dev)
        vfs.mount(vfs.VfsLfs2(dev), "/")
    os.chdir("/")
    # .frozen holds the unix port's asyncio and ssl (an ESP32's are frozen too)
    if _vbvfs.mount_rom():
        sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", "/lib"]
    else:
        sys.path[:] = ["", ".frozen", "/lib"]
    return dev


# The board modules are the port's built-ins on an ESP32: import them from the
# host before the flash becomes "/", so they are there without a trace on it.
sys.path[:] = [".frozen"]
import asyncio  # noqa: E402,F401  (first: it keeps the port's own tick counter, see lib/time.py)

sys.path[:] = [os.getenv("SEATMON_VB_LIB"), ".frozen"]
import _vb  # noqa: E402,F401  (the wire to the host: the other board modules use it)
import time  # noqa: E402,F401
import machine  # noqa: E402,F401
import network  # noqa: E402,F401
import ntptime  # noqa: E402,F401
import socket  # noqa: E402,F401
import esp32  # noqa: E402,F401
import neopixel  # noqa: E402,F401
import _vbvfs  # noqa: E402
import _vbos  # noqa: E402

sys.modules["vfs"] = _vbvfs  # `import vfs` gets the image's vfs (rom_ioctl only on a ROMFS image)
sys.modules["os"] = _vbos  # `import os` gets the esp32 port's uname()


def run(path):
    try:
        os.stat(path)
    except OSError:
        return
    try:
        exec(open(path).read(), {"__name__": "__main__"})
    except KeyboardInterrupt:
        raise
    except SystemExit:
        pass
    except BaseException as exc:
        sys.print_exception(exc)


mount_flash()
run("boot.py")
if os.getenv("SEATMON_VB_MAIN") == "1":
    _vb.heap_base()
    try:
        run("main.py")
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
print("\x00vboot-repl\x00")  # the host takes it from here (the REPL follows)
