# The boot-time code selector (docs/firmware.md#over-the-air-updates), run by
# /boot.py. It reads the slot state (<root>ota.json), lets
# firmware/otastate.py's at_boot decide (run a new trial once, roll back an
# unconfirmed one), writes the decision atomically, and puts the chosen slot
# first on sys.path. It is
# imported from the provisioned code, which an update never replaces; it
# then forgets the modules it imported, so the chosen slot's packages load.

import json
import sys


def select(root="/"):
    """-> the slot now running (None: the provisioned code)."""
    import os

    from firmware import otastate
    from shared.jsonfile import read_json, write_atomic
    slot = None
    state, _ = read_json(root + otastate.STATE)
    if isinstance(state, dict):

        def whole(s):
            try:
                os.stat(otastate.slot_path(root, s) + otastate.SLOT_MANIFEST)
                return True
            except OSError:
                return False

        new, slot = otastate.at_boot(state, whole)
        if new is not None:
            write_atomic(root + otastate.STATE, json.dumps(new))
    for name in list(sys.modules):
        if name in ("firmware", "shared") or name.startswith("firmware.") or name.startswith("shared."):
            del sys.modules[name]
    if slot is not None:
        sys.path.insert(0, otastate.slot_path(root, slot)[:-1])
    return slot
