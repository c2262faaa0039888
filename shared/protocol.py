# seatmon wire protocol, version 1.
#
# Imported unchanged by the desk-unit firmware (MicroPython) and the host
# (CPython), so it keeps to their common subset: no dataclasses, no typing at
# runtime, no f-strings, no dict-order assumptions (MicroPython dicts are
# unordered) and no reliance on bool being an int (it is not on MicroPython).
#
# Every message is one compact JSON object. The schema lives in the tables
# below as data; validate() walks them and names the first field that is off.

import json

VERSION = 1
TOPIC_VERSION = "v1"
DEFAULT_PREFIX = "seatmon"
MAX_PAYLOAD = 2048  # bytes; an event is ~300, a status ~200

# Channels under seatmon/v1/<site>/<unit>/<channel>
EVENT = "event"  # unit -> host, QoS1, not retained
STATUS = "status"  # unit -> host, retained; also the Last Will
HEARTBEAT = "heartbeat"  # unit -> host, QoS0/1, not retained
CONFIG = "config"  # host -> unit, retained
ACK = "ack"  # collector -> unit, retained
LIVE = "live"  # unit -> host, QoS0, retained: the seat's state right now, for the wallboard
UPDATE = "update"  # host (update account) -> unit: a retained signed offer, then binary chunks (firmware/ota.py)
UPDATE_ACK = "update_ack"  # unit -> host, QoS1: the chunk the unit wants next, or why it refused
CHANNELS = (EVENT, STATUS, HEARTBEAT, CONFIG, ACK, LIVE, UPDATE, UPDATE_ACK)

# Event kinds
CALL = "call"
OUTGOING = "outgoing"
REMINDER = "reminder"
SELFTEST = "selftest"
SHIFT_END = "shift_end"
POSTPONE = "postpone"
FAULT = "fault"
CLOCK = "clock"  # the unit learnt the time: how to correct this boot's unsynced stamps
UPDATE_EVENT = "update"  # an over-the-air update's milestones (step)

OUTCOMES = ("answered", "missed", "abandoned")
EXCEEDED = ("time", "rings", "both")
HANGUP_SIDES = ("agent", "caller")
CLOCK_SOURCES = ("ntp", "unsynced")
EQUIPMENT_STATES = ("off", "on", "unknown")
SHIFT_END_ACTIONS = ("none", "logged", "reminded", "cut", "postponed")
REMINDER_ACTIONS = ("start", "stop", "ack")
STATUS_STATES = ("online", "offline")
LIVE_STATES = ("idle", "ringing", "talking", "outgoing")
UPDATE_STEPS = ("receiving", "refused", "failed", "staged", "confirmed", "rolled_back")

# Identifier rules: used in topics, so no MQTT wildcards, separators or spaces.
ID_MAX = 32
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

# Epoch ms bounds that reject obvious nonsense (2020-01-01 .. 2100-01-01).
TS_MIN = 1577836800000
TS_MAX = 4102444800000


class ProtocolError(ValueError):
    """A message that does not follow the protocol. `field` names the culprit
    ("" for the message as a whole), `reason` says what was expected."""

    def __init__(self, field, reason):
        if field:
            text = "field '" + field + "': " + reason
        else:
            text = reason
        super().__init__(text)
        self.field = field
        self.reason = reason
        self.text = text

    def __str__(self):
        return self.text


# ---- field specs ---------------------------------------------------------
# A spec is a tuple (name, type, required, extra) where type is one of the
# names in _CHECKS and extra is an enum tuple, an (lo, hi) range or None.

# Equal specs (and ranges) in several tables are one tuple: on the unit each
# is heap, about 1 KB of repeats ("v", "site", "unit", "ts", ...).
_seen = {}  # type: dict  # while the tables are built


def _f(name, ftype, required=True, extra=None):
    if isinstance(extra, tuple):
        extra = _seen.setdefault(extra, extra)
    spec = (name, ftype, required, extra)
    return _seen.setdefault(spec, spec)


def _type_name(value):
    if value is None:
        return "null"
    if value is True or value is False:
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _is_int(v):
    return isinstance(v, int) and v is not True and v is not False


def _is_num(v):
    return _is_int(v) or isinstance(v, float)


def _is_bool(v):
    return v is True or v is False


def _is_word(v, chars, max_len):
    """A non-empty string of at most max_len characters, all from `chars`."""
    if not isinstance(v, str) or not v or len(v) > max_len:
        return False
    for ch in v:
        if ch not in chars:
            return False
    return True


