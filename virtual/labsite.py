"""The example site (deploy/site.example.toml) pointed at a broker on
loopback, with a CA and a broker certificate for 127.0.0.1 and the broker
configuration `seatmon broker config` writes: what the unit-on-board tests,
the unit heap benchmark and the demo's boards provision virtual boards from."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tools import broker_config as bc
from tools import inventory as inv
from tools.certs import make_ca_and_server

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"


def loopback_site(folder: Path, broker_port: int, *, site_id: str | None = None, timezone: str | None = None,
                  units: list[tuple[str, str, str]] | None = None) -> inv.Site:
    """Write site.toml, tls/ and broker/ (mosquitto.conf, passwd, acl) under `folder`.
    `site_id`, `timezone` and `units` ((id, seat, hardware revision) each, in
    place of the example's) change the example's."""
    tls = folder / "tls"
    tls.mkdir()
    made = make_ca_and_server(tls / "made")
    for src, name in ((made["ca"], "ca.pem"), (made["cert"], "broker.pem"), (made["key"], "broker.key")):
        shutil.copy(src, tls / name)
    text = EXAMPLE.read_text().replace("port = 8883", f"port = {broker_port}")
    if site_id is not None:
        text = text.replace('id = "hq"', f'id = "{site_id}"', 1)
    if timezone is not None:
        text = text.replace('timezone = "Europe/Berlin"', f'timezone = "{timezone}"', 1)
    if units is not None:
        text = text[:text.index("[[units]]")] + "".join(
            f'[[units]]\nid = "{uid}"\nseat = "{seat}"\nhardware = "{rev}"\n\n' for uid, seat, rev in units)
    (folder / "site.toml").write_text(text.replace('host = "mqtt.hq.example"', 'host = "127.0.0.1"'))
    site = inv.load(folder / "site.toml")
    bc.write(site, folder / "broker", persistence_dir=str(folder / "mosquitto-data") + "/")
    if os.geteuid() == 0:  # as rig/servers.py does: root would drop to a user who cannot enter temp dirs
        conf = folder / "broker" / "mosquitto.conf"
        conf.write_text(conf.read_text() + "user root\n")
    return site
