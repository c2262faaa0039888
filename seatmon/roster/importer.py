"""The shift plan as CSV -> checked roster assignments. Pure: bytes and the
site's plan in, assignments and agents (or every problem, by line) out.

The file (docs/roster.md): a header row, then one row per assignment.
Required columns `date,shift,seat,agent`; optional `name`, `email`, and
`from`/`to` (local HH:MM inside the shift, for a seat change inside a shift;
without them the assignment spans the whole shift). Every row is checked
against the site file's seats and shifts; overlapping assignments of one
seat, duplicate rows and an agent with two names are refused. The CLI
stores nothing unless the whole file passes.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date

from firmware.config import parse_hhmm
from seatmon.options import did_you_mean
from seatmon.roster.model import Agent, Assignment
from seatmon.roster.plan import MINUTES_PER_DAY, Plan, Shift, hhmm
from tools.inventory import DATE_RE

REQUIRED = ("date", "shift", "seat", "agent")
OPTIONAL = ("name", "email", "from", "to")
COLUMNS = REQUIRED + OPTIONAL
ENCODINGS = ("utf-8", "gb18030")
# An agent id goes into reports, file names and CSV cells: no commas,
# whitespace or control characters, nothing a shell or a spreadsheet mangles.
AGENT_ID_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
AGENT_ID_RULE = "1-64 characters from A-Z a-z 0-9 . _ @ -"
EMAIL_RE = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
NAME_MAX = 200
MAX_ERRORS = 50  # problems reported per file; the rest are counted


class RosterFileError(ValueError):
    """A file that cannot be imported: `problems` is [(line or None, text)]."""

    def __init__(self, problems: list[tuple[int | None, str]], more: int = 0):
        self.problems = problems
        self.more = more
        super().__init__("; ".join(f"line {n}: {t}" if n else t for n, t in problems))


class RowError(ValueError):
    """One row (or one `roster set`) that does not fit the plan: the reason."""


@dataclass(frozen=True)
class Row:
    line: int
    assignment: Assignment
    agent: Agent
    shift: Shift


@dataclass
class Checked:
    """A file that passed: its rows, its agents (name/email as the file gives
    them, "" where it does not) and the shift labels it covers with the
    span of each across the seats."""
    rows: list[Row]
    agents: dict[str, Agent]
    labels: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def assignments(self) -> list[Assignment]:
        return [r.assignment for r in self.rows]


# ---- encoding ------------------------------------------------------------------

def decode(data: bytes, name: str, encoding: str = "utf-8") -> str:
    """The file's text. UTF-8 with or without a BOM by default. A file that is
    not UTF-8 is refused, never guessed: GB18030 decodes most byte strings,
    Latin-1 text included, so a guess could store garbled names. When it
    reads as GB18030 the error says so and how to convert it (or to say
    `--encoding gb18030`)."""
    if encoding == "gb18030":
        try:
            return data.decode("gb18030").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise RosterFileError([(_line_at(data, exc.start), "not valid GB18030 text either: "
                                    "save it from the spreadsheet as CSV UTF-8")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_at(data, exc.start)
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            why = "the file is UTF-16 (\"Unicode text\"): save it from the spreadsheet as CSV UTF-8"
        elif _reads_as_gb18030(data):
            why = (f"the file is not UTF-8 but reads as GB18030 (a Chinese spreadsheet export?): convert it with "
                   f"`iconv -f GB18030 -t UTF-8 {name} > {_utf8_name(name)}` and import that, "
                   f"or import it with --encoding gb18030")
        else:
            why = f"the file is not UTF-8 (byte 0x{data[exc.start]:02x}): save it from the spreadsheet as CSV UTF-8"
        raise RosterFileError([(line, why)]) from None


def _reads_as_gb18030(data: bytes) -> bool:
    try:
        data.decode("gb18030")
        return True
    except UnicodeDecodeError:
        return False


def _utf8_name(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".csv") else name
    return stem + "-utf8.csv"


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# ---- one row -------------------------------------------------------------------

def _bad_chars(text: str) -> str | None:
    """Why `text` cannot be an agent id, naming the offending character."""
    for ch in text:
        if ch == ",":
            return "contains a comma"
        if ch.isspace():
            return "contains whitespace"
        if ord(ch) < 32 or 127 <= ord(ch) < 160:
            return f"contains a control character (U+{ord(ch):04X})"
    return None


def check_agent_id(agent: str) -> None:
    if not agent:
        raise RowError("no agent id")
    if not AGENT_ID_RE.fullmatch(agent):
        why = _bad_chars(agent) or ("is longer than 64 characters" if len(agent) > 64
                                    else "has a character ids may not have")
        raise RowError(f"agent {agent!r} {why}: an agent id is {AGENT_ID_RULE} "
                       f"(put the person's name in the name column)")


def _check_text(value: str, column: str) -> None:
    for ch in value:
        if ord(ch) < 32 or 127 <= ord(ch) < 160:
            raise RowError(f"{column} {value!r} contains a control character (U+{ord(ch):04X})")
    if len(value) > NAME_MAX:
        raise RowError(f"{column} is longer than {NAME_MAX} characters")


def _day(text: str) -> date:
    try:
        if DATE_RE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise RowError(f"date {text!r} is not a date YYYY-MM-DD")


def _shifts_text(shifts: list[Shift]) -> str:
    return ", ".join(f"{s.name} {s.hours()}" for s in shifts) or "none"


def _shift(plan: Plan, seat: str, day: date, name: str) -> Shift:
    found = plan.shift(seat, day, name)
    if found is not None:
        return found
    that_day = plan.shifts(seat, day)
    when = f"{day.isoformat()} ({day.strftime('%a')})"
    if name not in plan.shift_names():
        hint = did_you_mean(name, [s.name for s in that_day] or plan.shift_names())
        raise RowError(f"unknown shift {name!r}{hint}; the shifts on {when}: {_shifts_text(that_day)}")
    if not that_day:
        raise RowError(f"{when} is outside the plan: the site file has no shifts that day")
    raise RowError(f"no shift {name!r} on {when} at seat {seat} (outside the plan); that day's shifts: "
                   f"{_shifts_text(that_day)}")


def _clock(text: str, column: str, shift: Shift, is_end: bool) -> int:
    """A local HH:MM inside the shift -> minutes after the shift day's midnight."""
    minutes = parse_hhmm(text)
    if minutes is None:
        raise RowError(f"{column} {text!r} is not a time HH:MM")
    if shift.end_min > MINUTES_PER_DAY and minutes < shift.start_min:
        minutes += MINUTES_PER_DAY  # after midnight in a night shift
    inside = shift.start_min < minutes <= shift.end_min if is_end else shift.start_min <= minutes < shift.end_min
    if not inside:
        raise RowError(f"{column} {text} is outside the shift {shift.name} {shift.hours()}")
    return minutes


