"""Desks with a virtual board: the phone line at a desk unit on the real
MicroPython board (virtual/board.py), rung and answered through its pins, and
a few such desks for the demo, provisioned by `seatmon flash provision`.

They run in real time: the board's firmware times calls with its tick
counter and stamps them from an RTC that NTP (the host's clock) sets hourly.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tools import flash
from tools import inventory as inv
from virtual.board import UnixBoard, for_revision

RING_HZ = 25  # ringing voltage through the opto: a pulse train
CADENCE_EU = (1000, 4000)  # the example site's cadence: ms on, ms off


class Desk:
    """The phone line and the agent at one virtual board: rings as opto
    pulse trains on the ring input, the handset on the hook input (both
    active low, as wired in docs/hardware.md)."""

    def __init__(self, board: UnixBoard, pins: dict):
        self.board, self.ring_pin, self.hook_pin = board, pins["ring"], pins["hook"]
        board.set_input(self.ring_pin, 1)
        board.set_input(self.hook_pin, 1)  # on hook

    def call(self, rings: int, answer_after_ms: int | None, talk_ms: int = 2000) -> None:
        """Ring with the EU cadence; lift the handset `answer_after_ms` after the first ring."""
        start = time.monotonic()
        answer_at = None if answer_after_ms is None else start + answer_after_ms / 1000
        half = 1 / RING_HZ / 2
        for _ in range(rings):
            burst_end = time.monotonic() + CADENCE_EU[0] / 1000
            while time.monotonic() < burst_end:
                if answer_at is not None and time.monotonic() >= answer_at:
                    break
                self.board.set_input(self.ring_pin, 0)
                time.sleep(half)
                self.board.set_input(self.ring_pin, 1)
                time.sleep(half)
            if answer_at is not None and time.monotonic() >= answer_at:
                break
            pause_end = time.monotonic() + CADENCE_EU[1] / 1000
            while time.monotonic() < pause_end:
                if answer_at is not None and time.monotonic() >= answer_at:
                    break
                time.sleep(0.01)
            if answer_at is not None and time.monotonic() >= answer_at:
                break
        self.board.set_input(self.ring_pin, 1)
        if answer_at is None:
            time.sleep(CADENCE_EU[1] / 1000 + 2)  # the call ends when no ring follows
            return
        time.sleep(max(0.0, answer_at - time.monotonic()))
        self.board.set_input(self.hook_pin, 0)  # off hook
        time.sleep(talk_ms / 1000)
        self.board.set_input(self.hook_pin, 1)  # back on hook


# What each desk's caller and agent do, in turn: (kind, rings, answer after ms).
# The site's limit is 10 s or 3 rings; answers are far enough from it that
# timing jitter cannot move a call across it.
CALLS = [("in_time", 2, 4000), ("in_time", 1, 2500), ("late", 4, 12500), ("in_time", 2, 6000),
         ("unanswered", 3, None)]


def board_units(n: int) -> list[tuple[str, str, str]]:
    """(unit id, seat, hardware revision) of the demo's n boards: rev-a
    (ESP32-WROVER on the stock ESP32_GENERIC-SPIRAM image) and rev-b
    (ESP32-S3 N8R2 on the stock ESP32_GENERIC_S3 image) in turn."""
    return [(f"vb-{i + 1:02d}", f"VB-{i + 1:02d}", "rev-a" if i % 2 == 0 else "rev-b") for i in range(n)]


class BoardDesks:
    """One virtual board per unit of `site`: powered on, provisioned with
    `seatmon flash provision` (the real mpremote over the board's pty), then
    its line rung and answered (CALLS in turn, starting at a different one
    per desk) until `stop_calling()`, at least once. `made` counts the
    calls made per kind; `errors` says what failed. Provisioning's output
    goes to provision.log in `folder`."""

    def __init__(self, site: inv.Site, folder: Path, seed: int = 1):
        self.site, self.folder = site, Path(folder)
        self.log = open(self.folder / "provision.log", "a")
        self.rng = random.Random(seed)
        self.boards: list[UnixBoard] = []
        self.made = {"in_time": 0, "late": 0, "unanswered": 0}
        self.provisioned: list[str] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_s = time.time()
        # between_calls(unit id, board): called by each desk after each of its
        # calls (a drill's faults that must not cut a call short)
        self.between_calls = None

    def start(self) -> "BoardDesks":
        """Power the boards on and start provisioning each (in the background)."""
        self.started_s = time.time()
        for i, unit in enumerate(self.site.units):
            hardware = self.site.data["hardware"][unit["hardware"]]
            # each board runs the image its revision names (virtual/board.py)
            board = for_revision(self.folder / f"{unit['id']}.img", hardware, uid="24a160c0%04x" % (i + 1)).start()
            self.boards.append(board)
            pins = dict(hardware["pins"], **unit.get("pins", {}))
            t = threading.Thread(target=self._run, args=(unit, board, pins, i), daemon=True,
                                 name="desk-" + unit["id"])
            t.start()
            self._threads.append(t)
        return self

    def _run(self, unit: dict, board: UnixBoard, pins: dict, index: int) -> None:
        try:
            desk = Desk(board, pins)
            board.wait_console(">>> ", 60)
            result = flash.provision(self.site, unit, board.port, timeout=90, show_progress=False, out=self.log)
            if not result.ok or result.error:
                detail = result.error or (result.selftest.line if result.selftest else "no self-test line")
                raise RuntimeError(f"provisioning {unit['id']} failed: {detail}")
            with self.lock:
                self.provisioned.append(unit["id"])
            turn = index * 2  # the desks do not all ring alike at once
            while True:  # at least one call, however late provisioning ends
                kind, rings, answer_ms = CALLS[turn % len(CALLS)]
                turn += 1
                desk.call(rings, answer_ms, talk_ms=int(self.rng.uniform(1500, 4000)))
                with self.lock:
                    self.made[kind] += 1
                if self.between_calls is not None:
                    self.between_calls(unit["id"], board)
                if self._stop.wait(self.rng.uniform(1.0, 4.0)):
                    break
        except Exception as exc:  # reported by the demo; the other desks go on
            with self.lock:
                self.errors.append(f"{unit['id']}: {exc}")

    def stop_calling(self, wait: bool = True, timeout: float = 150) -> None:
        """Start no new call; with `wait`, wait for the calls in progress to
        end (and a board still provisioning to make its first)."""
        self._stop.set()
        if not wait:
            return
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def stop(self, join_s: float = 2) -> None:
        """Power the boards off (a provisioning in progress fails: its mpremote
        loses the port). A desk's call under way ends with its board; its
        thread (a daemon) is waited for `join_s` s at most."""
        self._stop.set()
        for board in self.boards:
            board.stop()
        deadline = time.monotonic() + join_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.log.close()
