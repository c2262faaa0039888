"""The site inventory (`site.toml`): load, validate, and build each unit's
device configuration from it. See deploy/site.example.toml and
docs/technicians.md.

tomllib parses; it keeps no positions, so `LineIndex` maps each key path to
its line by a small scan of the source text (table headers, array-of-table
counters, `key =` lines). That keeps the standard library's parser (no
dependency) and is enough for error messages: every `InventoryError` names
the key path and the line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tomllib
import zoneinfo
from pathlib import Path

from seatmon import options
from shared import boardfiles
from tools import images, tztable

# ---- the schema ---------------------------------------------------------------

TOP_KEYS = ("site", "wifi", "broker", "limits", "shifts", "overrides", "hardware", "units",
            # the host side's tables (seatmon/sitefile.py): InfluxDB, collector, wallboard
            "influx", "collector", "wallboard", "privacy")
SITE_KEYS = ("id", "timezone", "power_mode", "power_sense", "cadence", "disconnect_supervision", "ntp_servers")
WIFI_KEYS = ("ssid", "password")
BROKER_KEYS = ("host", "port", "tls", "ca", "cert", "key", "credentials")
INFLUX_KEYS = ("url", "database", "username", "password", "token")  # read by the host programs (seatmon.sitefile)
PRIVACY_KEYS = ("roster_months",)  # `seatmon data retention` (seatmon/retention.py)
SELFCHECK_UNIT = "selfcheck"  # reserved: the unit id of `seatmon selfcheck`'s test event
HARDWARE_KEYS = ("board", "firmware", "pins", "led_kind", "relay_active_low", "active_low")
# Inputs whose polarity a revision sets (the button is always a contact to ground).
POLARITY_INPUTS = tuple(r for r in boardfiles.INPUT_ROLES if r != "button")
UNIT_KEYS = ("id", "seat", "hardware", "port", "uid", "limits", "pins", "power_mode", "power_sense", "cadence",
             "shifts")
# Integer settings of the firmware's config (firmware/config.py) a site may set.
LIMIT_KEYS = (
    "limit_ms", "limit_rings", "notice_ms", "apology_ms", "miss_margin_ms", "ring_join_ms",
    "ring_min_ms", "hook_debounce_ms", "hook_blank_ms", "button_debounce_ms", "power_on_level",
    "power_off_level", "shift_end_grace_ms", "postpone_ms", "postpone_max", "remind_max_ms",
    "stuck_ring_ms", "clock_wait_ms", "journal_segment_bytes", "journal_segments",
)
POWER_MODES = ("log", "remind", "cut")  # the firmware's shift_end_mode
POWER_SENSES = ("digital", "adc", "none")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Pin roles and the per-chip pin rules are the on-board files' contract
# (shared/boardfiles.py), which the firmware checks too.
PIN_ROLES = boardfiles.PIN_ROLES
REQUIRED_PINS = boardfiles.REQUIRED_PINS
BOARDS = tuple(boardfiles.CHIPS)

ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
HHMM_RE = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TZ_YEARS = 3  # offset-change rows from this year on, for the unit's clock


class InventoryError(ValueError):
    """A bad inventory: `key` is the dotted path, `line` the line in the file (or None)."""

    def __init__(self, path: str, key: str, line: int | None, reason: str):
        self.path, self.key, self.line, self.reason = path, key, line, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {reason}")


# ---- line index ---------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def _split_key(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text)]


class LineIndex:
    """Key path (tuple, array entries as indexes) -> first line it appears on."""

    def __init__(self, text: str):
        self.lines: dict[tuple, int] = {}
        counters: dict[tuple, int] = {}
        table: tuple = ()
        depth = 0  # inside a multi-line array or inline table, keys are not top-level
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0] if '"' not in raw and "'" not in raw else raw
            if depth == 0:
                header = _HEADER.match(line)
                if header:
                    path = tuple(_split_key(header.group(2)))
                    if header.group(1) == "[[":
                        index = counters.get(path, -1) + 1
                        counters[path] = index
                        table = path + (index,)
                    else:
                        table = self._resolve(path, counters)
                    self.lines.setdefault(table, number)
                    continue
                key = _KEY.match(line)
                if key:
                    path = table + tuple(_split_key(key.group(1)))
                    self.lines.setdefault(path, number)
                    rest = line[key.end():]
                    for name, _ in re.findall(r"([A-Za-z0-9_-]+)\s*=(?!=)([^,}]*)", rest):
                        self.lines.setdefault(path + (name,), number)
                    depth += rest.count("[") - rest.count("]") + rest.count("{") - rest.count("}")
                    continue
            else:
                depth += line.count("[") - line.count("]") + line.count("{") - line.count("}")

    @staticmethod
    def _resolve(path: tuple, counters: dict) -> tuple:
        # [units.limits] after [[units]] belongs to the latest units entry
        for cut in range(len(path), 0, -1):
            if path[:cut] in counters:
                return path[:cut] + (counters[path[:cut]],) + path[cut:]
        return path

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


# ---- the validated inventory ----------------------------------------------------

class Site:
    """A validated inventory. `units` keeps file order; `unit(id)` finds one."""

    def __init__(self, path: Path, data: dict, index: LineIndex):
        self.path = path
        self.data = data
        self.index = index
        self.id = data["site"]["id"]
        self.timezone = data["site"]["timezone"]
        self.units = data["units"]
        try:  # the configs built from this file say which version of it they came from
            self.issued_ms = int(path.stat().st_mtime * 1000)
        except OSError:
            self.issued_ms = 0

    def unit(self, unit_id: str) -> dict:
        for unit in self.units:
            if unit["id"] == unit_id:
                return unit
        raise InventoryError(str(self.path), "units", None,
                             f"no unit {unit_id!r}" + _suggest(unit_id, [u["id"] for u in self.units]))

    def relative(self, value: str) -> Path:
        """A path from the inventory, relative to the inventory's folder."""
        p = Path(value)
        return p if p.is_absolute() else self.path.parent / p

    def pins(self, unit: dict) -> dict:
        pins = dict(self.data["hardware"][unit["hardware"]].get("pins", {}))
        pins.update(unit.get("pins", {}))
        return pins


