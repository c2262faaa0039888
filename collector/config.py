"""Collector configuration: a TOML file, then environment overrides, then a
validated schema. Every error names the key (and the file line when the key
came from the file), so a typo never starts a half-configured service.

Environment overrides: SEATMON_COLLECT_<SECTION>_<KEY>, e.g.
SEATMON_COLLECT_MQTT_PASSWORD or SEATMON_COLLECT_INFLUX_TOKEN.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "SEATMON_COLLECT_"


class ConfigError(ValueError):
    pass


# section -> key -> (type, default). Type "str?" allows an empty/absent value.
SCHEMA: dict[str, dict[str, tuple[str, object]]] = {
    "mqtt": {
        "host": ("str", "127.0.0.1"),
        "port": ("port", 1883),
        "client_id": ("id", "seatmon-collector"),
        "prefix": ("str", "seatmon"),
        "site": ("str", "+"),  # subscribe to one site, or "+" for all
        "shared_group": ("str?", ""),  # $share/<group>/... for several collectors
        "session_expiry_s": ("int", 7 * 86400),
        "keepalive_s": ("int", 30),
        "receive_maximum": ("int", 1000),  # in-flight window we grant the broker
        "username": ("str?", ""),
        "password": ("str?", ""),
        "tls": ("bool", False),
        "ca_file": ("str?", ""),
        "cert_file": ("str?", ""),
        "key_file": ("str?", ""),
    },
    "influx": {
        "url": ("str", "http://127.0.0.1:8086"),
        "api": ("enum:v1,v2", "v1"),
        "database": ("str", "seatmon"),  # v1 database, or v2 bucket
        "retention_policy": ("str?", ""),
        "username": ("str?", ""),
        "password": ("str?", ""),
        "token": ("str?", ""),
        "org": ("str?", ""),  # v2 only
        "batch_lines": ("int", 5000),
        "gzip": ("bool", True),
        "timeout_s": ("float", 30.0),
        "retry_initial_s": ("float", 0.5),
        "retry_max_s": ("float", 30.0),
    },
    "spool": {
        "path": ("str", "/var/lib/seatmon/collector/spool.db"),
        "max_rows": ("int", 5_000_000),
        "warn_fraction": ("float", 0.8),
        "commit_max_messages": ("int", 2000),
        "test_commit_delay_s": ("float", 0.0),  # test-only: slow every commit down
    },
    "rollup": {
        "enabled": ("bool", True),  # keep roll-ups current at ingest (off: `seatmon collect rollup` only)
        "tz": ("str?", ""),  # zone of the day roll-ups; default: the site file's [site] timezone, else UTC
        "interval_s": ("float", 1.0),  # refresh the dirty keys at most this often
        "settle_s": ("float", 10.0),  # second pass of each key after this long (several collectors)
        "max_keys": ("int", 2000),  # keys per refresh
    },
    "validation": {
        "max_future_s": ("int", 86400),
        "max_past_s": ("int", 90 * 86400),
        "max_payload": ("int", 2048),
    },
    "ack": {
        "interval_s": ("float", 1.0),  # at most one ack per unit per interval
    },
    "health": {
        "bind": ("str", "127.0.0.1"),
        "port": ("int", 9464),  # 0 = any free port, -1 = off
        "stall_s": ("float", 60.0),  # not ok: messages wait and nothing stored/acknowledged this long
        "unreachable_s": ("float", 15.0),  # not ok: broker or InfluxDB unreachable this long
        "warn_every_s": ("float", 60.0),  # repeat a persisting problem's warning this often
    },
    "log": {
        "level": ("enum:debug,info,warning,error", "info"),
    },
}


@dataclass
class Config:
    values: dict[str, dict[str, object]] = field(default_factory=dict)
    source: str = "<defaults>"

    def __getattr__(self, section: str):
        try:
            return _Section(self.values[section])
        except KeyError:
            raise AttributeError(section) from None


class _Section:
    def __init__(self, values: dict):
        self.__dict__.update(values)


def _key_lines(text: str) -> dict[str, int]:
    """'section.key' -> line number, for error messages."""
    lines, section = {}, ""
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        m = re.match(r"^\[([A-Za-z0-9_.-]+)\]", stripped)
        if m:
            section = m.group(1)
            lines.setdefault(section, number)
            continue
        m = re.match(r"^([A-Za-z0-9_-]+)\s*=", stripped)
        if m:
            lines[f"{section}.{m.group(1)}"] = number
    return lines


def _coerce(kind: str, key: str, value, where: str):
    def bad(expected: str):
        return ConfigError(f"{where}key '{key}': expected {expected}, got {value!r}")

    if kind in ("str", "str?", "id"):
        if not isinstance(value, str):
            raise bad("a string")
        if kind != "str?" and not value:
            raise bad("a non-empty string")
        if kind == "id" and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise bad("1-64 characters from [A-Za-z0-9_.-]")
        return value
    if kind == "bool":
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind in ("int", "port"):
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if kind == "port" and not 1 <= value <= 65535:
            raise bad("a port number 1-65535")
        return value
    if kind == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if kind.startswith("enum:"):
        options = kind[5:].split(",")
        if value not in options:
            raise bad("one of " + ", ".join(options))
        return value
    raise AssertionError(kind)


def load(path: str | Path | None, env: dict[str, str] | None = None, site=None) -> Config:
    """Read, override and validate. Raises ConfigError naming the key.

    `site` (a seatmon.sitefile.HostSite) gives the values under the file's:
    environment > this file > the site file's [collector.*] tables > the
    site's [broker], [influx] and id > defaults."""
    env = os.environ if env is None else env
    raw: dict = {}
    lines: dict[str, int] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        lines = _key_lines(text)
    elif site is not None:
        source = str(site.path)

    def where(dotted: str) -> str:
        if dotted in lines:
            return f"{source}:{lines[dotted]}: "
        return f"{source}: "

    _known(raw, where)
    site_raw, site_where, site_name = _site_layer(site, raw, env) if site is not None else ({}, None, None)
    values: dict[str, dict[str, object]] = {}
    for section, keys in SCHEMA.items():
        values[section] = {}
        for key, (kind, default) in keys.items():
            dotted = f"{section}.{key}"
            env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if env_name in env:
                values[section][key] = _coerce(kind, dotted, env[env_name], f"environment {env_name}: ")
            elif key in raw.get(section, {}):
                values[section][key] = _coerce(kind, dotted, raw[section][key], where(dotted))
            elif key in site_raw.get(section, {}):
                values[section][key] = _coerce(kind, site_name(dotted), site_raw[section][key], site_where(dotted))
            else:
                values[section][key] = default
    for name in env:
        if name.startswith(ENV_PREFIX):
            rest = name[len(ENV_PREFIX):].lower()
            if not any(rest == f"{s}_{k}" for s, ks in SCHEMA.items() for k in ks):
                raise ConfigError(f"environment {name}: unknown setting (expected {ENV_PREFIX}<SECTION>_<KEY>)")

    def where_any(dotted: str) -> str:
        section, _, key = dotted.partition(".")
        if site_where and key and dotted not in lines and key in site_raw.get(section, {}):
            return site_where(dotted)
        return where(dotted)

    _check(values, where_any)
    return Config(values, source)


