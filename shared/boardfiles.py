# The files on a desk unit's flash, as one contract: provisioning builds them
# (tools/inventory.py, tools/flash.py) and the firmware reads them
# (firmware/main.py, firmware/shell.py) through this module only, so the two
# sides cannot drift apart. Portable MicroPython. docs/firmware.md lists the keys.
#
#   board.json    hardware (chip, pins, LED kind, power sense) and the broker
#   secrets.json  Wi-Fi and the unit's own MQTT account
#   config.json   the core's config (schema: firmware/config.py), last good one
#   ca.pem        the CA that signed the broker's certificate
#   provisioning  present while `seatmon flash provision` copies files: the
#                 unit does not start (nor its watchdog, which an ESP32 cannot
#                 stop and which would reset the board mid-copy); a flag left
#                 over holds it for firmware/main.py's HOLD_S only
#   crash.txt     why the last boot ended (main.py writes it before it resets
#                 the board; the next boot reports it as a fault, removes it)
#
# Pin rules per chip (CHIPS) are here too: the inventory refuses a pin that
# breaks a board, naming its key and line; the firmware refuses the same
# board.json, naming the key, before it touches a pin.

from shared import protocol
from shared.jsonfile import read_json, write_atomic  # noqa: F401  (part of this contract; the unit keeps only these)

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict

BOARD = "board.json"
SECRETS = "secrets.json"
CONFIG = "config.json"
CA = "ca.pem"
HOLD = "provisioning"
CRASH = "crash.txt"

INPUT_ROLES = ("ring", "hook", "power", "button", "disconnect")
OUTPUT_ROLES = ("led", "buzzer", "relay")
PIN_ROLES = INPUT_ROLES + OUTPUT_ROLES
REQUIRED_PINS = ("ring", "hook", "led")
LED_KINDS = ("gpio", "neopixel")

# Per chip: GPIOs that exist and are not wired to the module's flash/PSRAM
# (ranges), input-only ones, pins reserved for provisioning or strapping
# (never usable: reason), the boot-mode strapping pin (no button there), and
# ADC1 pins (ADC2 cannot be read while Wi-Fi is on).
CHIPS = {  # type: Dict[str, Dict[str, Any]]
    "esp32": {
        "gpio": ((0, 5), (12, 19), (21, 23), (25, 27), (32, 39)),
        "input_only": ((34, 39),),
        "reserved": {1: "the console UART's TX (provisioning)", 3: "the console UART's RX (provisioning)",
                     12: "a strapping pin (sets the flash voltage at reset)"},
        "boot": 0,
        "adc": ((32, 39),),
    },
    "esp32-s2": {
        "gpio": ((0, 21), (33, 46)),
        "input_only": ((46, 46),),
        "reserved": {19: "native USB D- (provisioning)", 20: "native USB D+ (provisioning)",
                     43: "the console UART's TX (provisioning)", 44: "the console UART's RX (provisioning)",
                     45: "a strapping pin (sets the flash voltage at reset)"},
        "boot": 0,
        "adc": ((1, 10),),
    },
    "esp32-s3": {
        "gpio": ((0, 21), (38, 48)),
        "input_only": (),
        "reserved": {19: "native USB D- (provisioning)", 20: "native USB D+ (provisioning)",
                     43: "the console UART's TX (provisioning)", 44: "the console UART's RX (provisioning)",
                     45: "a strapping pin (sets the flash voltage at reset)"},
        "boot": 0,
        "adc": ((1, 10),),
    },
    "esp32-c3": {
        "gpio": ((0, 11), (18, 21)),
        "input_only": (),
        "reserved": {11: "VDD_SPI (powers the flash)", 18: "native USB D- (provisioning)",
                     19: "native USB D+ (provisioning)", 20: "the console UART's RX (provisioning)",
                     21: "the console UART's TX (provisioning)"},
        "boot": 9,
        "adc": ((0, 4),),
    },
}

# Optional board.json settings with their defaults; a value must have the
# default's type (None: a string or null). The firmware takes its defaults
# from here. "mqtt" holds the link's, "host" among them.
MQTT_DEFAULTS = {"host": "127.0.0.1", "port": 1883, "prefix": protocol.DEFAULT_PREFIX, "keepalive": 30,
                 "tls": False, "ca": None, "max_inflight": 8, "drain_per_s": 20, "resend_ms": 30000,
                 "heartbeat_ms": 60000, "timeout_ms": 10000, "backoff_max_ms": 60000}
SHELL_DEFAULTS = {"period_ms": 10, "max_batch": 50, "wake_ms": 0, "sync_ms": 1000, "ntp_ms": 3600000,
                  "ntp_retry_ms": 60000, "ntp_host": None, "ntp_servers": [], "stable_ms": 120000, "wdt": True,
                  "wifi_timeout_ms": 20000}  # type: Dict[str, Any]
