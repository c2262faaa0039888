"""The site's shift plan as the roster sees it: which seats exist and which
shifts each seat has on a local date, with their UTC spans. Pure.

Read from the site file as the units read it (tools/inventory.unit_config):
a dated `[overrides]` entry replaces the weekday's shifts; a unit's own
weekday `shifts` replace the site's for that weekday. A shift belongs to the
local date it starts on (`2026-11-22/night`, the label the units put on
their events); one whose end is not after its start ends the next day.
Local times become UTC through zoneinfo as the units' firmware/localtime.py
does: a time the clocks skip (spring) moves forward, a time that happens
twice (autumn) means its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from firmware.config import parse_hhmm
from tools.inventory import WEEKDAYS

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Shift:
    """One shift on one local date. `start_min`/`end_min` are minutes after
    that date's local midnight (`end_min` past 1440 for a shift ending the
    next day); `start_ms`/`end_ms` the same instants in UTC."""
    day: date
    name: str
    start_min: int
    end_min: int
    start_ms: int
    end_ms: int
    label: str  # "2026-11-22/night"

    def hours(self) -> str:
        """'22:00-06:00', for messages."""
        return f"{hhmm(self.start_min)}-{hhmm(self.end_min)}"


def hhmm(minutes: int) -> str:
    """Minutes after a midnight -> 'HH:MM' on the clock (the day wraps)."""
    minutes %= MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Plan:
    """The seats of a site and their shifts per local date."""

    def __init__(self, site: str, zone: str, weekly: dict, overrides: dict, seats: dict[str, dict]):
        """`weekly`: weekday -> [[name, "HH:MM", "HH:MM"], ...]; `overrides`:
        "YYYY-MM-DD" -> the same; `seats`: seat -> its unit's own weekday shifts."""
        self.site = site
        self.zone = zone
        self.tz = ZoneInfo(zone)
        self.weekly = weekly
        self.overrides = overrides
        self.seats = seats
        self._shifts: dict[tuple, list[Shift]] = {}  # (day, seat with its own weekday or None) -> shifts

    @classmethod
    def from_site(cls, data: dict) -> "Plan":
        """From a parsed, checked site file (tools/inventory.check)."""
        seats: dict[str, dict] = {}
        for unit in data.get("units", []):
            seats.setdefault(unit["seat"], unit.get("shifts", {}))
        return cls(data["site"]["id"], data["site"]["timezone"], data.get("shifts", {}),
                   data.get("overrides", {}), seats)

    def utc_ms(self, day: date, minutes: int) -> int:
        """Local wall time `minutes` after `day`'s midnight -> UTC ms (fold 0:
        a skipped time moves forward, a repeated one is its first occurrence)."""
        local = datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)
        return int(local.replace(tzinfo=self.tz).timestamp() * 1000)

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, self.tz)

    def day_start_ms(self, day: date) -> int:
        return self.utc_ms(day, 0)

    def _source(self, seat: str, day: date) -> tuple[list, str | None]:
        """The [name, start, end] entries of the seat's shifts on that date,
        and the seat when they are its unit's own."""
        text = day.isoformat()
        if text in self.overrides:
            return self.overrides[text], None
        weekday = WEEKDAYS[day.weekday()]
        own = self.seats.get(seat, {})
        return (own[weekday], seat) if weekday in own else (self.weekly.get(weekday, []), None)

    def shifts(self, seat: str, day: date) -> list[Shift]:
        entries, own = self._source(seat, day)
        key = (day, own)
        if key not in self._shifts:  # most seats share the site's shifts: work them out once a day
            out = []
            for name, start, end in entries:
                s, e = parse_hhmm(start), parse_hhmm(end)
                if e <= s:
                    e += MINUTES_PER_DAY
                out.append(Shift(day, name, s, e, self.utc_ms(day, s), self.utc_ms(day, e), f"{day}/{name}"))
            self._shifts[key] = out
        return self._shifts[key]

    def shift(self, seat: str, day: date, name: str) -> Shift | None:
        for s in self.shifts(seat, day):
            if s.name == name:
                return s
        return None

    def shift_names(self) -> list[str]:
        """Every shift name anywhere in the plan (for 'did you mean')."""
        names = set()
        for table in (self.weekly, self.overrides, *self.seats.values()):
            for entries in table.values():
                names.update(e[0] for e in entries)
        return sorted(names)
