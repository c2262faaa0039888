# Over-the-air updates of the unit's code: the pure part (docs/firmware.md#over-the-air-updates).
#
# An update is an offer (one signed JSON message) and a stream of chunks.
# The stream is the manifest (the file list: path, size, SHA-256) followed by
# the files' bytes in the manifest's order. The offer carries the stream's
# size and SHA-256, the manifest's size and SHA-256, the version and the chip
# and hardware revision the image was built for, and an HMAC-SHA256 over the
# offer's text with the key the site provisions over USB (secrets.json
# "ota_key"). MicroPython has no hmac module: hmac_sha256 is the RFC 2104
# construction over hashlib.sha256, which stock ESP32 images have.
#
# The receiver writes each chunk straight into a staging slot beside the
# running code (<root>ota/a or <root>ota/b, each holding the firmware/ and
# shared/ packages) and hashes as it goes: never the whole image in RAM.
#
# The slot state and the boot decision are firmware/otastate.py's: the
# running unit keeps only that module until an offer arrives.

import binascii
import hashlib
import json

from firmware.otastate import SLOT_MANIFEST
from shared.protocol import MAX_PAYLOAD

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

CODE_DIRS = ("firmware", "shared")  # the packages an image may hold
CHUNK = 1024  # stream bytes per chunk: 8 + 1024 bytes, within protocol.MAX_PAYLOAD
HEADER = 8  # a chunk: its index (4 bytes, big-endian), the image id (4 bytes), the data
MANIFEST_MAX = 4096  # the manifest is held in RAM until it is checked
KEY_MIN = 16  # characters of the site's update key
OFFER_KEYS = ("v", "version", "chip", "hardware", "size", "sha256", "manifest_size", "manifest_sha256",
              "chunk", "force")


class UpdateError(ValueError):
    """An update refused or broken: one line saying why."""


# ---- signing ---------------------------------------------------------------------

def _hex(digest):
    return binascii.hexlify(digest).decode()


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) over hashlib: MicroPython has no hmac module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes([b ^ 0x36 for b in key]))
    inner.update(msg)
    outer = hashlib.sha256(bytes([b ^ 0x5C for b in key]))
    outer.update(inner.digest())
    return outer.digest()


def _same(a, b):
    # Compare MACs in time independent of where they differ.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def sign_offer(key, text):
    """The offer as sent: its JSON text, a newline, the MAC in hex."""
    body = text.encode() if isinstance(text, str) else text
    return body + b"\n" + _hex(hmac_sha256(key, body)).encode()


def key_bytes(text):
    """The site's update key as secrets.json holds it -> bytes."""
    if not isinstance(text, str) or len(text) < KEY_MIN:
        raise UpdateError("secrets.json: ota_key: expected a string of at least " + str(KEY_MIN) + " characters")
    return text.encode()


def version_key(version):
    """'1.10.2' -> (1, 10, 2), compared as numbers."""
    parts = []
    for p in version.split("."):
        if not p.isdigit():
            raise UpdateError("version " + repr(version) + ": expected numbers separated by dots")
        parts.append(int(p))
    return tuple(parts)


def _is_hex64(v):
    if not isinstance(v, str) or len(v) != 64:
        return False
    for c in v:
        if c not in "0123456789abcdef":
            return False
    return True


def open_offer(payload, key):
    """An offer as received -> its fields, or UpdateError when it is not signed
    with `key` or not well formed."""
    if key is None:
        raise UpdateError("no update key on this unit (secrets.json ota_key): provision it over USB")
    cut = payload.rfind(b"\n")
    if cut < 0:
        raise UpdateError("offer without a signature")
    body = payload[:cut]
    try:
        mac = payload[cut + 1:].decode()
    except UnicodeError:
        raise UpdateError("offer signature is not hex")
    if not _same(mac, _hex(hmac_sha256(key, body))):
        raise UpdateError("offer signature does not match this site's update key")
    try:
        offer = json.loads(body)
    except ValueError:
        raise UpdateError("offer is not JSON")
    if not isinstance(offer, dict):
        raise UpdateError("offer is not a JSON object")
    for name in OFFER_KEYS:
        if name not in offer:
            raise UpdateError("offer: missing " + name)
    for name in ("size", "manifest_size", "chunk"):
        v = offer[name]
        if not isinstance(v, int) or v is True or v is False or v <= 0:
            raise UpdateError("offer: " + name + ": expected a positive integer")
    for name in ("sha256", "manifest_sha256"):
        if not _is_hex64(offer[name]):
            raise UpdateError("offer: " + name + ": expected 64 hex digits")
    if offer["manifest_size"] > MANIFEST_MAX or offer["manifest_size"] >= offer["size"]:
        raise UpdateError("offer: manifest_size out of range")
    if offer["chunk"] + HEADER > MAX_PAYLOAD:
        raise UpdateError("offer: chunk over the packet cap")
    version_key(offer["version"])
    return offer


