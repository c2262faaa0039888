"""Placing events a unit stamped without a clock (docs/protocol.md, `clock`
event; docs/schema.md, unsynced events).

Within one boot a unit stamps every `unsynced` event from one anchor, so one
offset per (site, unit, board incarnation, boot) maps them all to true time
(a replaced board counts its boots from 1 again):

- until the unit says that offset, an unsynced event is stored at
  `ts + est`, where `est` is the received time minus `ts` of the first
  unsynced event of that boot the collector saw: received time ("now") for
  that one, and the same shift for the rest of the boot, so the calls keep
  their order and spacing and no two share a point. It keeps
  `clock: "unsynced"` and its own stamp in `unit_ts`;
- the unit's `clock` event gives the offset (or a peer collector that
  stored it says so, `fixes`): each event of that boot stored at an estimate
  is moved (its point deleted, then written at `ts + offset`
  with `clock: "corrected"`), and later ones are stored there at once. The
  delete and the write travel through the spool's outbox in order, after the
  event's first write, and both mark their roll-up keys dirty.

Pure: the spool persists what this decides (Spool.commit's `clock_ops`) in
the same transaction as the events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from collector.influx import tag_literal
from shared import protocol as p

DELETE = "DELETE FROM "  # an outbox line that starts so is an InfluxQL delete, not line protocol
UNSYNCED, CORRECTED = "unsynced", "corrected"


@dataclass
class BootClock:
    est_ms: int  # where events go until corrected: unit ts + est_ms
    offset_ms: int | None = None  # from the unit's clock event
    held: dict[int, dict] = field(default_factory=dict)  # seq -> event as sent, stored at an estimate


BootKey = tuple[str, str, str, int]  # (site, unit, inc, boot)


def delete_statement(event: dict) -> str:
    """The InfluxQL that removes the point `event` (as stored) made."""
    return (f'{DELETE}"{event["kind"]}" WHERE "site" = {tag_literal(event["site"])}'
            f' AND "unit" = {tag_literal(event["unit"])} AND "inc" = {tag_literal(p.incarnation(event))}'
            f' AND time = {int(event["ts"])}ms')


class Reclock:
    def __init__(self, clocks: dict[BootKey, BootClock] | None = None):
        self.clocks = clocks if clocks is not None else {}

    def place(self, event: dict, received_ms: int, ops: list) -> tuple[dict, list[tuple[dict, dict]]]:
        """An event about to be stored -> (the event as to store, moves): each
        move is (stored event to delete, event to write). `ops` receives the
        spool's persistence ops."""
        key = (event["site"], event["unit"], p.incarnation(event), event["boot"])
        if event["kind"] == "clock":
            return event, self.correct(key, event["offset_ms"], ops)
        if event["clock"] != UNSYNCED:
            return event, []
        bc = self.clocks.get(key)
        if bc is None:
            bc = self.clocks[key] = BootClock(received_ms - event["ts"])
            ops.append(("boot", *key, bc.est_ms, None))
        if bc.offset_ms is None:
            bc.held[event["seq"]] = event
            ops.append(("held", *key, event["seq"], json.dumps(event)))
        return stored_as(event, bc), []

    def correct(self, key: BootKey, offset_ms: int, ops: list) -> list[tuple[dict, dict]]:
        """The offset of a boot (from its clock event, or from a peer
        collector that stored it) -> the moves of the events held for it."""
        bc = self.clocks.get(key)
        if bc is None:
            bc = self.clocks[key] = BootClock(0)
        if bc.offset_ms is not None:
            return []
        where = [(stored_as(ev, bc), ev) for ev in bc.held.values()]  # at the estimate
        bc.offset_ms = offset_ms
        moves = [(old, stored_as(ev, bc)) for old, ev in where]
        bc.held = {}
        ops.append(("boot", *key, bc.est_ms, offset_ms))
        ops.append(("release", *key))
        return moves


def fixes(ops: list) -> list[list]:
    """The corrections `ops` record, [site, unit, inc, boot, offset_ms] each: what
    the collectors of a shared subscription tell each other, so that each
    moves the events it stored of that boot."""
    return [[*op[1:5], op[6]] for op in ops if op[0] == "boot" and op[6] is not None]


def stored_as(event: dict, bc: BootClock) -> dict:
    """An unsynced event as stored: at its corrected time once the offset is
    known, else at the estimate; its own stamp kept in `unit_ts`."""
    out = dict(event)
    out["unit_ts"] = event["ts"]
    if bc.offset_ms is not None:
        out["ts"] = event["ts"] + bc.offset_ms
        out["clock"] = CORRECTED
    else:
        out["ts"] = event["ts"] + bc.est_ms
    return out