_suggest = options.did_you_mean


class _Checker:
    def __init__(self, path: Path, index: LineIndex):
        self.path, self.index = path, index

    def fail(self, keys: tuple, reason: str):
        name = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys).replace(".[", "[")
        raise InventoryError(str(self.path), name, self.index.line(keys), reason)

    def known(self, table: dict, keys: tuple, allowed) -> None:
        for key in table:
            if key not in allowed:
                self.fail(keys + (key,), "unknown key" + _suggest(key, allowed))

    def table(self, data: dict, keys: tuple, required=True) -> dict:
        value = data
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(keys, "missing table" if value is None else f"expected a table, got {value!r}")
        return value

    def value(self, table: dict, keys: tuple, kind, required=True, choices=None):
        key = keys[-1]
        if key not in table:
            if required:
                self.fail(keys, "missing (required)")
            return None
        v = table[key]
        if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
            self.fail(keys, f"expected an integer, got {v!r}")
        if kind is str and not isinstance(v, str):
            self.fail(keys, f"expected a string, got {v!r}")
        if kind is bool and not isinstance(v, bool):
            self.fail(keys, f"expected true or false, got {v!r}")
        if kind == "id" and not (isinstance(v, str) and ID_RE.match(v)):
            self.fail(keys, f"expected an id of 1-32 characters from [A-Za-z0-9-_.], got {v!r}")
        if choices is not None and v not in choices:
            self.fail(keys, f"expected one of {', '.join(choices)}, got {v!r}" + _suggest(str(v), choices))
        return v

    def shifts(self, table: dict, keys: tuple, dated: bool) -> None:
        for day, shifts in table.items():
            k = keys + (day,)
            if dated:
                try:
                    dt.date.fromisoformat(day) if DATE_RE.match(day) else 1 / 0
                except (ValueError, ZeroDivisionError):
                    self.fail(k, "expected a date YYYY-MM-DD")
            elif day not in WEEKDAYS:
                self.fail(k, "unknown weekday" + _suggest(day, WEEKDAYS))
            if not isinstance(shifts, list):
                self.fail(k, 'expected a list of ["name", "HH:MM", "HH:MM"]')
            for i, s in enumerate(shifts):
                ok = (isinstance(s, list) and len(s) == 3 and isinstance(s[0], str) and ID_RE.match(s[0])
                      and all(isinstance(t, str) and HHMM_RE.match(t) for t in s[1:]) and s[1] != s[2]
                      and s[1] != "24:00")
                if not ok:
                    self.fail(k, f'entry {i + 1}: expected ["name", "HH:MM" start, "HH:MM" end], got {s!r}')

    def limits(self, table: dict, keys: tuple) -> None:
        self.known(table, keys, LIMIT_KEYS)
        for key in table:
            v = self.value(table, keys + (key,), int)
            if v < 0:
                self.fail(keys + (key,), f"must not be negative, got {v}")

    def active_low(self, spec: dict, keys: tuple) -> None:
        low = spec.get(keys[-1])
        if low is None:
            return
        if not isinstance(low, list) or not all(isinstance(r, str) for r in low):
            self.fail(keys, f"expected a list of input names ({', '.join(POLARITY_INPUTS)}), got {low!r}")
        for role in low:
            if role not in POLARITY_INPUTS:
                why = "the button is always a contact to ground" if role == "button" else \
                    f"not an input (expected {', '.join(POLARITY_INPUTS)})" + _suggest(role, POLARITY_INPUTS)
                self.fail(keys, f"{role!r}: {why}")

    def pins(self, pins: dict, keys: tuple, board: str, power_adc: bool = False) -> None:
        self.known(pins, keys, PIN_ROLES)
        for role, gpio in pins.items():
            bad = boardfiles.pin_problem(board, role, gpio, power_adc)
            if bad:
                self.fail(keys + (role,), bad)