def _is_id(v):
    return _is_word(v, _ID_CHARS, ID_MAX)


def _is_clean(s):
    """A string the host can store and give back exactly: encodable as UTF-8
    (JSON's \\ud800 escapes decode to lone surrogates on CPython) and free of
    control characters (InfluxDB's line protocol cannot carry them)."""
    try:
        s.encode("utf-8")
    except Exception:
        return False
    for ch in s:
        c = ord(ch)
        if c < 0x20 or 0x7F <= c < 0xA0:
            return False
    return True


def _is_text(v):
    return isinstance(v, str) and len(v) <= 200 and _is_clean(v)


def _is_label(v):
    # A shift label becomes an InfluxDB tag, which cannot end in a backslash:
    # labels keep to printable characters without one.
    return isinstance(v, str) and 0 < len(v) <= 48 and "\\" not in v and _is_clean(v)


# An IANA time-zone name ("Asia/Shanghai", "America/Argentina/Buenos_Aires",
# "Etc/GMT+5", "UTC"): the unit only carries it, the host checks it against
# its zone database.
ZONE_MAX = 64
_ZONE_CHARS = _ID_CHARS + "/+"


def _is_zone(v):
    return _is_word(v, _ZONE_CHARS, ZONE_MAX)


def _is_str_list(v):
    if not isinstance(v, list) or len(v) > 16:
        return False
    for item in v:
        # Stored joined by commas: an item holding one could not be told apart.
        if not isinstance(item, str) or not 0 < len(item) <= 64 or "," in item or not _is_clean(item):
            return False
    return True


_INF = float("inf")
OBJECT_DEPTH = 4  # nesting allowed inside an "object" field (selftest checks, unit config)
_INT64 = 2 ** 63


def _is_plain(v, depth):
    """JSON data that round-trips exactly: finite numbers within int64, clean
    strings and keys, nesting at most OBJECT_DEPTH deep."""
    if v is None or v is True or v is False:
        return True
    if isinstance(v, int):
        return -_INT64 <= v < _INT64
    if isinstance(v, float):
        return v == v and v != _INF and v != -_INF
    if isinstance(v, str):
        return _is_clean(v)
    if depth >= OBJECT_DEPTH:
        return False
    if isinstance(v, list):
        for item in v:
            if not _is_plain(item, depth + 1):
                return False
        return True
    if isinstance(v, dict):
        for key in v:
            if not isinstance(key, str) or not _is_clean(key) or not _is_plain(v[key], depth + 1):
                return False
        return True
    return False


def _is_object(v):
    return isinstance(v, dict) and _is_plain(v, 0)


_CHECKS = {
    "int": (_is_int, "an integer"),
    "num": (_is_num, "a number"),
    "bool": (_is_bool, "true or false"),
    "id": (_is_id, "an id of 1-32 characters from [A-Za-z0-9-_.]"),
    "text": (_is_text, "a string of at most 200 printable characters"),
    "zone": (_is_zone, "an IANA time-zone name of 1-" + str(ZONE_MAX) + " characters from [A-Za-z0-9-_./+]"),
    "strlist": (_is_str_list, "a list of at most 16 strings of 1-64 printable characters without a comma"),
    "object": (_is_object, "an object of JSON data (finite numbers, printable strings, at most "
               + str(OBJECT_DEPTH) + " levels deep)"),
    "shift": (_is_label, "a shift label of 1-48 printable characters without a backslash, such as '2026-11-22/night'"),
}

# Fields every event carries.
EVENT_COMMON = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("kind", "id"),
    _f("site", "id"),
    _f("unit", "id"),
    _f("seat", "id"),
    _f("boot", "int", True, (0, 2147483647)),
    _f("seq", "int", True, (1, 2 ** 53)),
    _f("inc", "id", False),  # the board's incarnation; absent from units before incarnations
    _f("ts", "int", True, (TS_MIN, TS_MAX)),
    _f("clock", "id", True, CLOCK_SOURCES),
    _f("shift", "shift", False),
)

