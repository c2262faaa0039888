# Over-the-air updates, the pure part (firmware/ota.py, firmware/otastate.py): offers, signatures,
# receiving into a slot, the boot decision, and a power cut at every write.
# Run by tests/test_ota.py (CPython) and inside MicroPython by
# tests/test_micropython.py.

import hashlib

from firmware import ota, otastate
from firmware.flashfs import PowerCut
from shared import otaimage
from tests.portable import mpgc
from tests.portable.check import contains, eq, raises
from tests.portable.memtree import MemTree

mpgc.manual()

KEY = b"site-update-key-0123456789"
FILES = [("firmware/__init__.py", b""), ("firmware/core.mpy", b"C" * 1500), ("shared/protocol.mpy", b"P" * 700),
         ("firmware/ota.mpy", bytes(range(256)) * 3)]


def _image(version="0.2.0", chip="esp32", hardware="rev-a", key=KEY, force=False, files=FILES, chunk=256):
    offer, stream = otaimage.build(files, version, chip, hardware, key, force, chunk)
    return offer, stream


def _receive(tree, offer_bytes, stream, key=KEY):
    offer = ota.open_offer(offer_bytes, key)
    rx = ota.Receiver(tree, offer, "/ota/a/")
    for payload in otaimage.chunks(offer, stream):
        index, ident, data = ota.decode_chunk(payload)
        eq(ident, rx.ident, "image id")
        rx.feed(index, data)
    rx.finish()
    return rx


