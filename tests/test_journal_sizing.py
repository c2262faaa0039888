"""The journal's default size: a long weekend of outage at the busiest seat
fits, within the flash a board has left after its code and files.

The figures come from a measurement (docs/firmware.md, "Journal size"): the
demo's floor (`seatmon unit simulate`, 40 units, the demo's traffic, 120x)
gave at most 11.4 events per hour at its busiest seat, records of 276 bytes
on average and 338 at most."""

from __future__ import annotations

from firmware import config
from firmware.flashfs import MemFS
from firmware.journal import Journal
from tests.portable.fwscen import answered
from virtual.board import FLASH_BYTES

BUSIEST_PER_HOUR = 11.4  # events per hour at the demo's busiest seat (measured)
PER_SHIFT = 3  # selftest, shift_end and a reminder per shift, three shifts a day
LONG_WEEKEND_DAYS = 4  # Friday evening to Tuesday morning, with a margin
MAX_RECORD = 338  # bytes, the largest record measured (a call)
CODE_AND_FILES = 300 * 1024  # /lib as .mpy (no ROMFS) plus the unit's own files, rounded up


def events_per_day() -> int:
    return int(BUSIEST_PER_HOUR * 24 + 3 * PER_SHIFT + 1)


def test_a_long_weekend_at_the_busiest_seat_fits_in_the_default_journal():
    # Before: 16 segments of 4 KiB held about 190 events (16 hours at that seat).
    defaults = config.validate({"site": "hq", "unit": "u-0001", "seat": "A-01"})
    fs = MemFS()
    j = Journal(fs, defaults["journal_segment_bytes"], defaults["journal_segments"])
    call, _ = answered("EU", 1000, 7000, 200000)
    call = {k: v for k, v in call.items() if k not in ("boot", "seq")}
    call["seat"] = "A-0123456789"  # long ids make long records
    wanted = LONG_WEEKEND_DAYS * events_per_day()
    for _ in range(wanted):
        j.append(dict(call))
    j.sync()
    assert j.dropped == 0, (wanted, j.dropped)
    assert j.depth() == wanted
    # Records as long as the real ones (a call of the scenario suite).
    stored = sum(len(data) for name, data in fs.files.items() if name.endswith(".log"))
    assert stored / wanted >= 250, stored / wanted
    capacity = defaults["journal_segment_bytes"] * defaults["journal_segments"]
    assert (defaults["journal_segments"] - 1) * defaults["journal_segment_bytes"] >= wanted * MAX_RECORD * 0.9
    # Within the flash left after code and files, leaving LittleFS at least
    # half of what remains for its copy-on-write and wear levelling.
    assert capacity <= (FLASH_BYTES - CODE_AND_FILES) // 2