def _known(raw: dict, where) -> None:
    for section, entries in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where(section)}unknown section '[{section}]' (expected one of {', '.join(SCHEMA)})")
        if not isinstance(entries, dict):
            raise ConfigError(f"{where(section)}key '{section}': expected a [{section}] table")
        for key in entries:
            if key not in SCHEMA[section]:
                raise ConfigError(f"{where(section + '.' + key)}unknown key '{section}.{key}' "
                                  f"(expected one of {', '.join(SCHEMA[section])})")


# collector key <- the site file's shared key it comes from
_FROM_SITE = {"rollup.tz": ("site", "timezone"), "mqtt.host": ("broker", "host"), "mqtt.port": ("broker", "port"), "mqtt.tls": ("broker", "tls"),
              "mqtt.ca_file": ("broker", "ca"), "mqtt.site": ("site", "id"),
              "mqtt.password": ("broker", "credentials"), "influx.url": ("influx", "url"),
              "influx.database": ("influx", "database"), "influx.username": ("influx", "username"),
              "influx.password": ("influx", "password"), "influx.token": ("influx", "token")}


def _site_layer(site, raw: dict, env) -> tuple[dict, object, object]:
    """The collector's values from a site file: its [collector.<table>]
    tables over what the shared tables say."""
    from seatmon.sitefile import COLLECTOR

    own = site.section("collector")

    def where(dotted: str) -> str:
        section, _, key = dotted.partition(".")
        if key in own.get(section, {}):
            return f"{site.where('collector', section, key)}: "
        return f"{site.where(*_FROM_SITE.get(dotted, (section,)))}: "

    def name(dotted: str) -> str:  # as the site file spells it
        section, _, key = dotted.partition(".")
        if dotted == "rollup.tz" and key not in own.get(section, {}):
            return "site.timezone"
        return f"collector.{dotted}" if key in own.get(section, {}) else ".".join(_FROM_SITE.get(dotted, (dotted,)))

    try:
        _known(own, lambda dotted: f"{site.where('collector', *dotted.split('.'))}: ")
    except ConfigError as exc:  # name the table as the site file spells it
        raise ConfigError(str(exc).replace("section '[", "section '[collector.").replace("key '", "key 'collector."))
    layer = {"mqtt": {"host": site.broker_host, "port": site.broker_port, "tls": site.tls, "site": site.id,
                      "username": COLLECTOR},
             "influx": {k: v for k in ("url", "database", "username", "password", "token")
                        if (v := site.influx(k)) is not None}}
    if site.ca_file:
        layer["mqtt"]["ca_file"] = site.ca_file
    if site.timezone:
        layer["rollup"] = {"tz": site.timezone}
    # The password file is read only when nothing else gives the password.
    if (f"{ENV_PREFIX}MQTT_PASSWORD" not in env and "password" not in raw.get("mqtt", {})
            and "password" not in own.get("mqtt", {})):
        password = site.password(COLLECTOR)
        if password:
            layer["mqtt"]["password"] = password
    for section, entries in own.items():
        layer.setdefault(section, {}).update(entries)
    return layer, where, name


