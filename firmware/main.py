# /main.py on the desk unit: build the board and the shell, print the boot
# self-test line (exactly one), run. Any crash resets the board; the shell's
# boot-loop guard counts quick restarts and starts in safe mode after several.
# While /provisioning exists (a copy in progress) the unit does not start:
# its watchdog, once started, survives Ctrl-C and soft resets and would reset
# the board in the middle of the copy.
import gc
import sys

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore

from shared.boardfiles import HOLD
from shared.console import SELFTEST_FAIL, selftest_line

board = None


def held():
    try:
        open("/" + HOLD).close()
        return True
    except OSError:
        return False


def trial_boot():
    """This boot runs an update's code on trial (/ota.json, firmware/ota.py)."""
    try:
        import json
        with open("/ota.json") as fh:
            state = json.load(fh)
        return state.get("tried") is True and state.get("trial") is not None
    except Exception:
        return False


def main():
    global board
    try:
        from firmware.shell import from_files, release_boot_modules, selftest_details
        # board.json, secrets.json and config.json as shared/boardfiles.py
        # defines them; a bad board.json fails here, before any pin is touched.
        board, unit = from_files("/")
        release_boot_modules()  # the files are checked: free the checks' heap
        gc.collect()
    except Exception as exc:
        print(SELFTEST_FAIL + " " + repr(exc))
        raise
    ok, details = selftest_details(unit)
    print(selftest_line(ok, details))
    asyncio.run(unit.run())


try:
    if held():
        print(SELFTEST_FAIL + " provisioning not finished: the unit starts after `seatmon flash provision`")
    else:
        main()
except KeyboardInterrupt:
    pass  # a developer at the REPL
except Exception as exc:
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    if board is not None:
        board.reset()
    elif trial_boot():
        # New code that fails before the board exists: reset, so that the
        # boot selector rolls the update back (firmware/otaboot.py).
        import machine
        machine.reset()
    raise