def find_shift(plan: Plan, day_text: str, name: str, seat: str) -> Shift:
    """The seat's shift `name` on that local date, or RowError."""
    day = _day(day_text)
    if seat not in plan.seats:
        raise RowError(_seat_problem(plan, seat))
    return _shift(plan, seat, day, name)


def _seat_problem(plan: Plan, seat: str) -> str:
    if not seat:
        return "no seat"
    hint = did_you_mean(seat, plan.seats) or ": add a [[units]] entry with this seat to the site file"
    return f"unknown seat {seat!r}{hint}"


def check_row(plan: Plan, values: dict[str, str]) -> tuple[Assignment, Agent, Shift]:
    """One row's values (column -> stripped text) checked against the plan;
    raises RowError with every problem of the row."""
    empty = [c for c in REQUIRED if not values.get(c)]
    if empty:
        raise RowError(f"no {', '.join(empty)}: every row needs {', '.join(REQUIRED)}")
    problems = []
    day = None
    try:
        day = _day(values["date"])
    except RowError as exc:
        problems.append(str(exc))
    seat = values["seat"]
    if seat not in plan.seats:
        problems.append(_seat_problem(plan, seat))
        seat = None
    shift = None
    if day is not None and seat is not None:
        try:
            shift = _shift(plan, seat, day, values["shift"])
        except RowError as exc:
            problems.append(str(exc))
    agent = values["agent"]
    for check in (lambda: check_agent_id(agent), lambda: _check_text(values.get("name", ""), "name"),
                  lambda: _check_email(values.get("email", ""))):
        try:
            check()
        except RowError as exc:
            problems.append(str(exc))
    start = end = None
    if shift is not None:
        try:
            start = _clock(values["from"], "from", shift, False) if values.get("from") else shift.start_min
            end = _clock(values["to"], "to", shift, True) if values.get("to") else shift.end_min
            if start >= end:
                raise RowError(f"from {hhmm(start)} is not before to {hhmm(end)}")
        except RowError as exc:
            problems.append(str(exc))
    if problems:
        raise RowError("; ".join(problems))
    start_ms = shift.start_ms if start == shift.start_min else plan.utc_ms(day, start)
    end_ms = shift.end_ms if end == shift.end_min else plan.utc_ms(day, end)
    if start_ms >= end_ms:  # both inside the hour the clocks skip
        raise RowError(f"from {hhmm(start)} to {hhmm(end)} is no time at all on {day} (the clocks change)")
    a = Assignment(plan.site, seat, shift.label, agent, start_ms, end_ms)
    return a, Agent(agent, values.get("name", ""), values.get("email", "")), shift


