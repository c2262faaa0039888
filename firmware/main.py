# /main.py on the desk unit: build the board and the shell, print the boot
# self-test line (exactly one), run. Any crash resets the board; the shell's
# boot-loop guard counts quick restarts and starts in safe mode after several.
import json
import sys

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore

from shared.console import SELFTEST_FAIL, selftest_line

board = None


def _settings():
    try:
        with open("/board.json") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def main():
    global board
    try:
        from firmware.board_esp32 import Board
        from firmware.shell import Unit, selftest_details
        settings = _settings()
        board = Board(settings)
        unit = Unit(board, settings, "/")
    except Exception as exc:
        print(SELFTEST_FAIL + " " + repr(exc))
        raise
    ok, details = selftest_details(unit)
    print(selftest_line(ok, details))
    asyncio.run(unit.run())


try:
    main()
except KeyboardInterrupt:
    pass  # a developer at the REPL
except Exception as exc:
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    if board is not None:
        board.reset()
    raise
