# Reminder patterns as data. The core only says which pattern is active; the
# shell renders it with level() (LED) and buzz() (buzzer), both pure.
#
# A pattern: "led" and "buzz" are (on_ms, off_ms, ...) cycles repeated while
# active; (1, 0) is steady on, () is off. Higher "prio" wins when several apply.

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict

PATTERNS = {  # type: Dict[str, Dict[str, Any]]
    "idle": {"prio": 0, "led": (), "buzz": ()},
    "missed": {"prio": 10, "led": (200, 1800), "buzz": ()},
    "shift_end": {"prio": 20, "led": (500, 500), "buzz": (100, 2900)},
    "fault": {"prio": 30, "led": (1, 0), "buzz": ()},
    "apologise": {"prio": 40, "led": (100, 100), "buzz": ()},
    "notice": {"prio": 50, "led": (250, 750), "buzz": ()},
    "urgent": {"prio": 60, "led": (100, 150), "buzz": (100, 400)},
}


def _cycle(steps, elapsed_ms):
    if not steps:
        return False
    period = 0
    for s in steps:
        period += s
    if period <= 0:
        return False
    t = elapsed_ms % period
    on = True
    for s in steps:
        if t < s:
            return on
        t -= s
        on = not on
    return on


def level(name, elapsed_ms):
    """LED on/off for pattern `name`, `elapsed_ms` after it became active."""
    return _cycle(PATTERNS[name]["led"], elapsed_ms)


def buzz(name, elapsed_ms):
    """Buzzer on/off, same timing rules as level()."""
    return _cycle(PATTERNS[name]["buzz"], elapsed_ms)


def strongest(names):
    """The highest-priority pattern among `names` ("idle" if empty)."""
    best = "idle"
    for n in names:
        if PATTERNS[n]["prio"] > PATTERNS[best]["prio"]:
            best = n
    return best
