"""A unit with poison events in its journal, for the collector's drills and
the soak: events the protocol refuses (a JSON-escaped lone surrogate: valid
UTF-8 and valid JSON on the wire) among valid ones. It keeps every event
until the collector's ack covers it, resends on a stalled ack and after
every reconnect, as the firmware does."""

from __future__ import annotations

from rig.loadgen import VirtualUnit
from shared import protocol as p


class JournalingPoisonUnit(VirtualUnit):
    POISON = (5, 17)
    faults_only = False  # True: its valid events are faults too (no calls to count beside a floor's)

    def make_event(self, seq: int) -> dict:
        if seq in self.POISON or self.faults_only:
            return {"v": 1, "kind": "fault", "site": self.site, "unit": self.unit, "seat": self.seat,
                    "boot": self.boot, "seq": seq, "ts": self.t0_ms + seq, "clock": "ntp", "code": "x",
                    "detail": "POISON" if seq in self.POISON else "fine"}
        return super().make_event(seq)

    def publish_next(self) -> int:
        with self.lock:
            seq = self.next_seq
            self.next_seq += 1
            payload = p.encode(p.EVENT, self.make_event(seq)).replace(b'"POISON"', b'"\\ud800"')
            self.unacked[seq] = payload
        self._publish(p.EVENT, payload)
        return seq
