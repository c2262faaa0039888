# Building an over-the-air update image (the format firmware/ota.py reads):
# the host's `seatmon fleet update` (tools/fleet.py) and the portable tests
# use it; the unit never imports it. Portable MicroPython.
#
#   stream = manifest JSON ({"files": [[path, size, sha256], ...]}) + the files' bytes, in order
#   offer  = signed JSON: version, chip, hardware, the stream's size and SHA-256,
#            the manifest's size and SHA-256, chunk size, force

import binascii
import hashlib
import json

from firmware import ota


def _hex(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def build(files, version, chip, hardware, key, force=False, chunk=ota.CHUNK):
    """files: [(path under the code directory, bytes)] -> (signed offer, stream).
    Sorted by path and serialised with sorted keys: the same files give the
    same bytes."""
    files = sorted(files)
    manifest = json.dumps({"files": [[p, len(d), _hex(d)] for p, d in files]}).encode()
    stream = manifest + b"".join([d for _, d in files])
    offer = {"v": 1, "version": version, "chip": chip, "hardware": hardware, "size": len(stream),
             "sha256": _hex(stream), "manifest_size": len(manifest), "manifest_sha256": _hex(manifest),
             "chunk": chunk, "force": force}
    # Keys in a fixed order (MicroPython dicts are unordered): the same text everywhere.
    text = "{" + ", ".join([json.dumps(k) + ": " + json.dumps(offer[k]) for k in sorted(offer)]) + "}"
    return ota.sign_offer(key, text), stream


def chunks(offer_fields, stream):
    """The stream as chunk payloads, in order."""
    ident = ota.image_id(offer_fields)
    size = offer_fields["chunk"]
    out = []
    for i in range(ota.chunk_count(offer_fields)):
        out.append(ota.encode_chunk(i, ident, stream[i * size:(i + 1) * size]))
    return out


def fields(offer):
    """The signed offer's fields, unchecked (the host's own view)."""
    return json.loads(offer[:offer.rfind(b"\n")])