def _check_email(value: str) -> None:
    _check_text(value, "email")
    if value and not EMAIL_RE.fullmatch(value):
        raise RowError(f"email {value!r} is not an e-mail address such as li.wei@example.com")


# ---- the whole file ------------------------------------------------------------

def _header(row: list[str]) -> list[str]:
    names = [c.strip().lower() for c in row]
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "';'" if ";" in names[0] else "tabs"
        raise RosterFileError([(1, f"the columns are separated by {sep}: save it as CSV with commas "
                                   f"(header: {','.join(REQUIRED)}[,{','.join(OPTIONAL)}])")])
    problems = []
    for name in names:
        if name not in COLUMNS:
            unused = [c for c in COLUMNS if c not in names]
            problems.append(f"unknown column {name!r}{did_you_mean(name, unused)} "
                            f"(columns: {','.join(REQUIRED)}, optional {','.join(OPTIONAL)})")
        elif names.count(name) > 1:
            problems.append(f"column {name!r} twice")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append(f"no column {', '.join(missing)}: the header must name {','.join(REQUIRED)}")
    if problems:
        raise RosterFileError([(1, "; ".join(dict.fromkeys(problems)))])
    return names


def parse(text: str, plan: Plan) -> Checked:
    """Every row checked; raises RosterFileError with the problems (at most
    MAX_ERRORS, the rest counted) when any row is bad."""
    problems: list[tuple[int | None, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Row] = []
    columns = None
    line = 1
    try:
        for record in reader:
            start_line, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if columns is None:
                columns = _header(record)
                continue
            if len(record) != len(columns):
                problems.append((start_line, f"{len(record)} values, the header has {len(columns)}"
                                 + (" (a comma inside a value? quote it, or leave it out of agent ids)"
                                    if len(record) > len(columns) else "")))
                continue
            values = {c: v.strip() for c, v in zip(columns, record)}
            try:
                a, agent, shift = check_row(plan, values)
            except RowError as exc:
                problems.append((start_line, str(exc)))
                continue
            rows.append(Row(start_line, a, agent, shift))
    except csv.Error as exc:
        problems.append((line, f"not CSV: {exc}"))
    if columns is None and not problems:
        problems.append((None, "empty: expected a header " + ",".join(REQUIRED) + " and one row per assignment"))
    problems += _agents_conflicts(rows) + _overlaps(rows, plan)
    if problems:
        problems.sort(key=lambda p: p[0] or 0)
        raise RosterFileError(problems[:MAX_ERRORS], max(0, len(problems) - MAX_ERRORS))
    if not rows:
        raise RosterFileError([(None, "no assignments: only a header")])
    agents: dict[str, Agent] = {}
    labels: dict[str, tuple[int, int]] = {}
    for r in rows:
        known = agents.get(r.agent.id, Agent(r.agent.id))
        agents[r.agent.id] = Agent(r.agent.id, known.name or r.agent.name, known.email or r.agent.email)
        lo, hi = labels.get(r.shift.label, (r.shift.start_ms, r.shift.end_ms))
        labels[r.shift.label] = (min(lo, r.shift.start_ms), max(hi, r.shift.end_ms))
    return Checked(rows, agents, labels)


def _agents_conflicts(rows: list[Row]) -> list[tuple[int, str]]:
    """An agent named (or mailed) differently on two rows of one file."""
    first: dict[tuple[str, str], tuple[str, int]] = {}
    out = []
    for r in rows:
        for what, value in (("name", r.agent.name), ("email", r.agent.email)):
            if not value:
                continue
            seen = first.setdefault((r.agent.id, what), (value, r.line))
            if seen[0] != value:
                out.append((r.line, f"agent {r.agent.id!r} has {what} {value!r} here but {seen[0]!r} on line "
                                    f"{seen[1]}: one agent, one {what} (or two agents, two ids)"))
    return out


def _overlaps(rows: list[Row], plan: Plan) -> list[tuple[int, str]]:
    """Duplicate rows, and assignments of one seat that overlap."""
    out = []
    by_seat: dict[str, list[Row]] = {}
    for r in rows:
        by_seat.setdefault(r.assignment.seat, []).append(r)
    for seat_rows in by_seat.values():
        seat_rows.sort(key=lambda r: (r.assignment.start_ms, r.line))
        latest = None  # the row reaching furthest so far
        for r in seat_rows:
            if latest is not None and r.assignment.start_ms < latest.assignment.end_ms:
                out.append((max(r.line, latest.line), overlap_text(r, latest, plan)))
            if latest is None or r.assignment.end_ms > latest.assignment.end_ms:
                latest = r
    return out


def overlap_text(r: Row, other: Row, plan: Plan) -> str:
    a, b = r.assignment, other.assignment
    line = min(r.line, other.line)
    if a == b:
        return f"duplicate of line {line}: remove one"
    if a.shift == b.shift and (a.start_ms, a.end_ms) == (b.start_ms, b.end_ms):
        return (f"seat {a.seat} has two agents for {a.shift} ({b.agent} on line {line}, {a.agent}): one seat, "
                f"one agent at a time (a seat change inside the shift needs from and to)")
    return (f"seat {a.seat} overlaps line {line}: {describe(b, plan)} and {describe(a, plan)}; one seat, "
            f"one agent at a time")


def describe(a: Assignment, plan: Plan) -> str:
    """'li.wei 2026-10-05/early 06:00-10:00' (local times), for messages."""
    return f"{a.agent} {a.shift} {plan.local(a.start_ms):%H:%M}-{plan.local(a.end_ms):%H:%M}"


# ---- against what is stored ----------------------------------------------------

def stored_overlaps(rows: list[Row], kept: list[Assignment], plan: Plan) -> list[tuple[int, str]]:
    """Rows that overlap a stored assignment the file does not replace (one
    of a shift the file does not mention, when the site's shifts overlap)."""
    by_seat: dict[str, list[Assignment]] = {}
    for a in kept:
        by_seat.setdefault(a.seat, []).append(a)
    out = []
    for r in rows:
        for a in by_seat.get(r.assignment.seat, ()):
            if a.start_ms < r.assignment.end_ms and r.assignment.start_ms < a.end_ms:
                out.append((r.line, f"seat {a.seat} overlaps the stored {describe(a, plan)}: clear that first "
                                    f"(seatmon roster clear) or put its shift in this file"))
                break
    return out


@dataclass(frozen=True)
class Changes:
    added: frozenset
    removed: frozenset
    unchanged: frozenset

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed)

    def text(self) -> str:
        return f"{len(self.added)} added, {len(self.removed)} removed, {len(self.unchanged)} unchanged"


def changes(old: list[Assignment], new: list[Assignment]) -> Changes:
    old_set, new_set = frozenset(old), frozenset(new)
    return Changes(new_set - old_set, old_set - new_set, new_set & old_set)


def agent_updates(given: dict[str, Agent], stored: dict[str, Agent]) -> list[Agent]:
    """The roster_agent points to write: new agents, and known ones whose
    name or e-mail the file gives differently. A name the file leaves empty
    keeps the stored one."""
    out = []
    for agent_id, a in sorted(given.items()):
        known = stored.get(agent_id)
        merged = Agent(agent_id, a.name or (known.name if known else ""), a.email or (known.email if known else ""))
        if merged != known:
            out.append(merged)
    return out
