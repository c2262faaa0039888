# `vfs` of the virtual ESP32 board: the unix port's own, as the board's
# image has it. A stock esp32 image is built without MICROPY_VFS_ROM: no
# `rom_ioctl`, no `VfsRom` (mpremote's `romfs query` then says "ROMFS is not
# enabled on this device"). The custom image (SEATMON_VB_ROMFS=1) has both:
# `rom_ioctl`, which this unix build lacks, is modelled below. vboot registers
# this module as sys.modules["vfs"], so `import vfs` (mpremote's `romfs
# query|deploy`, the firmware) finds it, as a file could not shadow the built-in.
#
# The romfs partition is a host file beside the flash image
# (SEATMON_VB_ROM; none: a board whose partition table has no romfs
# partition). As on the esp32 port, rom_ioctl(1) counts the partitions and
# rom_ioctl(2, 0) returns the partition object: a block device (erase,
# writeblocks, readblocks: what `mpremote romfs deploy` uses) whose buffer is
# the ROMFS image as this boot found it (what `romfs query` and VfsRom read;
# on an ESP32 the flash, memory-mapped, here bytes in the GC heap).
import os

import vfs as _vfs

for _name in dir(_vfs):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_vfs, _name)

BLOCK = 4096
EINVAL = 22
HEADER = b"\xd2\xcd\x31"
_path = os.getenv("SEATMON_VB_ROM") or ""
# Opened now, while the host's filesystem is still "/" (vboot mounts the
# board's flash there next).
_file = open(_path, "r+b") if _path else None
_part = None


def image_length(head):
    """Bytes of the ROMFS image that begins `head` (its header holds the
    length as a varuint), or 0 when there is no image."""
    if head[:3] != HEADER:
        return 0
    size = 0
    i = 3
    while i < len(head):
        b = head[i]
        size = (size << 7) | (b & 0x7F)
        i += 1
        if not b & 0x80:
            return i + size
    return 0


class RomPartition(bytearray):
    def _io(self, block, buf, off, write):
        _file.seek(block * BLOCK + (off or 0))
        if write:
            _file.write(buf)
            _file.flush()
        else:
            _file.readinto(buf)

    def readblocks(self, block, buf, off=0):
        self._io(block, buf, off, False)

    def writeblocks(self, block, buf, off=0):
        self._io(block, buf, off, True)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return _file.seek(0, 2) // BLOCK
        if op == 5:  # block size
            return BLOCK
        if op == 6:  # erase a block
            self._io(arg, b"\xff" * BLOCK, 0, True)
            return 0
        return None


def _partition():
    global _part
    if _part is None:
        _file.seek(0)
        head = _file.read(16)
        n = image_length(head)
        _file.seek(0)
        _part = RomPartition(_file.read(n) if n else head)
    return _part


def rom_ioctl(op, *args):
    has = 1 if _file is not None else 0
    if op == 1:
        return has
    if op == 2 and has and args and args[0] == 0:
        return _partition()
    return -EINVAL


def mount_rom():
    """Mount the romfs partition's image at /rom, as the esp32 port does at
    start-up; False when there is no partition or no valid image."""
    if _file is None:
        return False
    part = _partition()
    if part[:3] != HEADER:
        return False
    _vfs.mount(_vfs.VfsRom(part), "/rom")
    return True


if not os.getenv("SEATMON_VB_ROMFS"):  # a stock image: MICROPY_VFS_ROM is 0
    del rom_ioctl
    del VfsRom
