# The on-board files' contract (shared/boardfiles.py): what the firmware
# accepts and refuses in board.json and secrets.json. Run by
# tests/test_boardfiles.py (CPython) and inside MicroPython by
# tests/test_micropython.py.

from shared import boardfiles
from tests.portable.check import contains, eq, raises

PINS = {"ring": 34, "hook": 35, "power": 32, "button": 33, "led": 2, "buzzer": 25, "relay": 26}


def _board(**over):
    raw = {"hardware": "rev-a", "board": "esp32", "pins": dict(PINS), "mqtt": {"host": "mqtt.hq.example"}}
    for k in over:
        raw[k] = over[k]
    return raw


def _err(raw):
    return raises(boardfiles.FileError, boardfiles.check_board, raw)


def test_every_role_comes_out_absent_ones_as_none():
    out = boardfiles.check_board(_board())
    eq(out["pins"]["disconnect"], None)
    eq(sorted(out["pins"]), sorted(boardfiles.PIN_ROLES))
    eq(out["led_kind"], "gpio")
    eq(out["power_adc"], False)
    eq(out["active_low"], ["ring", "hook"])
    return out["pins"]


def test_the_builder_writes_what_the_reader_takes():
    pins = {"ring": 4, "hook": 5, "power": 6, "button": 14, "led": 48, "relay": 7}
    raw = boardfiles.board_file("rev-b", "esp32-s3", pins, "mqtt.hq.example", 8883, led_kind="neopixel",
                                power_adc=True)
    out = boardfiles.check_board(raw)
    eq(out["pins"]["buzzer"], None)  # no buzzer on rev-b: none assumed
    eq(out["led_kind"], "neopixel")
    eq(out["power_adc"], True)
    eq(out["mqtt"], {"host": "mqtt.hq.example", "port": 8883, "tls": True, "ca": boardfiles.CA})
    return raw


def test_pins_that_break_a_board_are_refused():
    seen = []
    for chip, role, gpio, part in (("esp32", "button", 0, "boot-mode pin"), ("esp32", "ring", 1, "console UART"),
                                   ("esp32", "hook", 3, "console UART"), ("esp32", "relay", 12, "strapping"),
                                   ("esp32", "led", 34, "input-only"), ("esp32", "buzzer", 20, "not a usable pin"),
                                   ("esp32-s3", "relay", 19, "native USB"), ("esp32-s3", "led", 43, "UART"),
                                   ("esp32-s3", "buzzer", 25, "not a usable pin"),
                                   ("esp32-c3", "relay", 18, "USB"), ("esp32-c3", "button", 9, "boot-mode pin"),
                                   # the boot-mode pin for any role (a level held low at reset)
                                   ("esp32", "hook", 0, "boot-mode pin"), ("esp32", "led", 0, "boot-mode pin"),
                                   ("esp32-s3", "ring", 0, "boot-mode pin"), ("esp32-c3", "relay", 9, "boot-mode pin"),
                                   ("esp32-c3", "disconnect", 9, "boot-mode pin")):
        text = boardfiles.pin_problem(chip, role, gpio)
        contains(text or "", part)
        seen.append(text)
    contains(boardfiles.pin_problem("esp32", "power", 25, True), "ADC1 pins: 32-39")
    eq(boardfiles.pin_problem("esp32", "power", 25, False), None)
    eq(boardfiles.pin_problem("esp32-s3", "power", 6, True), None)
    return seen


def test_bad_board_files_name_the_key():
    out = []
    pins = dict(PINS)
    pins["buzzer"] = 26
    out.append(contains(_err(_board(pins=pins)), "board.json: pins.relay: GPIO 26 is already the buzzer pin"))
    pins = dict(PINS)
    pins["disc"] = 27
    out.append(contains(_err(_board(pins=pins)), "board.json: pins.disc: unknown pin"))
    pins = dict(PINS)
    del pins["ring"]
    out.append(contains(_err(_board(pins=pins)), "board.json: pins.ring: missing (required)"))
    out.append(contains(_err(_board(board="esp8266")), "board.json: board: unknown chip 'esp8266'"))
    out.append(contains(_err(_board(led_kind="rgb")), "board.json: led_kind: expected one of gpio, neopixel"))
    out.append(contains(_err(_board(mqtt={})), "board.json: mqtt.host: missing (required)"))
    out.append(contains(_err(_board(mqtt={"host": "h", "port": "8883"})), "mqtt.port: expected a non-negative integer"))
    out.append(contains(_err(_board(mqtt={"host": "h", "port": 0})), "mqtt.port: expected 1..65535"))
    out.append(contains(_err(_board(mqtt={"host": "h", "cafile": "x"})), "mqtt.cafile: unknown key"))
    out.append(contains(_err(_board(power_adc=1)), "power_adc: expected true or false"))
    out.append(contains(_err(_board(pin_map={})), "board.json: pin_map: unknown key"))
    out.append(contains(_err([]), "board.json: expected a JSON object"))
    return out


def test_secrets_hold_credentials_only():
    ok = boardfiles.secrets_file("ssid", "pw", "u-0001", "s3cret")
    eq(boardfiles.check_secrets(ok), ok)
    bad = dict(ok)
    bad["mqtt_host"] = "broker"  # the broker lives in board.json
    msg = raises(boardfiles.FileError, boardfiles.check_secrets, bad)
    contains(msg, "secrets.json: mqtt_host: unknown key")
    bad = dict(ok)
    bad["mqtt_password"] = 5
    contains(raises(boardfiles.FileError, boardfiles.check_secrets, bad), "mqtt_password: expected a string")
    return msg


def test_paths_in_board_json_are_under_the_root():
    eq(boardfiles.path_in("/", "ca.pem"), "/ca.pem")
    eq(boardfiles.path_in("/data/unit", "ca.pem"), "/data/unit/ca.pem")
    eq(boardfiles.path_in("/data/unit/", "/etc/ca.pem"), "/etc/ca.pem")
    eq(boardfiles.path_in("/", None), None)
    return "ok"