def _check(values: dict, where) -> None:
    influx = values["influx"]
    if influx["batch_lines"] < 1:
        raise ConfigError(f"{where('influx.batch_lines')}key 'influx.batch_lines': expected at least 1")
    if influx["api"] == "v2" and not (influx["token"] and influx["org"]):
        raise ConfigError(f"{where('influx.api')}key 'influx.api': v2 needs influx.token and influx.org")
    spool = values["spool"]
    if not 0 < spool["warn_fraction"] < 1:
        raise ConfigError(f"{where('spool.warn_fraction')}key 'spool.warn_fraction': expected a number between 0 and 1")
    if spool["max_rows"] < 1000:
        raise ConfigError(f"{where('spool.max_rows')}key 'spool.max_rows': expected at least 1000")
    if values["mqtt"]["shared_group"] and not re.fullmatch(r"[A-Za-z0-9_.-]+", values["mqtt"]["shared_group"]):
        raise ConfigError(f"{where('mqtt.shared_group')}key 'mqtt.shared_group': expected [A-Za-z0-9_.-] only")
    for key in ("stall_s", "unreachable_s", "warn_every_s"):
        if values["health"][key] <= 0:
            raise ConfigError(f"{where('health.' + key)}key 'health.{key}': expected a positive number of seconds")
    rollup = values["rollup"]
    if rollup["tz"]:
        try:
            ZoneInfo(rollup["tz"])
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(f"{where('rollup.tz')}key 'rollup.tz': expected a time zone such as Europe/Berlin "
                              f"or UTC, got {rollup['tz']!r}") from None
    else:
        rollup["tz"] = "UTC"
    for key in ("interval_s", "settle_s"):
        if rollup[key] <= 0:
            raise ConfigError(f"{where('rollup.' + key)}key 'rollup.{key}': expected a positive number of seconds")
    if rollup["max_keys"] < 1:
        raise ConfigError(f"{where('rollup.max_keys')}key 'rollup.max_keys': expected at least 1")
    if not 1 <= values["mqtt"]["receive_maximum"] <= 65535:
        raise ConfigError(f"{where('mqtt.receive_maximum')}key 'mqtt.receive_maximum': expected 1-65535")