# Fields per event kind, on top of EVENT_COMMON. `ts` is the first-ring time
# for a call and the event time for everything else.
EVENT_FIELDS = {
    CALL: (
        _f("outcome", "id", True, OUTCOMES),
        _f("rings", "int", True, (0, 1000)),
        _f("ring_ms", "int", True, (0, 86400000)),  # first ring to answer, or to ringing stopped
        _f("answer_ms", "int", False, (0, 86400000)),  # null unless answered
        _f("within_limit", "bool"),
        _f("limit_ms", "int", True, (0, 600000)),
        _f("limit_rings", "int", False, (0, 100)),  # 0: no ring limit; absent from units before it was sent
        # The limit the call went past (answered late, or rang past it): absent when in time.
        _f("exceeded", "id", False, EXCEEDED),
        _f("apology_prompted", "bool"),
        _f("talk_ms", "int", False, (0, 86400000)),
        _f("hung_up_first", "id", False, HANGUP_SIDES),
    ),
    OUTGOING: (
        _f("talk_ms", "int", True, (0, 86400000)),
        _f("hung_up_first", "id", False, HANGUP_SIDES),
    ),
    REMINDER: (
        _f("pattern", "id"),
        _f("action", "id", True, REMINDER_ACTIONS),
        _f("reason", "text", False),
    ),
    SELFTEST: (
        _f("ok", "bool"),
        _f("checks", "object"),
        _f("faults", "strlist"),
    ),
    SHIFT_END: (
        _f("equipment", "id", True, EQUIPMENT_STATES),
        _f("action", "id", True, SHIFT_END_ACTIONS),
        _f("idle_ms", "int", True, (0, 2 ** 40)),
        _f("off_after_ms", "int", False, (0, 2 ** 40)),  # time from shift end until found off
        _f("overtime_ms", "int", False, (0, 2 ** 40)),
    ),
    POSTPONE: (
        _f("granted_ms", "int", True, (0, 86400000)),
        _f("count", "int", True, (1, 1000)),
    ),
    FAULT: (
        _f("code", "id"),
        _f("detail", "text", False),
    ),
    CLOCK: (
        _f("offset_ms", "int", True, (-2 ** 42, 2 ** 42)),  # true time minus this boot's unsynced stamps
        _f("unsynced", "int", True, (1, 2 ** 31)),  # events of this boot stamped unsynced
    ),
    UPDATE_EVENT: (
        _f("step", "id", True, UPDATE_STEPS),
        _f("version", "id"),
        _f("detail", "text", False),
    ),
}

STATUS_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("site", "id"),
    _f("unit", "id"),
    _f("state", "id", True, STATUS_STATES),
    _f("ts", "int", False, (TS_MIN, TS_MAX)),
    _f("boot", "int", False, (0, 2147483647)),
    _f("fw", "text", False),
    _f("reason", "text", False),
    _f("ip", "text", False),
    _f("seat", "id", False),
    _f("tz", "zone", False),  # the site's IANA zone, from the unit's config
)

HEARTBEAT_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("site", "id"),
    _f("unit", "id"),
    _f("boot", "int", True, (0, 2147483647)),
    _f("ts", "int", True, (TS_MIN, TS_MAX)),
    _f("uptime_s", "int", True, (0, 2 ** 40)),
    _f("heap_free", "int", True, (0, 2 ** 40)),
    _f("rssi", "int", False, (-150, 0)),
    _f("journal_depth", "int", True, (0, 2 ** 40)),
    _f("dropped", "int", True, (0, 2 ** 40)),
    # Every seq at or below `acked` is either stored on the host or was
    # dropped from a full journal: the collector never waits for those.
    _f("acked", "int", True, (0, 2 ** 53)),
    _f("clock_offset_ms", "int", False, (-2 ** 40, 2 ** 40)),
    _f("inc", "id", False),  # whose seqs `acked` counts
    _f("config", "id", False),  # the id of the pushed config the unit runs (CONFIG's `id`)
    # Days until the unit's time-zone table ends, once fewer than the unit's
    # warning margin: refresh it with `seatmon unit config push`.
    _f("tz_days_left", "int", False, (0, 2 ** 20)),
)

ACK_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("unit", "id"),
    _f("seq", "int", True, (0, 2 ** 53)),  # highest contiguous seq durably handled
    _f("ts", "int", False, (TS_MIN, TS_MAX)),
    _f("inc", "id", False),  # the incarnation the seq belongs to (absent: the legacy one)
)

LIVE_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("site", "id"),
    _f("unit", "id"),
    _f("seat", "id"),
    _f("state", "id", True, LIVE_STATES),
    _f("since", "int", False, (TS_MIN, TS_MAX)),  # epoch ms the state began (null if the clock is unknown)
    _f("rings", "int", False, (0, 1000)),  # rings so far, while ringing
    _f("pattern", "id"),  # the reminder pattern showing now
    _f("missed_pending", "bool"),  # a missed-call reminder waits for the button
    _f("left_on", "bool"),  # equipment still on after the shift ended
    _f("shift", "shift", False),
    _f("ts", "int", False, (TS_MIN, TS_MAX)),
)

