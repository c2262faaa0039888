# The unit's configuration: one JSON object, validated key by key.
# Every error names the key; missing optional keys take the defaults below
# (documented in docs/firmware.md).

import json

from firmware import cadence

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Dict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHIFT_END_MODES = ("log", "remind", "cut")
POWER_SENSES = ("digital", "adc", "none")

# key: (kind, default, extra); default None with required=True below means required.
DEFAULTS = {  # type: Dict[str, tuple]
    "site": ("id", None),
    "unit": ("id", None),
    "seat": ("id", None),
    "cadence": ("str", "EU"),
    "cadences": ("cadences", {}),
    "limit_ms": ("int", 10000, (1000, 600000)),
    "limit_rings": ("int", 3, (0, 100)),
    "notice_ms": ("int", 5000, (0, 600000)),
    "apology_ms": ("int", 5000, (0, 600000)),
    "miss_margin_ms": ("int", 1500, (0, 60000)),
    "ring_join_ms": ("int", 120, (10, 1000)),
    "ring_min_ms": ("int", 150, (0, 2000)),
    "hook_debounce_ms": ("int", 30, (0, 1000)),
    "hook_blank_ms": ("int", 200, (0, 2000)),
    "button_debounce_ms": ("int", 30, (0, 1000)),
    "power_sense": ("enum", "digital", POWER_SENSES),
    "power_on_level": ("int", 2000, (0, 65535)),
    "power_off_level": ("int", 1500, (0, 65535)),
    "disconnect_supervision": ("bool", False),
    "buzzer": ("bool", False),
    "tz": ("tz", [[0, 0]]),
    "tz_name": ("zone", ""),
    "tz_until": ("int", 0, (0, 2 ** 53)),  # epoch ms where the tz table ends (0: not said)
    "issued": ("int", 0, (0, 2 ** 53)),  # epoch ms of the site file it was built from (0: not said)
    "shifts": ("shifts", {}),
    "overrides": ("overrides", {}),
    "shift_end_mode": ("enum", "log", SHIFT_END_MODES),
    "shift_end_grace_ms": ("int", 300000, (0, 86400000)),
    "postpone_ms": ("int", 1800000, (60000, 86400000)),
    "postpone_max": ("int", 4, (0, 100)),
    "remind_max_ms": ("int", 3600000, (0, 86400000)),
    "stuck_ring_ms": ("int", 10000, (1000, 600000)),
    "clock_wait_ms": ("int", 120000, (0, 86400000)),
    "journal_segment_bytes": ("int", 16384, (512, 65536)),
    "journal_segments": ("int", 32, (2, 1024)),
}
REQUIRED = ("site", "unit", "seat")
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
_ZONE_CHARS = _ID_CHARS + "/+"
ZONE_MAX = 64  # as shared/protocol.py's status field `tz`


class ConfigError(ValueError):
    """A bad config; `key` names the culprit."""

    def __init__(self, key, reason):
        self.key = key
        self.reason = reason
        if key:
            self.text = "config key '" + key + "': " + reason
        else:
            self.text = "config: " + reason
        super().__init__(self.text)

    def __str__(self):
        return self.text


def _is_int(v):
    return isinstance(v, int) and v is not True and v is not False


def _desc(v):
    if v is True or v is False:
        return "bool " + ("true" if v else "false")
    return type(v).__name__ + " " + repr(v)[:40]


def _is_id(v):
    if not isinstance(v, str) or not v or len(v) > 32:
        return False
    for ch in v:
        if ch not in _ID_CHARS:
            return False
    return True


