# JSON files on the unit's flash, written atomically and read back with the
# fallback a torn write needs. Apart from shared/boardfiles.py, which checks
# the files at boot only: the running unit keeps these two functions and
# drops the checks (firmware/shell.py, release_boot_modules). Portable MicroPython.

import json
import os


def write_atomic(path, text):
    """Write via path.tmp and a rename: LittleFS and POSIX rename replace the
    target atomically, so a power cut leaves the old file or the new one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    try:
        os.rename(tmp, path)
    except OSError:
        # A port whose rename does not replace: read_json falls back to the
        # .tmp copy if the power fails between these two calls.
        os.remove(path)
        os.rename(tmp, path)


def _load(path):
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return None, None
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, path + ": " + str(exc)


def read_json(path):
    """-> (object or None when absent, error text or None). A missing or
    torn file falls back to the complete .tmp copy a write left behind."""
    obj, err = _load(path)
    if obj is None:
        spare, spare_err = _load(path + ".tmp")
        if spare is not None:
            return spare, None
    return obj, err