def test_hmac_matches_rfc4231_case_2():
    mac = ota.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    return eq(ota._hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_hmac_with_a_key_longer_than_a_block():
    mac = ota.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
    return eq(ota._hex(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_a_signed_offer_opens_and_is_reproducible():
    a, s1 = _image()
    b, s2 = _image()
    eq(a, b, "same files, same offer")
    eq(s1, s2, "same files, same stream")
    offer = ota.open_offer(a, KEY)
    return [offer["version"], offer["chip"], offer["hardware"], ota.chunk_count(offer)]


def test_an_offer_signed_with_another_key_is_refused():
    offer, _ = _image(key=b"someone-elses-key-000000")
    return contains(raises(ota.UpdateError, ota.open_offer, offer, KEY), "signature")


def test_an_altered_offer_is_refused():
    offer, _ = _image()
    return contains(raises(ota.UpdateError, ota.open_offer, offer.replace(b"0.2.0", b"9.2.0"), KEY), "signature")


def test_a_unit_without_key_refuses():
    offer, _ = _image()
    return contains(raises(ota.UpdateError, ota.open_offer, offer, None), "no update key")


def test_image_for_another_chip_or_revision_is_refused():
    offer = ota.open_offer(_image(chip="esp32-s3")[0], KEY)
    a = raises(ota.UpdateError, ota.check_offer, offer, "esp32", "rev-a", "0.1.0")
    offer = ota.open_offer(_image(hardware="rev-b")[0], KEY)
    b = raises(ota.UpdateError, ota.check_offer, offer, "esp32", "rev-a", "0.1.0")
    return [contains(a, "chip esp32-s3"), contains(b, "hardware rev-b")]


def test_downgrade_refused_unless_forced():
    offer = ota.open_offer(_image(version="0.1.0")[0], KEY)
    why = raises(ota.UpdateError, ota.check_offer, offer, "esp32", "rev-a", "0.10.0")
    same = raises(ota.UpdateError, ota.check_offer, offer, "esp32", "rev-a", "0.1.0")
    ota.check_offer(ota.open_offer(_image(version="0.1.0", force=True)[0], KEY), "esp32", "rev-a", "0.10.0")
    ota.check_offer(ota.open_offer(_image(version="0.10.0")[0], KEY), "esp32", "rev-a", "0.9.9")
    return [contains(why, "not newer"), contains(same, "not newer")]


def test_receiving_writes_every_file_and_the_manifest_last():
    tree = MemTree()
    offer, stream = _image()
    _receive(tree, offer, stream)
    for path, data in FILES:
        eq(bytes(tree.files["/ota/a/" + path]), data, path)
    contains(bytes(tree.files["/ota/a/" + otastate.SLOT_MANIFEST]).decode(), '"0.2.0"')
    return sorted(tree.files)


def test_repeated_and_future_chunks_are_not_written_twice():
    tree = MemTree()
    offer_bytes, stream = _image()
    offer = ota.open_offer(offer_bytes, KEY)
    rx = ota.Receiver(tree, offer, "/ota/a/")
    parts = [ota.decode_chunk(c) for c in otaimage.chunks(offer, stream)]
    wants = [rx.feed(parts[0][0], parts[0][2]), rx.feed(parts[0][0], parts[0][2]), rx.feed(parts[2][0], parts[2][2])]
    for index, _, data in parts[1:]:
        rx.feed(index, data)
    rx.finish()
    eq(bytes(tree.files["/ota/a/firmware/core.mpy"]), b"C" * 1500)
    return wants


def test_a_corrupted_chunk_is_caught_before_the_slot_is_whole():
    tree = MemTree()
    offer_bytes, stream = _image()
    bad = bytearray(stream)
    bad[len(bad) - 10] ^= 0xFF  # in the last file
    offer = ota.open_offer(offer_bytes, KEY)
    rx = ota.Receiver(tree, offer, "/ota/a/")
    why = None
    try:
        for payload in otaimage.chunks(offer, bytes(bad)):
            index, _, data = ota.decode_chunk(payload)
            rx.feed(index, data)
        rx.finish()
    except ota.UpdateError as exc:
        why = str(exc)
    contains(why, "SHA-256")
    eq("/ota/a/" + otastate.SLOT_MANIFEST in tree.files, False, "slot marked whole")
    return why


def test_a_manifest_escaping_the_code_directory_is_refused():
    offer_bytes, stream = _image(files=[("../boot.py", b"x")])
    offer = ota.open_offer(offer_bytes, KEY)
    rx = ota.Receiver(MemTree(), offer, "/ota/a/")
    payload = otaimage.chunks(offer, stream)[0]
    index, _, data = ota.decode_chunk(payload)
    return contains(raises(ota.UpdateError, rx.feed, index, data), "not under")


def _whole(tree):
    return lambda slot: ("/ota/" + slot + "/" + otastate.SLOT_MANIFEST) in tree.files


def test_boot_runs_a_trial_once_then_rolls_back_unless_confirmed():
    tree = MemTree()
    _receive(tree, *_image())
    state = otastate.staged({"active": None}, "a", "0.2.0")
    s1, run1 = otastate.at_boot(state, _whole(tree))
    s2, run2 = otastate.at_boot(s1, _whole(tree))
    eq(run1, "a")
    eq(run2, None)
    eq(otastate.in_trial(s1), True)
    return [s2["report"]["step"], contains(s2["report"]["detail"], "did not confirm"), "trial" in s2]


def test_a_confirmed_trial_becomes_the_active_code_and_the_old_is_kept():
    tree = MemTree()
    _receive(tree, *_image())
    s, run = otastate.at_boot(otastate.staged({"active": None}, "a", "0.2.0"), _whole(tree))
    s = otastate.confirm(s)
    again, run2 = otastate.at_boot(s, _whole(tree))
    eq(again, None, "no change at the next boot")
    eq(run2, "a")
    nxt = otastate.staging_slot(s)
    return [s["active"], s["version"], s["prev"], nxt, s["report"]["step"]]


def test_staging_never_writes_the_active_slot_and_forgets_the_slot_first():
    s = {"active": "a", "version": "0.2.0", "prev": None, "trial": "b", "trial_version": "0.3.0", "tried": False}
    slot = otastate.staging_slot(s)
    cleared = otastate.begin_staging(s, slot)
    return [slot, "trial" in cleared, cleared["active"]]


def test_a_missing_active_slot_falls_back_to_the_provisioned_code():
    s, run = otastate.at_boot({"active": "b", "version": "0.3.0"}, lambda slot: False)
    return [run, s["active"], s["report"]["step"]]


def _update_with_cut(budget, base_tree, offer, parts):
    """One update with the power cut after `budget` bytes (None: none).
    The state file is committed atomically (old or new); -> the slot the next
    boot runs, and whether its files are whole."""
    tree = MemTree()
    for p in base_tree.files:
        tree.files[p] = bytearray(base_tree.files[p])
    committed = {"active": "b", "version": "0.1.5"}
    tree.budget = budget
    try:
        state = otastate.begin_staging(committed, otastate.staging_slot(committed))
        committed = state
        rx = ota.Receiver(tree, offer, "/ota/a/")
        for index, _, data in parts:
            rx.feed(index, data)
        rx.finish()
        committed = otastate.staged(committed, "a", "0.2.0")
    except PowerCut:
        pass
    tree.budget = None
    _, run = otastate.at_boot(committed, _whole(tree))
    whole = True
    for path, data in FILES if run == "a" else [("firmware/old.mpy", b"old")]:
        whole = whole and bytes(tree.files.get("/ota/" + run + "/" + path, b"?")) == data
    return run, whole


def test_power_cut_at_every_written_byte_boots_old_or_new_whole_code():
    # Every byte under CPython; under MicroPython (1 MB heap, no GC: mpgc.py)
    # every 97th and the bytes around each file's end.
    base = MemTree()
    base.write_file("/ota/b/firmware/old.mpy", b"old")
    base.write_file("/ota/b/" + otastate.SLOT_MANIFEST, b"{}")
    offer_bytes, stream = _image(chunk=512)
    offer = ota.open_offer(offer_bytes, KEY)
    parts = [ota.decode_chunk(c) for c in otaimage.chunks(offer, stream)]
    total = offer["manifest_size"]
    cuts = {}
    for _, data in sorted(FILES):
        total += len(data)
        for k in (total - 1, total, total + 1):
            cuts[k] = True
    total += 300  # the slot's manifest.json, about
    step = 97 if mpgc.ON_MICROPYTHON else 1
    for k in range(0, total, step):
        cuts[k] = True
    runs = {}
    for k in sorted(cuts):
        run, whole = _update_with_cut(k, base, offer, parts)
        eq(whole, True, "slot " + str(run) + " after a cut at byte " + str(k))
        runs[run] = runs.get(run, 0) + 1
    return sorted(runs)


def test_sha256_of_stream_is_the_offer_hash():
    offer_bytes, stream = _image()
    offer = ota.open_offer(offer_bytes, KEY)
    return eq(ota._hex(hashlib.sha256(stream).digest()), offer["sha256"]) == offer["sha256"]