def parse_hhmm(text):
    """'08:30' -> minutes after midnight, or None if malformed. '24:00' allowed."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        return None
    hh, mm = text[:2], text[3:]
    if not (hh.isdigit() and mm.isdigit()):
        return None
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _check_shift_list(key, shifts):
    if not isinstance(shifts, list):
        raise ConfigError(key, "expected a list of [name, \"HH:MM\", \"HH:MM\"], got " + _desc(shifts))
    out = []
    for i in range(len(shifts)):
        item = shifts[i]
        k = key + "[" + str(i) + "]"
        if not isinstance(item, list) or len(item) != 3:
            raise ConfigError(k, "expected [name, \"HH:MM\", \"HH:MM\"], got " + _desc(item))
        if not _is_id(item[0]):
            raise ConfigError(k, "shift name must be an id of [A-Za-z0-9-_.], got " + _desc(item[0]))
        start, end = parse_hhmm(item[1]), parse_hhmm(item[2])
        if start is None or start == 1440:
            raise ConfigError(k, "start must be \"HH:MM\" before 24:00, got " + _desc(item[1]))
        if end is None or end == start:
            raise ConfigError(k, "end must be \"HH:MM\" different from start, got " + _desc(item[2]))
        out.append((item[0], start, end))
    return out


def _is_date(text):
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    y, m, d = text[:4], text[5:7], text[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        return False
    return 1 <= int(m) <= 12 and 1 <= int(d) <= 31


def _check(key, value, spec):
    kind = spec[0]
    if kind == "int":
        if not _is_int(value):
            raise ConfigError(key, "expected an integer, got " + _desc(value))
        lo, hi = spec[2]
        if value < lo or value > hi:
            raise ConfigError(key, "expected " + str(lo) + ".." + str(hi) + ", got " + str(value))
        return value
    if kind == "bool":
        if value is not True and value is not False:
            raise ConfigError(key, "expected true or false, got " + _desc(value))
        return value
    if kind == "id":
        if not _is_id(value):
            raise ConfigError(key, "expected an id of 1-32 characters from [A-Za-z0-9-_.], got " + _desc(value))
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, "expected a string, got " + _desc(value))
        return value
    if kind == "enum":
        if value not in spec[2]:
            raise ConfigError(key, "expected one of " + ", ".join(spec[2]) + ", got " + _desc(value))
        return value
    if kind == "cadences":
        if not isinstance(value, dict):
            raise ConfigError(key, "expected an object of name: [on, off, ...], got " + _desc(value))
        for name in value:
            bad = cadence.check(value[name])
            if bad:
                raise ConfigError(key + "." + name, bad)
        return value
    if kind == "zone":
        # The site's IANA name, carried to the host in the birth message; the
        # unit reads local time from `tz` and has no zone database to check it.
        ok = isinstance(value, str) and len(value) <= ZONE_MAX
        if ok:
            for ch in value:
                if ch not in _ZONE_CHARS:
                    ok = False
        if not ok:
            raise ConfigError(key, "expected an IANA time-zone name of at most " + str(ZONE_MAX)
                              + " characters from [A-Za-z0-9-_./+] (\"\": unknown), got " + _desc(value))
        return value
    if kind == "tz":
        if not isinstance(value, list) or not value:
            raise ConfigError(key, "expected a non-empty list of [utc_ms, offset_minutes], got " + _desc(value))
        prev = None
        for i in range(len(value)):
            row = value[i]
            k = key + "[" + str(i) + "]"
            if not isinstance(row, list) or len(row) != 2 or not _is_int(row[0]) or not _is_int(row[1]):
                raise ConfigError(k, "expected [utc_ms, offset_minutes] integers, got " + _desc(row))
            if row[1] < -1440 or row[1] > 1440:
                raise ConfigError(k, "offset must be -1440..1440 minutes, got " + str(row[1]))
            if prev is not None and row[0] <= prev:
                raise ConfigError(k, "change instants must increase")
            prev = row[0]
        return value
    if kind == "shifts":
        if not isinstance(value, dict):
            raise ConfigError(key, "expected an object of weekday: shifts, got " + _desc(value))
        out = {}
        for day in value:
            if day not in WEEKDAYS:
                raise ConfigError(key + "." + day, "unknown weekday (expected one of " + ", ".join(WEEKDAYS) + ")")
            out[day] = _check_shift_list(key + "." + day, value[day])
        return out
    if kind == "overrides":
        if not isinstance(value, dict):
            raise ConfigError(key, "expected an object of \"YYYY-MM-DD\": shifts, got " + _desc(value))
        out = {}
        for day in value:
            if not _is_date(day):
                raise ConfigError(key + "." + day, "expected a date \"YYYY-MM-DD\"")
            out[day] = _check_shift_list(key + "." + day, value[day])
        return out
    raise ConfigError(key, "no checker for " + kind)


def validate(raw):
    """Return a complete config dict (defaults filled in), or raise ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("", "expected a JSON object, got " + _desc(raw))
    for key in raw:
        if key not in DEFAULTS:
            raise ConfigError(key, "unknown key")
    conf = {}
    for key in DEFAULTS:
        spec = DEFAULTS[key]
        if key in raw:
            conf[key] = _check(key, raw[key], spec)
        elif key in REQUIRED:
            raise ConfigError(key, "missing (required)")
        else:
            conf[key] = spec[1]
            if spec[0] in ("shifts", "overrides"):
                conf[key] = {}
    name = conf["cadence"]
    if name not in conf["cadences"] and name not in cadence.PROFILES:
        names = sorted(list(cadence.PROFILES) + list(conf["cadences"]))
        raise ConfigError("cadence", "unknown profile " + repr(name) + " (expected one of " + ", ".join(names) + ")")
    if conf["power_off_level"] > conf["power_on_level"]:
        raise ConfigError("power_off_level", "must not exceed power_on_level (" + str(conf["power_on_level"]) + ")")
    return conf


def parse(text):
    """Config file text -> validated config. JSON syntax errors keep the
    parser's message (CPython's names line and column)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError("", "not valid JSON: " + str(exc))
    return validate(raw)


def safe_defaults(raw=None):
    """The config a unit runs with when its own is bad: all defaults, no
    shifts (so no relay cut), identity salvaged from `raw` when it is valid."""
    conf = {}
    for key in DEFAULTS:
        conf[key] = DEFAULTS[key][1]
    conf["cadences"] = {}
    conf["shifts"] = {}
    conf["overrides"] = {}
    for key in REQUIRED:
        v = raw.get(key) if isinstance(raw, dict) else None
        conf[key] = v if _is_id(v) else "unconfigured"
    return conf