def load(path) -> Site:
    """Read and validate a site inventory; raise InventoryError naming key and line."""
    path = Path(path)
    data, index = parse(path, path.read_text(encoding="utf-8"))
    check(path, data, index)
    return Site(path, data, index)


def parse(path: Path, text: str) -> tuple[dict, LineIndex]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message has line and column
        raise InventoryError(str(path), "(syntax)", None, str(exc)) from None
    return data, LineIndex(text)


def check(path: Path, data: dict, index: LineIndex, units: bool = True) -> None:
    """The one check of a site file, for the technicians' commands and the
    host side alike: every table present is checked in full. `units` False
    (the host side) makes what only a unit needs optional: Wi-Fi, the
    broker's host and credentials, hardware and units."""
    c = _Checker(path, index)
    c.known(data, (), TOP_KEYS)

    site = c.table(data, ("site",))
    c.known(site, ("site",), SITE_KEYS)
    c.value(site, ("site", "id"), "id")
    tz = c.value(site, ("site", "timezone"), str)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        c.fail(("site", "timezone"), f"unknown IANA time zone {tz!r}" + options.zone_hint(tz))
    c.value(site, ("site", "power_mode"), str, False, POWER_MODES)
    c.value(site, ("site", "power_sense"), str, False, POWER_SENSES)
    c.value(site, ("site", "cadence"), str, False)
    c.value(site, ("site", "disconnect_supervision"), bool, False)
    servers = site.get("ntp_servers")
    if servers is not None:
        try:
            boardfiles._typed("site file", "ntp_servers", servers, boardfiles.SHELL_DEFAULTS["ntp_servers"])
        except boardfiles.FileError as exc:
            c.fail(("site", "ntp_servers"), exc.reason)

    wifi = c.table(data, ("wifi",), units)
    c.known(wifi, ("wifi",), WIFI_KEYS)
    c.value(wifi, ("wifi", "ssid"), str, units)
    c.value(wifi, ("wifi", "password"), str, units)

    broker = c.table(data, ("broker",), units)
    c.known(broker, ("broker",), BROKER_KEYS)
    c.value(broker, ("broker", "host"), str, units)
    port = c.value(broker, ("broker", "port"), int, False)
    if port is not None and not 1 <= port <= 65535:
        c.fail(("broker", "port"), f"expected 1..65535, got {port}")
    tls = c.value(broker, ("broker", "tls"), bool, False) is not False
    for key in ("ca", "cert", "key", "credentials"):
        c.value(broker, ("broker", key), str, units and (key == "credentials" or (key == "ca" and tls)))

    check_host_sections(data, c)
    c.limits(c.table(data, ("limits",), False), ("limits",))
    c.shifts(c.table(data, ("shifts",), False), ("shifts",), dated=False)
    c.shifts(c.table(data, ("overrides",), False), ("overrides",), dated=True)

    units = units or "units" in data
    hardware = c.table(data, ("hardware",), units)
    for rev, spec in hardware.items():
        k = ("hardware", rev)
        if not isinstance(spec, dict):
            c.fail(k, "expected a table with board and pins")
        c.known(spec, k, HARDWARE_KEYS)
        c.value(spec, k + ("board",), str, True, BOARDS)
        c.value(spec, k + ("led_kind",), str, False, boardfiles.LED_KINDS)
        c.value(spec, k + ("relay_active_low",), bool, False)
        c.active_low(spec, k + ("active_low",))
        c.pins(c.table(data, k + ("pins",)), k + ("pins",), spec["board"])
        # The MicroPython image the revision's boards run (tools/images.py);
        # by default the chip's stock download. An image without PSRAM that
        # cannot hold the unit is refused here; one with PSRAM, by
        # provisioning on a board without it.
        firmware = c.value(spec, k + ("firmware",), str, False, images.for_chip(spec["board"]))
        if firmware is not None and not images.IMAGES[firmware].psram and images.too_small(firmware):
            c.fail(k + ("firmware",), images.too_small(firmware))

    if not units:
        return
    entries = data.get("units")
    if not isinstance(entries, list) or not entries:
        c.fail(("units",), "expected one or more [[units]] entries")
    seen: dict[str, int] = {}
    uids: dict[str, int] = {}
    for i, unit in enumerate(entries):
        k = ("units", i)
        c.known(unit, k, UNIT_KEYS)
        unit_id = c.value(unit, k + ("id",), "id")
        if unit_id in seen:
            c.fail(k + ("id",), f"duplicate unit {unit_id!r} (first at line {index.line(('units', seen[unit_id], 'id'))})")
        seen[unit_id] = i
        if unit_id == SELFCHECK_UNIT:
            c.fail(k + ("id",), "'selfcheck' is reserved for the test event of `seatmon selfcheck`")
        c.value(unit, k + ("seat",), "id")
        rev = c.value(unit, k + ("hardware",), str, True, tuple(hardware))
        c.value(unit, k + ("port",), str, False)
        uid = c.value(unit, k + ("uid",), str, False)
        if uid is not None:
            if len(uid) < 8 or len(uid) % 2 or any(ch not in "0123456789abcdef" for ch in uid):
                c.fail(k + ("uid",), f"expected the board's machine.unique_id() as lower-case hex "
                       f"(`seatmon flash provision` prints it), got {uid!r}")
            if uid in uids:
                c.fail(k + ("uid",), f"board {uid} is already unit {entries[uids[uid]].get('id')!r} "
                       f"(line {index.line(('units', uids[uid], 'uid'))}): two units cannot share one board")
            uids[uid] = i
        c.value(unit, k + ("power_mode",), str, False, POWER_MODES)
        c.value(unit, k + ("power_sense",), str, False, POWER_SENSES)
        c.value(unit, k + ("cadence",), str, False)
        c.limits(c.table(unit, ("limits",), False), k + ("limits",))
        c.shifts(c.table(unit, ("shifts",), False), k + ("shifts",), dated=False)
        board = hardware[rev]["board"]
        c.pins(c.table(unit, ("pins",), False), k + ("pins",), board)
        merged = dict(hardware[rev]["pins"], **unit.get("pins", {}))
        if unit.get("power_sense", site.get("power_sense")) == "adc" and "power" in merged:
            # ADC power sense: the pin must be one the ADC can read with Wi-Fi on.
            where = k if "power" in unit.get("pins", {}) else ("hardware", rev)
            bad = boardfiles.pin_problem(board, "power", merged["power"], True)
            if bad:
                c.fail(where + ("pins", "power"), bad + f" (power_sense adc, unit {uid})")
            if "power" in hardware[rev].get("active_low", ()):
                c.fail(("hardware", rev, "active_low"), f"'power': an ADC power sense has no polarity "
                       f"(power_sense adc, unit {uid})")
        for role in REQUIRED_PINS:
            if role not in merged:
                c.fail(k + ("pins",), f"no {role!r} pin (neither in hardware.{rev}.pins nor here)")
        used: dict[int, str] = {}
        for role, gpio in merged.items():
            if gpio in used:
                c.fail(k + ("pins", role), f"GPIO {gpio} is already the {used[gpio]!r} pin")
            used[gpio] = role


