"""`seatmon fleet`: update the desk units' code over the air, and show where each stands.

    seatmon fleet update --site site.toml [--units U ...] [--canary N] [--force] [--wait SECONDS]
    seatmon fleet status --site site.toml [--json]

`update` builds the image from the very files `seatmon flash provision`
writes to /lib (tools/flash.py's firmware_files, compiled by mpy-cross: the
same sources give the same bytes), one signed offer per hardware revision
(shared/otaimage.py, signed with the site's update key from the credentials
file), and publishes each target unit's offer, retained, on its `update`
topic as the `updater` account, which alone may write there (the ACL of
`seatmon broker config`). A unit that accepts asks for chunk after chunk on
`update_ack`; this command answers each request with that chunk (1 KB, QoS1),
sends a chunk again when a unit stays silent, and follows the `update`
events: staged, confirmed (the new code passed its self-test and reached the
broker), refused, failed, rolled back. The canaries (the first N targets) go
first; when one of them does not confirm, the rollout stops and the other
units are never offered the image. A unit offline during the rollout finds
its offer retained when it comes back: run `fleet update` again (or keep it
running with a longer --wait) to serve it. docs/firmware.md#over-the-air-updates.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware import ota
from seatmon import options
from shared import otaimage, protocol
from tools import broker_config
from tools import flash
from tools import inventory as inv
from tools.micropython import ROOT
from tools.unit_config import PushError, ServerError, connect, publish_retained

RESEND_S = 3.0  # a unit silent this long mid-transfer gets its requested chunk again
DEFAULT_WAIT_S = 600.0
DONE = ("confirmed", "current")
FAILED = ("refused", "failed", "rolled_back")


class FleetError(PushError):
    """Bad input: exit status 2."""


def code_version(root: Path = ROOT) -> str:
    """The FW_VERSION the code under `root` reports in its birth message."""
    text = (root / "firmware" / "shell.py").read_text()
    m = re.search(r'^FW_VERSION = "([0-9.]+)"', text, re.M)
    if not m:
        raise FleetError(f"{root / 'firmware' / 'shell.py'}: no FW_VERSION = \"X.Y.Z\" line")
    return m.group(1)


def image_files(root: Path = ROOT) -> list[tuple[str, bytes]]:
    """The code as `flash provision` writes it to /lib, as paths in a slot."""
    try:
        files = flash.firmware_files(True, root)
    except flash.FlashError as exc:
        raise FleetError(str(exc)) from None
    return [(f.path[len("/lib/"):], f.data) for f in files]


@dataclass
class Image:
    revision: str
    chip: str
    version: str
    offer: bytes
    fields: dict
    chunks: list[bytes]

    @property
    def ident(self) -> str:
        return self.fields["sha256"][:8]


def build_images(site: inv.Site, revisions: set[str], key: str, *, root: Path = ROOT, force: bool = False) -> dict[str, Image]:
    files = image_files(root)
    version = code_version(root)
    out = {}
    for rev in sorted(revisions):
        chip = site.data["hardware"][rev]["board"]
        offer, stream = otaimage.build(files, version, chip, rev, key.encode(), force)
        fields = otaimage.fields(offer)
        out[rev] = Image(rev, chip, version, offer, fields, otaimage.chunks(fields, stream))
    return out


def load_credentials(site: inv.Site) -> dict[str, str]:
    path = site.relative(site.data["broker"]["credentials"])
    creds = broker_config.read_credentials(site, FleetError)
    for name in (broker_config.UPDATER, broker_config.OTA_KEY):
        if name not in creds:
            raise FleetError(f"{path}: no {name!r}: re-run `seatmon broker config` (it adds it, keeping the passwords), "
                             "restart the broker, and provision the units again so they hold the update key")
    return creds


def targets(site: inv.Site, names: list[str] | None) -> list[dict]:
    if not names:
        return list(site.units)
    out = []
    for name in names:
        out.append(site.unit(name))  # InventoryError naming the unit when unknown
    return out


def broker_client(site: inv.Site, creds: dict[str, str], host: str | None, port: int | None, tls: bool):
    b = site.data["broker"]
    tls = tls and inv.broker_tls(site)
    ca = site.relative(b["ca"]) if tls else None
    if ca is not None and not ca.is_file():
        raise FleetError(f"no CA certificate {ca} (broker.ca in {site.path})")
    return connect(host or b["host"], port or b.get("port", 8883 if tls else 1883), broker_config.UPDATER,
                   creds[broker_config.UPDATER], ca)


# ---- the rollout ---------------------------------------------------------------------

@dataclass
class UnitRun:
    unit: str
    image: Image
    # offered -> receiving -> staged -> confirmed | refused | failed | rolled_back | timeout; current: runs it already
    state: str = "offered"
    next: int = 0
    detail: str = ""
    last_heard: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in DONE or self.state in FAILED or self.state == "timeout"


class Rollout:
    """Serves chunks and follows the units' answers (paho's network thread
    calls on_message; the main thread waits and resends)."""

    def __init__(self, client, site: inv.Site, out=None):
        self.client = client
        self.site = site
        self.out = out or sys.stdout
        self.runs: dict[str, UnitRun] = {}
        self.lock = threading.Lock()
        self.running: dict[str, str] = {}  # unit -> the fw of its last birth (retained status)
        base = f"{protocol.DEFAULT_PREFIX}/{protocol.TOPIC_VERSION}/{site.id}/+/"
        client.on_message = self._on_message
        client.subscribe([(base + protocol.UPDATE_ACK, 1), (base + protocol.EVENT, 1), (base + protocol.STATUS, 1)])

    def say(self, unit: str, text: str) -> None:
        print(f"{unit}: {text}", file=self.out, flush=True)

    def topic(self, unit: str) -> str:
        return protocol.topic(self.site.id, unit, protocol.UPDATE)

    def offer(self, unit: str, image: Image) -> None:
        with self.lock:  # before the offer goes out: the unit may answer at once
            self.runs[unit] = UnitRun(unit, image)
        publish_retained(self.client, self.topic(unit), image.offer)
        self.say(unit, f"offered {image.version} ({image.revision}, image {image.ident}, {len(image.chunks)} chunks)")

    def withdraw(self, unit: str) -> None:
        """Clear the retained offer (the unit keeps what it runs)."""
        self.client.publish(self.topic(unit), b"", qos=1, retain=True)

    def _send(self, run: UnitRun) -> None:
        if run.next < len(run.image.chunks):
            self.client.publish(self.topic(run.unit), run.image.chunks[run.next], qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            _, unit, channel = protocol.parse_topic(msg.topic)
            body = protocol.decode(channel, msg.payload)
        except protocol.ProtocolError:
            return
        with self.lock:
            if channel == protocol.STATUS:
                if body["state"] == "online" and "fw" in body:
                    self.running[unit] = body["fw"]
                return
            run = self.runs.get(unit)
            if run is None:
                return
            if channel == protocol.UPDATE_ACK:
                self._on_ack(run, body)
            elif body.get("kind") == protocol.UPDATE_EVENT and body.get("version") == run.image.version:
                self._on_event(run, body)

    def _on_ack(self, run: UnitRun, ack: dict) -> None:
        if ack["image"] not in (run.image.ident, "unknown"):
            return
        run.last_heard = time.monotonic()
        if ack.get("rolled_back"):
            # The unit ran this image and went back from it: whatever acks were lost before.
            if run.state != "rolled_back":
                run.state, run.detail = "rolled_back", ack.get("error") or ""
                self.say(run.unit, f"rolled_back: {run.detail}")
            return
        if ack.get("error"):
            if not run.finished:
                # Staged, then refused at the next boot: the unit rolled it back (its event follows).
                run.state = {"receiving": "failed", "staged": "rolled_back"}.get(run.state, "refused")
                run.detail = ack["error"]
                self.say(run.unit, f"{run.state}: {ack['error']}")
            return
        if ack.get("staged"):
            if run.state in ("offered", "receiving"):
                run.state = "staged"
                self.say(run.unit, "staged: verified, switching at the next idle moment")
            return
        if run.state == "offered":
            run.state = "receiving"
        if run.state == "receiving":
            run.next = ack.get("next", 0)
            if run.next and run.next % 20 == 0:
                self.say(run.unit, f"chunk {run.next}/{len(run.image.chunks)}")
            self._send(run)

    def _on_event(self, run: UnitRun, ev: dict) -> None:
        step = ev["step"]
        if step in DONE or step in FAILED:
            if run.state != step:
                run.state = step
                run.detail = ev.get("detail") or ""
                self.say(run.unit, f"{step}: {run.detail}" if run.detail else step)

    def wait(self, units: list[str], deadline: float) -> None:
        """Until each of `units` finished or the deadline; resend to silent ones."""
        while time.monotonic() < deadline:
            with self.lock:
                runs = [self.runs[u] for u in units]
                if all(r.finished for r in runs):
                    return
                now = time.monotonic()
                for r in runs:
                    if r.state == "receiving" and now - r.last_heard > RESEND_S:
                        r.last_heard = now
                        self._send(r)
            time.sleep(0.1)
        with self.lock:
            for u in units:
                r = self.runs[u]
                if not r.finished:
                    r.detail = f"still {r.state} after the wait (offline? the offer stays retained)"
                    r.state = "timeout"
                    self.say(u, r.detail)


def rollout(site: inv.Site, units: list[dict], images: dict[str, Image], client, *, canary: int = 0,
            wait_s: float = DEFAULT_WAIT_S, out=None) -> dict[str, UnitRun]:
    ro = Rollout(client, site, out)
    ids = [u["id"] for u in units]
    groups = [ids[:canary], ids[canary:]] if canary else [ids]
    time.sleep(0.5)  # the units' retained status: who runs what
    for n, group in enumerate(groups):
        if not group:
            continue
        for u in units:
            if u["id"] not in group:
                continue
            image = images[u["hardware"]]
            if ro.running.get(u["id"]) == image.version and not image.fields["force"]:
                with ro.lock:
                    ro.runs[u["id"]] = UnitRun(u["id"], image, "current", detail=f"runs {image.version}")
                ro.say(u["id"], f"already runs {image.version}")
            else:
                ro.offer(u["id"], image)
        ro.wait(group, time.monotonic() + wait_s)
        if canary and n == 0:
            bad = [u for u in group if ro.runs[u].state not in DONE]
            if bad:
                for u in bad:
                    ro.withdraw(u)
                print(f"canaries did not confirm ({', '.join(bad)}): rollout stopped, "
                      f"{len(ids) - len(group)} unit(s) not offered", file=ro.out, flush=True)
                break
    return ro.runs


def summary(runs: dict[str, UnitRun]) -> str:
    rows = [[r.unit, r.image.revision, r.image.version, r.state, r.detail[:70]] for r in runs.values()]
    return flash.table(["unit", "revision", "version", "result", "detail"], rows)


# ---- status ------------------------------------------------------------------------------

def status(site: inv.Site, client, settle_s: float = 1.0) -> list[dict]:
    """Per unit: online or not, the firmware it reported at its last birth,
    and the version offered to it (retained offers)."""
    seen: dict[str, dict] = {u["id"]: {"unit": u["id"], "hardware": u["hardware"], "state": "unknown",
                                       "fw": None, "offered": None} for u in site.units}
    lock = threading.Lock()

    def on_message(c, ud, msg):
        try:
            _, unit, channel = protocol.parse_topic(msg.topic)
        except protocol.ProtocolError:
            return
        with lock:
            row = seen.get(unit)
            if row is None:
                return
            if channel == protocol.STATUS:
                try:
                    body = protocol.decode(protocol.STATUS, msg.payload)
                except protocol.ProtocolError:
                    return
                row["state"] = body["state"]
                row["fw"] = body.get("fw", row["fw"])
            elif channel == protocol.UPDATE and msg.payload:
                try:
                    row["offered"] = otaimage.fields(msg.payload).get("version")
                except ValueError:
                    pass

    base = f"{protocol.DEFAULT_PREFIX}/{protocol.TOPIC_VERSION}/{site.id}/+/"
    client.on_message = on_message
    client.subscribe([(base + protocol.STATUS, 1), (base + protocol.UPDATE, 1)])
    time.sleep(settle_s)  # the retained messages arrive at once
    with lock:
        return [dict(r) for r in seen.values()]


# ---- CLI -----------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    p = sub.add_parser("update", help="update the units' code over the air")
    p.add_argument("--site", required=True, type=Path, help="the site inventory (site.toml)")
    p.add_argument("--units", nargs="+", metavar="UNIT", help="these units only (default: every unit of the site)")
    p.add_argument("--canary", type=int, default=0, metavar="N",
                   help="update the first N units first; stop if one of them does not confirm")
    p.add_argument("--force", action="store_true", help="let units take an older or the same version")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                   help="how long to serve and follow each group of units")
    p.add_argument("--code", type=Path, default=ROOT, help="the checkout to build the image from (default: this one)")
    p.add_argument("--broker", type=options.host_port, help="HOST:PORT instead of the inventory's broker")
    p = sub.add_parser("status", help="each unit's running version and the version offered to it")
    p.add_argument("--site", required=True, type=Path, help="the site inventory (site.toml)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--broker", type=options.host_port, help="HOST:PORT instead of the inventory's broker")


def _fail(args, exc, code: int) -> int:
    print(f"seatmon fleet {args.fleet_command}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return code


def main(args) -> int:
    host, port = args.broker or (None, None)
    try:
        site = inv.load(args.site)
        creds = load_credentials(site)
        if args.fleet_command == "status":
            client = broker_client(site, creds, host, port, True)
            try:
                rows = status(site, client)
            finally:
                client.loop_stop()
                client.disconnect()
            if args.json:
                print(json.dumps(rows, indent=1))
            else:
                print(flash.table(["unit", "revision", "state", "running", "offered"],
                                  [[r["unit"], r["hardware"], r["state"], r["fw"] or "-", r["offered"] or "-"]
                                   for r in rows]))
            return 0
        if args.canary < 0:
            raise FleetError("--canary: expected 0 or more")
        units = targets(site, args.units)
        images = build_images(site, {u["hardware"] for u in units}, creds[broker_config.OTA_KEY],
                              root=args.code, force=args.force)
        client = broker_client(site, creds, host, port, True)
    except ServerError as exc:
        # The broker answered but refused the update account: its password or the ACL is wrong (input).
        return _fail(args, exc, 2 if "refused" in str(exc) else 1)
    except (inv.InventoryError, FleetError, ota.UpdateError, OSError, ValueError) as exc:
        return _fail(args, exc, 2)
    try:
        try:
            runs = rollout(site, units, images, client, canary=args.canary, wait_s=args.wait)
        except ServerError as exc:
            return _fail(args, exc, 2 if "refused" in str(exc) else 1)
    finally:
        client.loop_stop()
        client.disconnect()
    print(summary(runs))
    return 0 if runs and all(r.state in DONE for r in runs.values()) and len(runs) == len(units) else 1
