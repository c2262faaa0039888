"""The wallboard's TOML configuration: read, check, and name the key (and
its line) of anything wrong. Secrets may come from the environment instead
of the file. Documented in docs/wallboard.md."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from shared import protocol


class ConfigError(ValueError):
    """A bad configuration; the message names the file, line and key."""


@dataclass
class BoardConfig:
    # [mqtt]: a read-only account is enough, the board never publishes
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_client_id: str | None = None  # None: client_id below
    mqtt_prefix: str = protocol.DEFAULT_PREFIX
    mqtt_keepalive: int = 15
    mqtt_session_expiry: int = 600  # s the broker keeps our queued events while we are away
    mqtt_tls_ca: str | None = None
    # [influx]
    influx_url: str | None = None  # None: start from the live stream only
    influx_database: str = "seatmon"
    influx_username: str | None = None
    influx_password: str | None = None
    influx_token: str | None = None
    # [board]
    listen: str = "127.0.0.1:8080"
    title: str = "seatmon floor"
    notice_ms: int = 5000
    limit_ms: int = 10000
    sites: list[str] = field(default_factory=list)  # empty: every site
    auth_user: str | None = None
    auth_password: str | None = None
    update_ms: int = 200  # how often the page gets changes
    # [[layout]]: (site, row, [seat, ...]) in display order
    layout: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def listen_host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def client_id(self) -> str:
        """The configured MQTT client id, else one of this board's own: two
        clients with one id knock each other off the broker. The host and the
        listen port tell boards apart and stay the same across a restart
        (which then resumes the broker session)."""
        if self.mqtt_client_id:
            return self.mqtt_client_id
        return f"seatmon-board-{socket.gethostname()}-{self.listen_port or os.getpid()}"


def split_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# key -> (section, name, check, expected); check returns the converted value or raises ValueError
def _str(v):
    if not isinstance(v, str) or not v:
        raise ValueError
    return v


def _port(v):
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
        raise ValueError
    return v


def _pos_int(v):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError
    return v


def _id(v):
    if not protocol._is_id(v):
        raise ValueError
    return v


def _ids(v):
    if not isinstance(v, list):
        raise ValueError
    return [_id(x) for x in v]


def _listen(v):
    split_listen(_str(v))
    return v


_KEYS = {
    "mqtt": {
        "host": ("mqtt_host", _str, "a host name"),
        "port": ("mqtt_port", _port, "a port number 1-65535"),
        "username": ("mqtt_username", _str, "a user name"),
        "password": ("mqtt_password", _str, "a password"),
        "client_id": ("mqtt_client_id", _str, "a client id"),
        "prefix": ("mqtt_prefix", _str, "a topic prefix such as 'seatmon'"),
        "keepalive": ("mqtt_keepalive", _pos_int, "a positive number of seconds"),
        "session_expiry": ("mqtt_session_expiry", _pos_int, "a positive number of seconds"),
        "tls_ca": ("mqtt_tls_ca", _str, "the path of a CA certificate file"),
    },
    "influx": {
        "url": ("influx_url", _str, "a URL such as http://127.0.0.1:8086"),
        "database": ("influx_database", _str, "a database name"),
        "username": ("influx_username", _str, "a user name"),
        "password": ("influx_password", _str, "a password"),
        "token": ("influx_token", _str, "an API token"),
    },
    "board": {
        "listen": ("listen", _listen, "HOST:PORT such as 127.0.0.1:8080"),
        "title": ("title", _str, "a page title"),
        "notice_ms": ("notice_ms", _pos_int, "a positive number of milliseconds"),
        "limit_ms": ("limit_ms", _pos_int, "a positive number of milliseconds"),
        "sites": ("sites", _ids, "a list of site ids"),
        "auth_user": ("auth_user", _str, "a user name"),
        "auth_password": ("auth_password", _str, "a password"),
        "update_ms": ("update_ms", _pos_int, "a positive number of milliseconds"),
    },
}

# Secrets are better kept out of the file: the environment wins.
ENV = {
    "mqtt_password": "SEATMON_MQTT_PASSWORD",
    "influx_password": "SEATMON_INFLUX_PASSWORD",
    "influx_token": "SEATMON_INFLUX_TOKEN",
    "auth_password": "SEATMON_BOARD_PASSWORD",
}


def load(path: str | Path | None, environ=None, site=None) -> BoardConfig:
    """The board file and/or the site file (a seatmon.sitefile.HostSite):
    the board file wins, the environment wins over both for secrets."""
    if path is None:
        text, name = "", str(site.path) if site is not None else "<config>"
    else:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}")
        name = str(path)
    return parse(text, name, os.environ if environ is None else environ, site)


def parse(text: str, name: str = "<config>", environ=None, site=None) -> BoardConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}")
    cfg = BoardConfig()

    def fail(key: str, expected: str, got=None, section: str | None = None):
        line = _line_of(text, key.rpartition(".")[2], section)
        where = f"{name} line {line}" if line else name
        shown = "" if got is None else f", got {got!r}"
        raise ConfigError(f"{where}: key '{key}': expected {expected}{shown}")

    if site is not None:
        _apply(cfg, _site_data(site, data, environ or {}), _site_fail(site))
    _apply(cfg, data, fail)
    environ = environ or {}
    for attr, var in ENV.items():
        if environ.get(var):
            setattr(cfg, attr, environ[var])
    if cfg.notice_ms > cfg.limit_ms:
        fail("board.notice_ms", f"at most board.limit_ms ({cfg.limit_ms})", cfg.notice_ms, section="board")
    if (cfg.auth_user is None) != (cfg.auth_password is None):
        fail("board.auth_password" if cfg.auth_user else "board.auth_user",
             "both board.auth_user and board.auth_password (or $SEATMON_BOARD_PASSWORD), or neither",
             section="board")
    return cfg


# board key <- the site file's key it comes from
_FROM_SITE = {("mqtt", "host"): ("broker", "host"), ("mqtt", "port"): ("broker", "port"),
              ("mqtt", "tls_ca"): ("broker", "ca"), ("mqtt", "password"): ("broker", "credentials"),
              ("board", "sites"): ("site", "id")}


def _site_data(site, data: dict, environ) -> dict:
    """The board's tables as the site file gives them: broker, InfluxDB and
    site id from the shared tables, [wallboard] as the [board] table."""
    from seatmon.sitefile import WALLBOARD

    own = dict(site.section("wallboard"))
    layout = own.pop("layout", [])
    mqtt = {"host": site.broker_host, "port": site.broker_port, "username": WALLBOARD}
    if site.ca_file:
        mqtt["tls_ca"] = site.ca_file
    if not environ.get(ENV["mqtt_password"]) and "password" not in data.get("mqtt", {}):
        password = site.password(WALLBOARD)
        if password:
            mqtt["password"] = password
    influx = {k: v for k in ("url", "database", "username", "password", "token") if (v := site.influx(k))}
    return {"mqtt": mqtt, "influx": influx, "board": {"sites": [site.id], **own}, "layout": layout}


def _site_fail(site):
    def fail(key: str, expected: str, got=None, section: str | None = None):
        part, _, rest = key.partition(".")
        if part == "board":
            keys = ("wallboard", rest)
        elif part.startswith("layout"):
            keys = ("wallboard", "layout")
        else:
            keys = _FROM_SITE.get((part, rest), ("influx", rest) if part == "influx" else (part,))
        shown = "" if got is None else f", got {got!r}"
        site_key = "wallboard." + rest if part == "board" else ("wallboard." + key if part.startswith("layout")
                                                                 else ".".join(keys))
        raise ConfigError(f"{site.where(*keys)}: key '{site_key}': expected {expected}{shown}")
    return fail


def _apply(cfg: BoardConfig, data: dict, fail) -> None:
    for section, value in data.items():
        if section == "layout":
            continue
        if section not in _KEYS:
            fail(section, "one of the sections " + ", ".join(sorted([*_KEYS, "layout"])), section=None)
        if not isinstance(value, dict):
            fail(section, "a table", value)
        for key, raw in value.items():
            if key not in _KEYS[section]:
                fail(f"{section}.{key}", "one of " + ", ".join(sorted(_KEYS[section])) + " (unknown key)",
                     section=section)
            attr, check, expected = _KEYS[section][key]
            try:
                setattr(cfg, attr, check(raw))
            except (ValueError, TypeError):
                fail(f"{section}.{key}", expected, raw, section=section)

    layout = data.get("layout", [])
    if not isinstance(layout, list):
        fail("layout", "an array of tables [[layout]] with site, row and seats", layout)
    if layout:
        cfg.layout = []  # a layout replaces one from the site file
    seen = set()
    for i, entry in enumerate(layout):
        key = f"layout[{i}]"
        if not isinstance(entry, dict):
            fail(key, "a table with site, row and seats", entry)
        unknown = set(entry) - {"site", "row", "seats"}
        if unknown:
            fail(f"{key}.{sorted(unknown)[0]}", "only site, row and seats (unknown key)", section="layout")
        for part, check, expected in (("site", _id, "a site id"), ("row", _str, "a row name"),
                                      ("seats", _ids, "a list of seat ids")):
            if part not in entry:
                fail(f"{key}.{part}", expected + " (missing)", section="layout")
            try:
                check(entry[part])
            except (ValueError, TypeError):
                fail(f"{key}.{part}", expected, entry[part], section="layout")
        for seat in entry["seats"]:
            if (entry["site"], seat) in seen:
                fail(f"{key}.seats", f"each seat once, but {seat!r} at site {entry['site']!r} is listed twice",
                     section="layout")
            seen.add((entry["site"], seat))
        cfg.layout.append((entry["site"], entry["row"], list(entry["seats"])))


def _line_of(text: str, key: str, section: str | None) -> int | None:
    """The line that sets `key` (within `section` when given), for messages."""
    current = None
    pattern = re.compile(r"^\s*(?:\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?|\"?([A-Za-z0-9_\-]+)\"?\s*=)")
    for number, line in enumerate(text.splitlines(), 1):
        m = pattern.match(line)
        if not m:
            continue
        if m.group(1):
            current = m.group(1)
            if section is None and current == key:
                return number
        elif m.group(2) == key and (section is None or current == section):
            return number
    return None