BOARD_DEFAULTS = {"led_kind": "gpio", "power_adc": False, "relay_active_low": False, "wdt_ms": 8000}
ACTIVE_LOW = ["ring", "hook"]  # opto outputs pull their pin down when active
# ota_key: the site's update key (firmware/ota.py), absent on a unit provisioned before updates
SECRET_KEYS = ("wifi_ssid", "wifi_password", "mqtt_user", "mqtt_password", "ota_key")


class FileError(ValueError):
    """A bad on-board file: `key` names the culprit (dotted)."""

    def __init__(self, name, key, reason):
        self.name = name
        self.key = key
        self.reason = reason
        self.text = name + ": " + key + ": " + reason if key else name + ": " + reason
        super().__init__(self.text)

    def __str__(self):
        return self.text


def _within(ranges, n):
    for lo, hi in ranges:
        if lo <= n <= hi:
            return True
    return False


def _ranges_text(ranges):
    return ", ".join(str(lo) if lo == hi else str(lo) + "-" + str(hi) for lo, hi in ranges)


def _is_int(v):
    return isinstance(v, int) and v is not True and v is not False


def pin_problem(chip, role, gpio, power_adc=False):
    """Why `gpio` cannot be the `role` pin on `chip`, or None when it can."""
    spec = CHIPS[chip]
    if not _is_int(gpio):
        return "expected a GPIO number, got " + repr(gpio)
    if not _within(spec["gpio"], gpio):
        return "GPIO " + str(gpio) + " is not a usable pin on " + chip + " (usable: " + _ranges_text(spec["gpio"]) + ")"
    if gpio in spec["reserved"]:
        return "GPIO " + str(gpio) + " is " + spec["reserved"][gpio] + " on " + chip
    if role in OUTPUT_ROLES and _within(spec["input_only"], gpio):
        return "GPIO " + str(gpio) + " is input-only on " + chip + " and cannot drive the " + role
    if gpio == spec["boot"]:
        # Sampled at reset: low starts the download mode instead of the unit.
        # A button held, an opto or sensor output, a driver's input: any of
        # them can hold it low through a reset, so no role may have it.
        why = "a button held" if role == "button" else "the " + role + " " + \
            ("pulling it low" if role in INPUT_ROLES else "circuit loading it")
        return "GPIO " + str(gpio) + " is the boot-mode pin on " + chip + \
            " (" + why + " at reset starts the download mode)"
    if role == "power" and power_adc and not _within(spec["adc"], gpio):
        return "GPIO " + str(gpio) + " cannot read the ADC power sense on " + chip + \
            " while Wi-Fi is on (ADC1 pins: " + _ranges_text(spec["adc"]) + ")"
    return None


def _typed(name, key, value, default):
    if default is None:
        ok = value is None or isinstance(value, str)
        want = "a string or null"
    elif default is True or default is False:
        ok = value is True or value is False
        want = "true or false"
    elif _is_int(default):
        ok = _is_int(value) and value >= 0
        want = "a non-negative integer"
    elif isinstance(default, list):  # ntp_servers: "host" or "host:port" each
        ok = isinstance(value, list) and len(value) <= 8 and \
            not [v for v in value if not isinstance(v, str) or not 0 < len(v) <= 64 or " " in v]
        want = "a list of at most 8 server names"
    else:
        ok = isinstance(value, str)
        want = "a string"
    if not ok:
        raise FileError(name, key, "expected " + want + ", got " + repr(value)[:40])
    return value


def _object(name, key, value):
    if not isinstance(value, dict):
        raise FileError(name, key, "expected a JSON object, got " + repr(value)[:40])
    return value


# ---- board.json -----------------------------------------------------------------

