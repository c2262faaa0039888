# Over-the-air updates: the slot state and the boot decision (pure; the
# offers, chunks and receiver are firmware/ota.py's, imported only when an
# offer arrives, so a running unit keeps just this small module).
#
# The slot state (<root>ota.json, written atomically: shared/jsonfile.py) is
# the only switch. It names the confirmed code (`active`: a slot, or None for
# the code provisioning wrote to /lib or /rom) and, once a staged slot is
# verified, the `trial` slot. Power-cut safety follows from two rules: a slot
# is written only while the state names it nowhere (begin_staging drops it
# first), and the state names a slot only after its files are verified and
# synced, with the slot's manifest.json written last. So every boot finds the
# old code or the new, whole.
#
# At boot (firmware/otaboot.py) a trial slot runs once; the new code confirms
# itself (confirm) when its self-test passes and it reached the broker. A trial
# that boots again unconfirmed (it crashed, failed its self-test, or ran out of
# its time and reset) is rolled back, with the reason kept in `report` for the
# old code to publish as an `update` event.

STATE = "ota.json"
SLOT_DIR = "ota"
SLOTS = ("a", "b")
SLOT_MANIFEST = "manifest.json"  # written last into a slot: the slot is whole
TRIAL_MS = 180000  # the new code must confirm itself within this time of boot


def slot_path(root, slot):
    return root + SLOT_DIR + "/" + slot + "/"


def staging_slot(state):
    """The slot an update is written to: never the confirmed code's."""
    return "b" if state.get("active") == "a" else "a"


def begin_staging(state, slot):
    """The state to write (atomically) before a byte goes to `slot`: one that
    names it nowhere, so a power cut mid-write boots the confirmed code."""
    s = dict(state)
    for key in ("trial", "trial_version", "tried"):
        if s.get("trial") == slot:
            s.pop(key, None)
    if s.get("prev") == slot:
        s.pop("prev", None)
        s.pop("prev_version", None)
    return s


def staged(state, slot, version):
    """The verified slot becomes the trial for the next boot."""
    s = begin_staging(state, slot)
    s["trial"] = slot
    s["trial_version"] = version
    s["tried"] = False
    return s


def at_boot(state, slot_whole, trial_ms=TRIAL_MS):
    """Decide at boot: -> (new state or None when unchanged, slot to run or
    None for the provisioned code). slot_whole(slot) says whether a slot's
    manifest.json is there."""
    s = dict(state)
    changed = False
    trial = s.get("trial")
    if trial is not None:
        if not s.get("tried") and slot_whole(trial):
            s["tried"] = True
            return s, trial
        why = ("the new code did not confirm itself within " + str(trial_ms // 1000) +
               " s (boot self-test failed, it crashed, or it did not reach the broker)") if s.get("tried") \
            else "the staged code is not whole"
        s["report"] = {"step": "rolled_back", "version": s.get("trial_version") or "?", "detail": why}
        for key in ("trial", "trial_version", "tried"):
            s.pop(key, None)
        changed = True
    active = s.get("active")
    if active is not None and not slot_whole(active):
        s["report"] = {"step": "rolled_back", "version": s.get("version") or "?",
                       "detail": "slot " + active + " is not whole: back to the provisioned code"}
        s["active"] = None
        s["version"] = None
        active = None
        changed = True
    return (s if changed else None), active


def in_trial(state):
    return state.get("trial") is not None and state.get("tried") is True


def confirm(state):
    """The running trial passed its self-test and reached the broker."""
    s = dict(state)
    s["prev"] = s.get("active")
    s["prev_version"] = s.get("version")
    s["active"] = s.pop("trial")
    s["version"] = s.pop("trial_version")
    s.pop("tried", None)
    s["report"] = {"step": "confirmed", "version": s["version"], "detail": "self-test passed, broker reached"}
    return s
