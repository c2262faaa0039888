"""The site file on the host side: one `site.toml` from which the collector,
the wallboard, the reports and `seatmon selfcheck` take the site's broker,
InfluxDB, site id and time zone (the technicians' commands read the same
file: tools/inventory.py).

Shared tables: `[site]` (id, timezone), `[broker]` (host, port, tls, ca,
credentials: the passwords `seatmon broker config` generated, one account
per program) and `[influx]` (url, database, username; password and token
better in SEATMON_INFLUX_PASSWORD / SEATMON_INFLUX_TOKEN). Each program's
own tables: `[collector.<table>]` (the tables of the collector's own config
file), `[wallboard]` (the keys of the board's `[board]` table, and
`[[wallboard.layout]]`). A program's own options, environment variables and
config files win over the site file. It is checked by the technicians' own
checker (tools/inventory.check), so every command accepts and refuses the
same file; errors name the file, line and key. Documented in docs/operators.md.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tools import inventory as inv

ENV_VAR = "SEATMON_SITE"
INFLUX_ENV = {"password": "SEATMON_INFLUX_PASSWORD", "token": "SEATMON_INFLUX_TOKEN"}
# The account each program uses on the broker (tools/broker_config.py makes them).
COLLECTOR, WALLBOARD, TECHNICIAN = "collector", "wallboard", "technician"
# The unit id of `seatmon selfcheck`'s test event: no real unit may have it
# (the inventory refuses it), the technician may publish its event, the
# wallboard shows no tile for it.
SELFCHECK_UNIT = inv.SELFCHECK_UNIT

SiteFileError = inv.InventoryError


@dataclass
class HostSite:
    path: Path
    id: str
    timezone: str
    data: dict
    index: inv.LineIndex
    environ: dict

    def where(self, *keys) -> str:
        """'site.toml:12' for a key path, for messages."""
        line = self.index.line(tuple(keys))
        return f"{self.path}:{line}" if line else str(self.path)

    def fail(self, keys: tuple, reason: str):
        name = ".".join(str(k) for k in keys)
        raise SiteFileError(str(self.path), name, self.index.line(tuple(keys)), reason)

    # ---- [broker] -----------------------------------------------------------------------

    @property
    def broker(self) -> dict:
        return self.data.get("broker", {})

    @property
    def tls(self) -> bool:
        return self.broker.get("tls", True)

    @property
    def broker_host(self) -> str:
        return self.broker.get("host", "127.0.0.1")

    @property
    def broker_port(self) -> int:
        return self.broker.get("port", 8883 if self.tls else 1883)

    @property
    def ca_file(self) -> str | None:
        if not self.tls or "ca" not in self.broker:
            return None
        return str(self.relative(self.broker["ca"]).resolve())

    def relative(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.path.parent / p

    def password(self, account: str) -> str | None:
        """The account's broker password from the credentials file; None while
        the file does not exist (before `seatmon broker config`)."""
        if "credentials" not in self.broker:
            return None
        path = self.relative(self.broker["credentials"])
        try:
            creds = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.fail(("broker", "credentials"), f"cannot read {path} ({exc.strerror}): make it readable by this "
                                                 f"user or give the {account} password in the environment")
        except ValueError:
            self.fail(("broker", "credentials"), f"{path} is not the JSON `seatmon broker config` writes")
        value = creds.get(account) if isinstance(creds, dict) else None
        return value if isinstance(value, str) else None

    # ---- [influx] -----------------------------------------------------------------------

    def influx(self, key: str, default=None):
        """An [influx] value; the password and token from the environment first."""
        env = INFLUX_ENV.get(key)
        if env and self.environ.get(env):
            return self.environ[env]
        return self.data.get("influx", {}).get(key, default)

    def section(self, name: str) -> dict:
        return self.data.get(name, {})


def path_from(option: str | None, environ=None) -> str | None:
    """The site file to use: the option, else $SEATMON_SITE, else none."""
    environ = os.environ if environ is None else environ
    return option or environ.get(ENV_VAR) or None


def add_option(parser: argparse.ArgumentParser, flag: str = "--site") -> None:
    parser.add_argument(flag, dest="site_file", metavar="FILE",
                        help=f"the site file (deploy/site.example.toml) for broker, InfluxDB, site id and zone "
                             f"[${ENV_VAR}]; this command's own options and config win over it")


def load(path, environ=None) -> HostSite:
    """Read the host side of a site file; raise SiteFileError (file, line, key)."""
    environ = os.environ if environ is None else environ
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(str(path), "site file", None, f"cannot read: {exc.strerror}") from None
    data, index = inv.parse(path, text)
    inv.check(path, data, index, units=False)
    site = data["site"]
    return HostSite(path, site["id"], site["timezone"], data, index, environ)