def check_host_sections(data: dict, c) -> None:
    """[influx] and [privacy] fully; [collector] and [wallboard] as tables
    (their keys are checked by the collector's and the board's own config
    loaders)."""
    influx = c.table(data, ("influx",), False)
    c.known(influx, ("influx",), INFLUX_KEYS)
    for key in INFLUX_KEYS:
        value = c.value(influx, ("influx", key), str, False)
        if value is not None and not value:
            c.fail(("influx", key), "expected a non-empty string")
    if "url" in influx:
        try:
            options.influx_url(influx["url"])
        except argparse.ArgumentTypeError as exc:
            c.fail(("influx", "url"), str(exc))
    collector = c.table(data, ("collector",), False)
    for name, table in collector.items():
        if not isinstance(table, dict):
            c.fail(("collector", name), "expected a table [collector." + name + "] (the collector's own tables)")
    c.table(data, ("wallboard",), False)
    privacy = c.table(data, ("privacy",), False)
    c.known(privacy, ("privacy",), PRIVACY_KEYS)
    months = c.value(privacy, ("privacy", "roster_months"), int, False)
    if months is not None and months < 1:
        c.fail(("privacy", "roster_months"), f"expected a number of months, 1 or more, got {months}")


# ---- inventory -> device configuration ------------------------------------------