CONFIG_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("config", "object"),
    _f("id", "id", False),  # named by the host; the unit's heartbeats echo it once it runs this config
)

# The unit's answer on update_ack: the next chunk of image `image` (the first
# 8 hex digits of its SHA-256) it wants, `staged` once all are in and
# verified, or `error`: why it refused the offer or dropped the transfer
# (with `rolled_back` when the unit ran that image and went back from it).
UPDATE_ACK_FIELDS = (
    _f("v", "int", True, (VERSION, VERSION)),
    _f("site", "id"),
    _f("unit", "id"),
    _f("image", "id"),
    _f("next", "int", False, (0, 2 ** 31)),
    _f("of", "int", False, (0, 2 ** 31)),
    _f("staged", "bool", False),
    _f("error", "text", False),
    _f("rolled_back", "bool", False),
)

_CHANNEL_FIELDS = {
    UPDATE_ACK: UPDATE_ACK_FIELDS,
    STATUS: STATUS_FIELDS,
    HEARTBEAT: HEARTBEAT_FIELDS,
    ACK: ACK_FIELDS,
    CONFIG: CONFIG_FIELDS,
    LIVE: LIVE_FIELDS,
}
del _seen, _f


# ---- topics ----------------------------------------------------------------

def topic(site, unit, channel, prefix=DEFAULT_PREFIX):
    """seatmon/v1/<site>/<unit>/<channel>"""
    if not _is_id(site):
        raise ProtocolError("site", "expected " + _CHECKS["id"][1] + ", got " + repr(site))
    if not _is_id(unit):
        raise ProtocolError("unit", "expected " + _CHECKS["id"][1] + ", got " + repr(unit))
    if channel not in CHANNELS:
        raise ProtocolError("channel", "expected one of " + ", ".join(CHANNELS) + ", got " + repr(channel))
    return prefix + "/" + TOPIC_VERSION + "/" + site + "/" + unit + "/" + channel


def subscription(channel, prefix=DEFAULT_PREFIX, site="+"):
    """A filter for one channel of every unit (of one site, or all sites)."""
    return prefix + "/" + TOPIC_VERSION + "/" + site + "/+/" + channel


def parse_topic(name, prefix=DEFAULT_PREFIX):
    """Return (site, unit, channel) or raise ProtocolError."""
    parts = name.split("/")
    pparts = prefix.split("/")
    n = len(pparts)
    if len(parts) != n + 4 or parts[:n] != pparts:
        raise ProtocolError("topic", "expected " + prefix + "/" + TOPIC_VERSION
                            + "/<site>/<unit>/<channel>, got " + repr(name))
    if parts[n] != TOPIC_VERSION:
        raise ProtocolError("topic", "unsupported protocol version " + repr(parts[n]))
    site, unit, channel = parts[n + 1], parts[n + 2], parts[n + 3]
    if not _is_id(site):
        raise ProtocolError("topic", "bad site id " + repr(site))
    if not _is_id(unit):
        raise ProtocolError("topic", "bad unit id " + repr(unit))
    if channel not in CHANNELS:
        raise ProtocolError("topic", "unknown channel " + repr(channel))
    return site, unit, channel


# ---- validation ------------------------------------------------------------

def _check_fields(msg, specs):
    """Check the fields `specs` name; return how many of them `msg` has
    (with a value or null), so that the caller can tell whether it holds any
    other without building a list of names (the unit checks every message
    it sends)."""
    known = 0
    for spec in specs:
        name, ftype, required, extra = spec
        if name in msg:
            known += 1
        if name not in msg or msg[name] is None:
            if required:
                raise ProtocolError(name, "missing (expected " + _CHECKS[ftype][1] + ")")
            continue
        value = msg[name]
        check, expected = _CHECKS[ftype]
        if not check(value):
            raise ProtocolError(name, "expected " + expected + ", got " + _type_name(value) + " " + _short(value))
        if extra is None:
            continue
        if isinstance(extra, tuple) and len(extra) == 2 and _is_num(extra[0]):
            if value < extra[0] or value > extra[1]:
                raise ProtocolError(name, "expected a value from " + str(extra[0]) + " to "
                                    + str(extra[1]) + ", got " + str(value))
        elif value not in extra:
            raise ProtocolError(name, "expected one of " + ", ".join(extra) + ", got " + _short(value))
    return known


