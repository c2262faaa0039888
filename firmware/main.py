# /main.py on the desk unit: arm the watchdog, build the board and the shell,
# print the boot self-test line (exactly one), run. Every failure (a crash
# while building the unit, a MemoryError, a flash OSError, a main task that
# ends) is printed, its cause written to /crash.txt (the next boot reports it
# as a fault) and ends in a reset: nothing leaves the board at the REPL with
# no watchdog. The shell's boot-loop guard counts quick restarts and starts in
# safe mode after several.
# While /provisioning exists (a copy in progress) the unit waits, without a
# watchdog (an ESP32's survives Ctrl-C and soft resets and would reset the
# board in the middle of the copy); the provisioning tool stops the wait with
# Ctrl-C. A flag left behind by a copy that never finished holds the board
# for HOLD_S (or the seconds the flag file holds) only: then it is removed
# and the unit starts.
import gc
import sys
import time

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore

from shared.boardfiles import CRASH, HOLD
from shared.console import SELFTEST_FAIL, selftest_line

HOLD_S = 600  # a leftover provisioning flag holds the board this long
RESET_DELAY_S = 3  # after a failure: a window for Ctrl-C (the provisioning tool's way into a crash loop)
BOOT_WDT_MS = 30000  # the watchdog while the unit is built; the board's own (wdt_ms) once it runs

board = None


def hold_seconds():
    """None without a provisioning flag, else how long it may hold the board."""
    try:
        with open("/" + HOLD) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return HOLD_S


def wait_for_provisioning(seconds):
    print(SELFTEST_FAIL + " provisioning not finished: waiting " + str(seconds) +
          " s for `seatmon flash provision` (Ctrl-C for the REPL)")
    for _ in range(seconds):
        time.sleep(1)
        if hold_seconds() is None:
            return
    import os
    os.remove("/" + HOLD)
    print("provisioning flag left over for " + str(seconds) + " s: removed, starting the unit")


def arm_watchdog():
    try:
        from machine import WDT
    except ImportError:  # not a board
        return None
    return WDT(timeout=BOOT_WDT_MS)


def record(exc):
    """Keep the cause for the next boot; the flash itself may be what failed."""
    try:
        with open("/" + CRASH, "w") as f:
            f.write(repr(exc)[:200])
    except Exception:
        pass


def reset():
    try:
        import machine
    except ImportError:  # not a board
        return
    machine.reset()


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
    board.wdt_start()  # the board's own timeout from here
    asyncio.run(unit.run())
    raise RuntimeError("the unit stopped")


try:
    held = hold_seconds()
    if held is not None:
        wait_for_provisioning(held)
    arm_watchdog()
    main()
except KeyboardInterrupt:
    pass  # the provisioning tool or a developer at the REPL
except BaseException as exc:  # noqa: B036  (MemoryError, OSError, a unit that ended: all reset)
    try:
        if hasattr(sys, "print_exception"):
            sys.print_exception(exc)
        else:
            print(repr(exc))
    except Exception:
        pass
    record(exc)
    print("resetting in " + str(RESET_DELAY_S) + " s (Ctrl-C for the REPL)")
    time.sleep(RESET_DELAY_S)  # the watchdog armed above still runs
    reset()
    raise
