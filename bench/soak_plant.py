"""Run a seatmon command on the soak's world clock with one known defect
planted, to show the soak catches it (never a flag in product code):

    python -m bench.soak_plant NAME REAL_S:SIM_MS SPEED seatmon-arguments...
    python -m bench.soak_plant NAME - - seatmon-arguments...     # on the real clock

- collector-forgets-quarantine-ack: the collector quarantines a refused
  event but no longer lets the unit's ack move past its seq
  (collector.ingest.Ingestor._quarantine treats it as unreadable).
- unit-skips-journal-record: the unit's journal never hands every 40th
  record to the sender (firmware.journal.Journal.entries): written, never
  sent."""

from __future__ import annotations

import sys


def collector_forgets_quarantine_ack() -> None:
    from collector import ingest

    def _quarantine(self, out, topic, payload, received_ms, reason):
        out.quarantined.append(ingest.quarantine_row(received_ms, topic, payload, reason))

    ingest.Ingestor._quarantine = _quarantine


def unit_skips_journal_record() -> None:
    from firmware import journal

    original = journal.Journal.entries

    def entries(self, after=None, limit=16):
        return [(seq, payload) for seq, payload in original(self, after, limit) if seq % 40]

    journal.Journal.entries = entries


PLANTS = {"collector-forgets-quarantine-ack": collector_forgets_quarantine_ack,
          "unit-skips-journal-record": unit_skips_journal_record}


def main(argv: list[str]) -> int:
    name, rest = argv[0], argv[1:]
    PLANTS[name]()
    if rest[0] == "-":
        from seatmon import cli

        return cli.main(rest[2:])
    from seatmon import worldclock

    return worldclock.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