def _short(value):
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return text


def _safe_name(name):
    # Field names come from the sender: quote anything odd, so the error text
    # itself is always printable and storable.
    if isinstance(name, str) and len(name) <= 40 and _is_clean(name):
        return name
    return _short(name)


def _unknown(msg, specs, more=()):
    """The error for the first field of `msg` that neither `specs` nor `more` names."""
    names = [s[0] for s in specs + more]
    for key in msg:
        if key not in names:
            return ProtocolError(_safe_name(key), "unknown field")
    return ProtocolError("", "unknown field")  # not reached: the caller counted one


def validate_event(msg):
    """Check an event dict; return it, or raise ProtocolError."""
    if not isinstance(msg, dict):
        raise ProtocolError("", "expected a JSON object, got " + _type_name(msg))
    if "kind" in msg and isinstance(msg["kind"], str) and msg["kind"] not in EVENT_FIELDS:
        raise ProtocolError("kind", "unknown event kind " + _short(msg["kind"])
                            + " (expected one of " + ", ".join(sorted(EVENT_FIELDS)) + ")")
    known = _check_fields(msg, EVENT_COMMON)
    specs = EVENT_FIELDS[msg["kind"]]
    known += _check_fields(msg, specs)
    if known != len(msg):
        raise _unknown(msg, EVENT_COMMON, specs)
    if msg["kind"] == CALL:
        _check_call(msg)
    return msg


def _check_call(msg):
    answered = msg["outcome"] == "answered"
    has_answer = msg.get("answer_ms") is not None
    if answered and not has_answer:
        raise ProtocolError("answer_ms", "missing for an answered call")
    if not answered and has_answer:
        raise ProtocolError("answer_ms", "must be null for a call that was not answered")
    if not answered and msg["within_limit"]:
        raise ProtocolError("within_limit", "must be false for a call that was not answered")
    if msg["within_limit"] and msg.get("exceeded") is not None:
        raise ProtocolError("exceeded", "must be absent for a call answered within the limit")


def validate(channel, msg):
    """Check a message of any channel; return it, or raise ProtocolError."""
    if channel == EVENT:
        return validate_event(msg)
    if channel not in _CHANNEL_FIELDS:
        raise ProtocolError("channel", "unknown channel " + _short(channel))
    if not isinstance(msg, dict):
        raise ProtocolError("", "expected a JSON object, got " + _type_name(msg))
    specs = _CHANNEL_FIELDS[channel]
    if _check_fields(msg, specs) != len(msg):
        raise _unknown(msg, specs)
    return msg


# ---- encoding --------------------------------------------------------------

def encode(channel, msg):
    """Validate and serialise to compact JSON bytes."""
    validate(channel, msg)
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_PAYLOAD:
        raise ProtocolError("", "message is " + str(len(data)) + " bytes, over the "
                            + str(MAX_PAYLOAD) + "-byte limit")
    return data


def decode(channel, payload):
    """Parse and validate bytes (or str) received on `channel`."""
    if isinstance(payload, str):
        payload = payload.encode()
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("", "payload is " + str(len(payload)) + " bytes, over the "
                            + str(MAX_PAYLOAD) + "-byte limit")
    try:
        text = payload.decode()
    except Exception:
        raise ProtocolError("", "payload is not UTF-8")
    try:
        msg = json.loads(text)
    except Exception:
        raise ProtocolError("", "payload is not valid JSON")
    return validate(channel, msg)


def event_id(msg):
    """(unit, boot, seq): an event's identity within its incarnation."""
    return (msg["unit"], msg["boot"], msg["seq"])


def incarnation(msg):
    """The board incarnation a message speaks for: "" (the legacy one) when
    it names none. The collector de-duplicates on (unit, incarnation, seq)."""
    return msg.get("inc") or ""


def check_topic_matches(site, unit, msg):
    """A unit may only speak for itself: the payload must name the topic's unit."""
    if msg.get("unit") != unit:
        raise ProtocolError("unit", "payload names unit " + _short(msg.get("unit"))
                            + " but was published under unit " + _short(unit))
    if "site" in msg and msg["site"] != site:
        raise ProtocolError("site", "payload names site " + _short(msg.get("site"))
                            + " but was published under site " + _short(site))