def check_board(raw):
    """A board.json object -> the settings the firmware runs with (every pin
    role present, None when not fitted; defaults filled). Raises FileError."""
    _object(BOARD, "", raw)
    out = {}
    for key in raw:
        if key not in ("hardware", "board", "pins", "active_low", "mqtt") and key not in BOARD_DEFAULTS \
                and key not in SHELL_DEFAULTS:
            raise FileError(BOARD, key, "unknown key")
    for key in ("hardware", "board"):
        if not isinstance(raw.get(key), str):
            raise FileError(BOARD, key, "missing (required)" if key not in raw else "expected a string")
    chip = raw["board"]
    if chip not in CHIPS:
        raise FileError(BOARD, "board", "unknown chip " + repr(chip) + " (expected one of " +
                        ", ".join(sorted(CHIPS)) + ")")
    out["hardware"] = raw["hardware"]
    out["board"] = chip
    for key in BOARD_DEFAULTS:
        out[key] = _typed(BOARD, key, raw.get(key, BOARD_DEFAULTS[key]), BOARD_DEFAULTS[key])
    for key in SHELL_DEFAULTS:
        if key in raw:
            out[key] = _typed(BOARD, key, raw[key], SHELL_DEFAULTS[key])
    if out["led_kind"] not in LED_KINDS:
        raise FileError(BOARD, "led_kind", "expected one of " + ", ".join(LED_KINDS) + ", got " + repr(out["led_kind"]))
    low = raw.get("active_low", ACTIVE_LOW)
    if not isinstance(low, list) or [r for r in low if r not in INPUT_ROLES]:
        raise FileError(BOARD, "active_low", "expected a list of input names (" + ", ".join(INPUT_ROLES) + ")")
    out["active_low"] = low
    pins = _object(BOARD, "pins", raw.get("pins"))
    used = {}  # type: Dict[int, str]
    for role in pins:
        if role not in PIN_ROLES:
            raise FileError(BOARD, "pins." + role, "unknown pin (expected one of " + ", ".join(PIN_ROLES) + ")")
    out["pins"] = {}
    for role in PIN_ROLES:
        gpio = pins.get(role)
        out["pins"][role] = gpio
        if gpio is None:
            if role in REQUIRED_PINS:
                raise FileError(BOARD, "pins." + role, "missing (required)")
            continue
        bad = pin_problem(chip, role, gpio, out["power_adc"])
        if bad:
            raise FileError(BOARD, "pins." + role, bad)
        if gpio in used:
            raise FileError(BOARD, "pins." + role, "GPIO " + str(gpio) + " is already the " + used[gpio] + " pin")
        used[gpio] = role
    mqtt = _object(BOARD, "mqtt", raw.get("mqtt", {}))
    out["mqtt"] = {}
    for key in mqtt:
        if key not in MQTT_DEFAULTS:
            raise FileError(BOARD, "mqtt." + key, "unknown key")
        out["mqtt"][key] = _typed(BOARD, "mqtt." + key, mqtt[key], MQTT_DEFAULTS[key])
    if "host" not in mqtt:
        raise FileError(BOARD, "mqtt.host", "missing (required)")
    port = out["mqtt"].get("port", MQTT_DEFAULTS["port"])
    if not 1 <= port <= 65535:
        raise FileError(BOARD, "mqtt.port", "expected 1..65535, got " + str(port))
    return out


def board_file(hardware, chip, pins, broker_host, broker_port, led_kind="gpio", power_adc=False,
               relay_active_low=False, tls=True, ntp_servers=None, active_low=None):
    """The board.json provisioning writes (validated): every pin role, null
    when not fitted; each input's polarity (active_low, always written); the
    broker, with the CA file when TLS; the site's NTP servers when it names
    them."""
    raw = {"hardware": hardware, "board": chip, "led_kind": led_kind, "power_adc": power_adc,
           "relay_active_low": relay_active_low,
           "active_low": list(ACTIVE_LOW if active_low is None else active_low),
           "pins": dict((role, pins.get(role)) for role in PIN_ROLES),
           "mqtt": {"host": broker_host, "port": broker_port, "tls": tls, "ca": CA if tls else None}}
    if ntp_servers:
        raw["ntp_servers"] = list(ntp_servers)
    check_board(raw)
    return raw


# ---- secrets.json ----------------------------------------------------------------

def check_secrets(raw):
    _object(SECRETS, "", raw)
    for key in raw:
        if key not in SECRET_KEYS:
            raise FileError(SECRETS, key, "unknown key (expected " + ", ".join(SECRET_KEYS) + ")")
        if not isinstance(raw[key], str):
            raise FileError(SECRETS, key, "expected a string")
    return raw


def secrets_file(wifi_ssid, wifi_password, mqtt_user, mqtt_password):
    return check_secrets({"wifi_ssid": wifi_ssid, "wifi_password": wifi_password,
                          "mqtt_user": mqtt_user, "mqtt_password": mqtt_password})


# ---- reading and writing on the unit ---------------------------------------------------

def path_in(root, name):
    """A file named in board.json (e.g. the CA), under the unit's root."""
    if name is None or name.startswith("/"):
        return name
    return (root if root.endswith("/") else root + "/") + name


def read_checked(path, check):
    """-> (checked object or None, error text or None) for board.json and
    secrets.json (check_board, check_secrets)."""
    obj, err = read_json(path)
    if obj is None:
        return None, err
    try:
        return check(obj), None
    except FileError as exc:
        return None, str(exc)