def check_offer(offer, chip, hardware, running):
    """Refuse an image for another chip or revision, and a downgrade (or the
    same version) unless the site signed it with force."""
    if offer["chip"] != chip:
        raise UpdateError("image for chip " + str(offer["chip"]) + ", this unit is " + chip)
    if offer["hardware"] != hardware:
        raise UpdateError("image for hardware " + str(offer["hardware"]) + ", this unit is " + hardware)
    if offer["force"] is not True and version_key(offer["version"]) <= version_key(running):
        raise UpdateError("version " + offer["version"] + " is not newer than " + running + " (not forced)")


def image_id(offer):
    """The 4 bytes every chunk of this image carries."""
    return binascii.unhexlify(offer["sha256"][:8])


def chunk_count(offer):
    return (offer["size"] + offer["chunk"] - 1) // offer["chunk"]


def encode_chunk(index, ident, data):
    return bytes([(index >> 24) & 255, (index >> 16) & 255, (index >> 8) & 255, index & 255]) + ident + data


def decode_chunk(payload):
    """-> (index, image id, data)."""
    if len(payload) < HEADER:
        raise UpdateError("chunk shorter than its header")
    index = (payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
    return index, bytes(payload[4:8]), memoryview(payload)[HEADER:]


# ---- receiving into a slot -------------------------------------------------------

def _check_path(path):
    parts = path.split("/")
    if len(parts) < 2 or parts[0] not in CODE_DIRS:
        raise UpdateError("manifest: " + repr(path)[:60] + " is not under " + " or ".join(CODE_DIRS))
    for p in parts:
        if p in ("", ".", ".."):
            raise UpdateError("manifest: bad path " + repr(path)[:60])
    if not (path.endswith(".mpy") or path.endswith(".py")):
        raise UpdateError("manifest: " + repr(path)[:60] + " is not a module")


def parse_manifest(text, body_size):
    """The stream's head -> [(path, size, sha256 hex)], checked."""
    try:
        man = json.loads(text)
    except ValueError:
        raise UpdateError("manifest is not JSON")
    files = man.get("files") if isinstance(man, dict) else None
    if not isinstance(files, list) or not files:
        raise UpdateError("manifest: no files")
    out = []
    total = 0
    for entry in files:
        if not isinstance(entry, list) or len(entry) != 3:
            raise UpdateError("manifest: expected [path, size, sha256] entries")
        path, size, digest = entry
        if not isinstance(path, str):
            raise UpdateError("manifest: path must be a string")
        _check_path(path)
        if not isinstance(size, int) or size is True or size is False or size < 0 or not _is_hex64(digest):
            raise UpdateError("manifest: " + path + ": bad size or sha256")
        total += size
        out.append((path, size, digest))
    if total != body_size:
        raise UpdateError("manifest: files add up to " + str(total) + " bytes, the offer says " + str(body_size))
    return out


class Receiver:
    """Writes one image's stream into `slot_dir` (a path ending in /) through
    `fs` (DirTree, or a test's in-memory tree). feed() takes chunks in order
    and returns the index of the chunk it wants next: a repeated chunk is
    acknowledged again, one from the future is ignored (the sender resends)."""

    def __init__(self, fs, offer, slot_dir):
        self.fs = fs
        self.offer = offer
        self.slot_dir = slot_dir
        self.ident = image_id(offer)
        self.count = chunk_count(offer)
        self.next = 0
        self.pos = 0  # stream bytes written
        self.total = hashlib.sha256()
        self.head = bytearray()
        self.files = None  # type: Any  # [(path, size, sha256)] once the manifest is in
        self.index = 0  # the file being written
        self.left = 0  # its bytes still to come
        self.fh = None  # type: Any
        self.hash = None  # type: Any
        fs.rmtree(slot_dir)
        fs.makedirs(slot_dir)

    def done(self):
        return self.next >= self.count

    def feed(self, index, data):
        if index != self.next or self.done():
            return self.next
        size = self.offer["size"]
        want = min(self.offer["chunk"], size - self.pos)
        if len(data) != want:
            raise UpdateError("chunk " + str(index) + ": " + str(len(data)) + " bytes, expected " + str(want))
        self.total.update(data)
        self._write(data)
        self.pos += len(data)
        self.next += 1
        return self.next

    def _write(self, data):
        off = 0
        n = len(data)
        if self.files is None:
            take = min(self.offer["manifest_size"] - len(self.head), n)
            self.head.extend(data[:take])
            off = take
            if len(self.head) == self.offer["manifest_size"]:
                self._manifest_done()
        while off < n:
            if self.fh is None:
                self._open_next()
            take = min(self.left, n - off)
            part = data[off:off + take]
            self.fh.write(part)
            self.hash.update(part)
            self.left -= take
            off += take
            if self.left == 0:
                self._close_file()

    def _manifest_done(self):
        if _hex(hashlib.sha256(self.head).digest()) != self.offer["manifest_sha256"]:
            raise UpdateError("manifest does not match the offer's SHA-256")
        self.files = parse_manifest(bytes(self.head), self.offer["size"] - self.offer["manifest_size"])
        self.head = bytearray()  # free it: the manifest is rewritten from self.files
        dirs = {}
        for path, _, _ in self.files:
            d = path[:path.rfind("/")]
            dirs[d] = True
        for d in sorted(dirs):
            self.fs.makedirs(self.slot_dir + d)
        while self.index < len(self.files) and self.files[self.index][1] == 0:
            self.fs.write_file(self.slot_dir + self.files[self.index][0], b"")
            self.index += 1

    def _open_next(self):
        path, size, _ = self.files[self.index]
        self.fh = self.fs.open_write(self.slot_dir + path)
        self.hash = hashlib.sha256()
        self.left = size

    def _close_file(self):
        path, _, digest = self.files[self.index]
        self.fh.close()  # MicroPython's close syncs LittleFS
        self.fh = None
        if _hex(self.hash.digest()) != digest:
            raise UpdateError(path + ": SHA-256 does not match the manifest")
        self.index += 1
        while self.index < len(self.files) and self.files[self.index][1] == 0:
            self.fs.write_file(self.slot_dir + self.files[self.index][0], b"")
            self.index += 1

    def finish(self):
        """Verify the whole stream and mark the slot whole (its manifest.json,
        written last). Raises UpdateError; the slot is then left unnamed."""
        if not self.done() or self.pos != self.offer["size"]:
            raise UpdateError("image incomplete")
        if _hex(self.total.digest()) != self.offer["sha256"]:
            raise UpdateError("image SHA-256 does not match the offer")
        man = {"version": self.offer["version"], "sha256": self.offer["sha256"],
               "files": [list(f) for f in self.files]}
        self.fs.write_file(self.slot_dir + SLOT_MANIFEST, json.dumps(man).encode())

    def abort(self):
        if self.fh is not None:
            self.fh.close()
            self.fh = None


# ---- the real filesystem -----------------------------------------------------------

class DirTree:
    """The few tree operations the receiver needs, on os (MicroPython's
    LittleFS, or CPython)."""

    def __init__(self):
        import os
        self.os = os

    def rmtree(self, path):
        path = path.rstrip("/")
        os = self.os
        try:
            entries = list(os.ilistdir(path)) if hasattr(os, "ilistdir") else \
                [(n, 0x4000 if os.path.isdir(path + "/" + n) else 0x8000) for n in os.listdir(path)]  # type: ignore[attr-defined]
        except OSError:
            return
        for e in entries:
            p = path + "/" + e[0]
            if e[1] & 0x4000:
                self.rmtree(p)
            else:
                os.remove(p)
        os.rmdir(path)

    def makedirs(self, path):
        p = ""
        for part in path.strip("/").split("/"):
            p = p + "/" + part if p or path.startswith("/") else part
            try:
                self.os.mkdir(p)
            except OSError:
                pass  # already there

    def open_write(self, path):
        return open(path, "wb")

    def write_file(self, path, data):
        with open(path, "wb") as fh:
            fh.write(data)

    def exists(self, path):
        try:
            self.os.stat(path)
            return True
        except OSError:
            return False
