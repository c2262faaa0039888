# The unit's side of an over-the-air update, around the pure firmware/ota.py
# (imported on the first new offer: until then the unit keeps only
# firmware/otastate.py) and firmware/otastate.py:
# takes the offer and the chunks the link hands over (on the `update` topic),
# writes them into the staging slot, answers on `update_ack` (the chunk it
# wants next, or why it refused), journals the milestones as `update` events,
# resets into the staged code once the seat is idle, and, when this boot is a
# trial of new code, confirms it once the self-test passes and the broker is
# reached, or resets after otastate.TRIAL_MS so that the boot selector rolls back.

import json

from firmware import otastate
from firmware.ticks import ticks_diff
from shared import protocol
from shared.jsonfile import read_json, write_atomic

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

RESET_WAIT_MS = 10000  # after staging, how long to let the journal drain before the reset


class Updater:
    def __init__(self, unit, version, selftest):
        self.unit = unit
        self.version = version  # the running code's
        self.selftest = selftest  # () -> bool: the boot self-test passes
        self.path = unit.root + otastate.STATE
        state, _ = read_json(self.path)
        self.state = state if isinstance(state, dict) else {}  # type: Dict[str, Any]
        self.trial = otastate.in_trial(self.state)
        self.ota = None  # type: Any  # firmware/ota.py, once an offer needs it
        self.rx = None  # type: Any  # the Receiver of the transfer in progress
        self.slot = None  # type: Optional[str]
        self.answer = None  # type: Optional[Dict[str, Any]]  # the update_ack to send
        self.wake = asyncio.Event()
        self.refused = {}  # type: Dict[bytes, bool]  # offers refused this boot (reported once)
        self.staged_at = None  # type: Any  # ticks: reset into the new code when idle
        self.boot_tick = unit.board.ticks_ms()
        report = self.state.pop("report", None)
        if isinstance(report, dict):
            self._event(report.get("step"), report.get("version"), report.get("detail"))
            self._save()

    # ---- state and events ------------------------------------------------------------
    def _save(self):
        write_atomic(self.path, json.dumps(self.state))

    def _event(self, step, version, detail=None):
        fields = {"step": step, "version": version if protocol._is_id(version) else "unknown"}
        if detail:
            fields["detail"] = str(detail)[:200]
        self.unit.core.shell_event(self.unit.board.ticks_ms(), protocol.UPDATE_EVENT, fields)

    def _answer(self, image, **fields):
        c = self.unit.core.conf
        msg = {"v": 1, "site": c["site"], "unit": c["unit"], "image": image}
        msg.update(fields)
        self.answer = msg
        self.wake.set()

    # ---- messages from the link (plain callbacks: no waiting) -----------------------------
    def on_message(self, payload):
        if payload[:1] == b"{":
            self._offer(payload)
        elif self.rx is not None:
            self._chunk(payload)

    def _offer(self, payload):
        claimed = "unknown"
        head = None  # type: Any
        try:
            head = json.loads(payload[:payload.rfind(b"\n")])
            sha = head.get("sha256") if isinstance(head, dict) else None
            if isinstance(sha, str) and len(sha) == 64:
                claimed = "".join([c for c in sha[:8] if c in "0123456789abcdef"]) or claimed
        except ValueError:
            pass
        if self.rx is not None and self.rx.offer["sha256"][:8] == claimed:
            self._answer(claimed, next=self.rx.next, of=self.rx.count)  # the sender started again
            return
        if claimed == self.state.get("sha256"):
            return  # running it already: the retained offer again
        if claimed == self.state.get("trial_sha256"):
            if self.state.get("trial") is None and not self.trial:
                self._answer(claimed, error="this image was rolled back on this unit", rolled_back=True)
            return  # staged for the next boot, on trial, or rolled back
        if self.ota is None:
            from firmware import ota
            self.ota = ota
        ota = self.ota
        try:
            key = self.unit.secrets.get("ota_key")
            offer = ota.open_offer(payload, None if key is None else ota.key_bytes(key))
            s = self.unit.s
            ota.check_offer(offer, s["board"], s["hardware"], self.version)
        except ota.UpdateError as exc:
            mac = payload[payload.rfind(b"\n") + 1:]  # one offer: its signature, good or forged
            if mac not in self.refused:
                self.refused[mac] = True
                self._event("refused", head.get("version") if isinstance(head, dict) else None, str(exc))
            self._answer(claimed, error=str(exc)[:200])
            self._release_ota()
            return
        self._drop()
        slot = otastate.staging_slot(self.state)
        # The slot is named nowhere before a byte is written to it.
        self.state = otastate.begin_staging(self.state, slot)
        self.state.pop("trial_sha256", None)
        self._save()
        self.slot = slot
        self.rx = ota.Receiver(ota.DirTree(), offer, otastate.slot_path(self.unit.root, slot))
        self._event("receiving", offer["version"], str(offer["size"]) + " bytes in " + str(self.rx.count) + " chunks")
        self._answer(claimed, next=0, of=self.rx.count)

    def _chunk(self, payload):
        rx = self.rx
        ota = self.ota
        try:
            index, ident, data = ota.decode_chunk(payload)
            if ident != rx.ident:
                return  # a chunk of another image
            n = rx.feed(index, data)
            if not rx.done():
                self._answer(rx.offer["sha256"][:8], next=n, of=rx.count)
                return
            rx.finish()
        except (ota.UpdateError, OSError) as exc:
            self._event("failed", rx.offer["version"], str(exc))
            self._answer(rx.offer["sha256"][:8], error=str(exc)[:200])
            self._drop()
            self._release_ota()
            return
        offer = rx.offer
        self.state = otastate.staged(self.state, self.slot, offer["version"])
        self.state["trial_sha256"] = offer["sha256"][:8]
        self._save()  # the marker, written last: the next boot runs the new code
        self.rx = None
        self._event("staged", offer["version"], "verified; switching at the next idle moment")
        self._answer(offer["sha256"][:8], next=rx.count, of=rx.count, staged=True)
        self.staged_at = self.unit.board.ticks_ms()

    def _release_ota(self):
        # Nothing to receive: forget firmware/ota.py so the collector can free it.
        import sys
        self.ota = None
        sys.modules.pop("firmware.ota", None)
        package = sys.modules.get("firmware")
        if package is not None and hasattr(package, "ota"):
            delattr(package, "ota")

    def _drop(self):
        if self.rx is not None:
            self.rx.abort()
        self.rx = None

    def switch_due(self, now):
        """Whether to reset into the staged code: the seat is idle (no call cut
        short), and the host has heard of it (the staged answer sent, the staged
        event journaled and acknowledged) or RESET_WAIT_MS have passed."""
        unit = self.unit
        if self.staged_at is None or unit.core.state != "idle":
            return False
        j = unit.journal
        if self.answer is None and not unit.core.holding() and j.ack_mark >= j.next_seq - 1:
            return True
        return ticks_diff(now, self.staged_at) > RESET_WAIT_MS

    # ---- tasks -----------------------------------------------------------------------
    async def answers(self, client, topic):
        """Run by the link while connected: sends the latest update_ack."""
        while client.connected:
            self.wake.clear()
            msg = self.answer
            if msg is not None:
                self.answer = None
                await client.publish(topic, protocol.encode(protocol.UPDATE_ACK, msg), qos=1)
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), 1)
            except asyncio.TimeoutError:
                pass

    async def watch(self):
        """Confirms a trial, or resets it after its time; resets into staged code when idle."""
        unit = self.unit
        board = unit.board
        while True:
            await asyncio.sleep(0.5)  # real time, also under an accelerated simulator
            now = board.ticks_ms()
            if self.trial:
                if unit.link.connected and self.selftest():
                    self.state = otastate.confirm(self.state)
                    self.state["sha256"] = self.state.pop("trial_sha256", None)
                    self.trial = False
                    report = self.state.pop("report")
                    self._save()
                    self._event(report["step"], report["version"], report["detail"])
                elif ticks_diff(now, self.boot_tick) > otastate.TRIAL_MS:
                    unit.journal.sync()
                    board.reset()  # unconfirmed: the boot selector rolls back
            if self.switch_due(now):
                unit.journal.sync()
                unit._mark_stable()  # a reset asked for, not a crash: the boot-loop guard must not count it
                await unit.link.close(clean=False)
                board.reset()