def tz_table(name: str, start_year: int | None = None, years: int = TZ_YEARS) -> list[list[int]]:
    """[[utc_ms, offset_minutes], ...]: the zone's offset from start_year on,
    one row per change, for firmware/localtime.py."""
    year = start_year or dt.datetime.now(dt.timezone.utc).year
    return tztable.build(name, year, year + years)


def unit_config(site: Site, unit: dict) -> dict:
    """The unit's device config (config.json; keys of firmware/config.py):
    site-wide settings, then the unit's own overrides."""
    s = site.data["site"]
    year = dt.datetime.now(dt.timezone.utc).year
    until = dt.datetime(year + TZ_YEARS, 1, 1, tzinfo=dt.timezone.utc)
    conf = {"site": site.id, "unit": unit["id"], "seat": unit["seat"], "tz": tz_table(site.timezone, year),
            "tz_name": site.timezone, "tz_until": int(until.timestamp() * 1000),
            # Which site file it came from: a unit keeps a config built from a
            # newer one over a retained config built from an older one.
            "issued": site.issued_ms}
    conf.update(site.data.get("limits", {}))
    conf.update(unit.get("limits", {}))
    conf["shifts"] = dict(site.data.get("shifts", {}), **unit.get("shifts", {}))
    conf["overrides"] = dict(site.data.get("overrides", {}))
    conf["shift_end_mode"] = unit.get("power_mode", s.get("power_mode", "log"))
    conf["power_sense"] = power_sense(site, unit)
    if conf["power_sense"] == "adc":  # the thresholds the ADC readings are judged by, written out
        from firmware import config as fw_config

        for key in ("power_on_level", "power_off_level"):
            conf.setdefault(key, fw_config.DEFAULTS[key][1])
    if "cadence" in unit or "cadence" in s:
        conf["cadence"] = unit.get("cadence", s.get("cadence"))
    conf["disconnect_supervision"] = s.get("disconnect_supervision", False)
    conf["buzzer"] = "buzzer" in site.pins(unit)
    return conf


def power_sense(site: Site, unit: dict) -> str:
    return unit.get("power_sense", site.data["site"].get("power_sense", "digital"))


def broker_tls(site: Site) -> bool:
    return site.data["broker"].get("tls", True)


def board_config(site: Site, unit: dict) -> dict:
    """The unit's board.json (shared/boardfiles.py): chip, every pin, each
    input's polarity, LED kind, how the power sense is read, and the broker
    to connect to."""
    hw = site.data["hardware"][unit["hardware"]]
    b = site.data["broker"]
    return boardfiles.board_file(
        unit["hardware"], hw["board"], site.pins(unit), b["host"], b.get("port", 8883 if broker_tls(site) else 1883),
        led_kind=hw.get("led_kind", "gpio"), power_adc=power_sense(site, unit) == "adc",
        relay_active_low=hw.get("relay_active_low", False), tls=broker_tls(site),
        ntp_servers=site.data["site"].get("ntp_servers"), active_low=hw.get("active_low", boardfiles.ACTIVE_LOW))


def unit_secrets(site: Site, unit: dict, mqtt_password: str) -> dict:
    """The unit's secrets.json: Wi-Fi and its own MQTT account."""
    return boardfiles.secrets_file(site.data["wifi"]["ssid"], site.data["wifi"]["password"], unit["id"],
                                   mqtt_password)


def validate_with_firmware(conf: dict) -> dict:
    """Check a built config.json with the firmware's own validator."""
    from firmware import config as fw_config

    return fw_config.validate(conf)
