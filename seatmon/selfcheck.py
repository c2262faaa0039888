"""`seatmon selfcheck`: check the installation this runs on, with its own
configuration (the site file, or the collector's config file): the broker
and InfluxDB reachable, the database there, the collector's health endpoint
ok, a test event published on the broker and read back from InfluxDB through
the running collector, and Chromium for HTML reports. One line per check,
with the fix when it fails; exit 1 if any fails, 2 for a bad configuration.

The test event is a passing `selftest` of the reserved unit `selfcheck` at
the collector's site, published as the `technician` account (the only
account besides the units' that `seatmon broker config` lets publish it);
without a site file, with the collector's account. Once read back, its
point is deleted from InfluxDB, so reports do not show it. Documented in
docs/operators.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

from seatmon import options, sitefile
from shared import protocol

UNIT = sitefile.SELFCHECK_UNIT  # the reserved unit id of the test event
EXIT_FAILED, EXIT_CONFIG = 1, 2
USER_ENV, PASSWORD_ENV = "SEATMON_SELFCHECK_MQTT_USER", "SEATMON_SELFCHECK_MQTT_PASSWORD"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sitefile.add_option(p)
    p.add_argument("--config", metavar="FILE",
                   help="the collector's config file (as for seatmon collect; wins over the site file)")
    p.add_argument("--timeout", type=options.positive_float, default=20.0, metavar="SECONDS",
                   help="how long to wait for each server and for the test event [20]")


class Report:
    def __init__(self):
        self.failed = 0

    def ok(self, what: str, detail: str = "") -> None:
        print(f"  ok    {what}{': ' + detail if detail else ''}", flush=True)

    def fail(self, what: str, problem: str, fix: str) -> None:
        self.failed += 1
        print(f"  FAIL  {what}: {problem} -> {fix}", flush=True)

    def skip(self, what: str, because: str) -> None:
        self.failed += 1
        print(f"  FAIL  {what}: not tried ({because})", flush=True)


def main(args: argparse.Namespace) -> int:
    from collector import config as config_mod
    from collector.cli import load_config

    site_path = sitefile.path_from(args.site_file)
    if args.config is None and site_path is None:
        print("seatmon selfcheck: error: no configuration: pass --site FILE (the site file) or --config FILE "
              "(the collector's config)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        site = sitefile.load(site_path) if site_path else None
        cfg = load_config(args.config, site_path)
        user, password = _account(cfg, site)
    except (config_mod.ConfigError, sitefile.SiteFileError) as exc:
        print(f"seatmon selfcheck: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    where = " and ".join(str(p) for p in (site_path, args.config) if p)
    print(f"seatmon selfcheck: the installation configured by {where}", flush=True)
    r = Report()
    broker_ok = check_broker(r, cfg, user, password, args.timeout)
    db = check_influx(r, cfg, args.timeout)
    health_ok = check_health(r, cfg, args.timeout)
    what = "test event published and read back from InfluxDB through the collector"
    if broker_ok and db is not None and health_ok:
        round_trip(r, what, cfg, db, user, password, args.timeout)
    else:
        r.skip(what, "failed above: " + ", ".join(n for n, ok in (("broker", broker_ok), ("InfluxDB", db is not None),
                                                                  ("collector", health_ok)) if not ok))
    check_chromium(r)
    print("seatmon selfcheck: all checks passed" if not r.failed else
          f"seatmon selfcheck: {r.failed} check(s) FAILED", flush=True)
    return EXIT_FAILED if r.failed else 0


def _account(cfg, site) -> tuple[str | None, str | None]:
    """Who publishes the test event: $SEATMON_SELFCHECK_MQTT_USER/_PASSWORD,
    else the site's technician account, else the collector's."""
    if os.environ.get(USER_ENV):
        return os.environ[USER_ENV], os.environ.get(PASSWORD_ENV)
    if site is not None:
        return sitefile.TECHNICIAN, os.environ.get(PASSWORD_ENV) or site.password(sitefile.TECHNICIAN)
    return cfg.mqtt.username or None, cfg.mqtt.password or None


def _client(cfg, user, password, client_id: str):
    import paho.mqtt.client as mqtt

    m = cfg.mqtt
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    if m.tls:
        client.tls_set(ca_certs=m.ca_file or None, certfile=m.cert_file or None, keyfile=m.key_file or None)
    return client


def _connect(cfg, user, password, timeout: float):
    """A connected, looping client, or (None, why)."""
    client = _client(cfg, user, password, f"seatmon-selfcheck-{os.getpid()}")
    done = threading.Event()
    result = {}

    def on_connect(c, u, flags, reason_code, props):
        result["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=30)
    except (OSError, ValueError) as exc:
        return None, f"unreachable: {exc}"
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        return None, f"no CONNACK within {timeout:g} s"
    if result["rc"].is_failure:
        client.loop_stop()
        return None, f"refused the login of {user or 'an anonymous client'}: {result['rc']}"
    return client, ""


def check_broker(r: Report, cfg, user, password, timeout) -> bool:
    what = f"broker {cfg.mqtt.host}:{cfg.mqtt.port}{' (TLS)' if cfg.mqtt.tls else ''}"
    client, why = _connect(cfg, user, password, timeout)
    if client is None:
        if why.startswith("refused"):
            fix = ("check the account's password (the site's credentials file from `seatmon broker config`, "
                   f"or ${PASSWORD_ENV}) and that Mosquitto runs with the generated passwd")
        else:
            fix = ("start Mosquitto (systemctl start mosquitto) or correct [broker] host/port in the site file "
                   "(or mqtt.host/port of the collector's config)")
        r.fail(what, why, fix)
        return False
    client.disconnect()
    client.loop_stop()
    r.ok(what, f"connected as {user or 'anonymous'}")
    return True


def check_influx(r: Report, cfg, timeout):
    """Reachable, then the database there; the client, or None."""
    from collector.influx import InfluxError, InfluxV1

    i = cfg.influx
    db = InfluxV1(i.url, i.database, username=i.username or None, password=i.password or None,
                  token=i.token or None, timeout=timeout)
    try:
        version = db.ping()
    except InfluxError as exc:
        r.fail(f"InfluxDB {i.url}", str(exc).splitlines()[0].replace(f"InfluxDB at {db.url} is ", ""),
               "start InfluxDB (systemctl start influxdb) or correct [influx] url in the site file")
        r.skip(f"database '{i.database}'", "InfluxDB is unreachable")
        return None
    r.ok(f"InfluxDB {i.url}", f"version {version}")
    try:
        names = [v[0] for res in db.query("SHOW DATABASES") for s in res.get("series", []) for v in s.get("values", [])]
    except InfluxError as exc:
        r.fail(f"database '{i.database}'", str(exc).splitlines()[0],
               "check the InfluxDB account ([influx] username, $SEATMON_INFLUX_PASSWORD)")
        return None
    if i.database not in names:
        r.fail(f"database '{i.database}'", "missing", "run `seatmon collect --site FILE init-db`")
        return None
    r.ok(f"database '{i.database}'", "exists")
    return db


def _health_url(cfg) -> str | None:
    h = cfg.health
    if h.port <= 0:
        return None
    host = "127.0.0.1" if h.bind in ("0.0.0.0", "", "::") else h.bind
    return f"http://{host}:{h.port}/health"


def check_health(r: Report, cfg, timeout) -> bool:
    url = _health_url(cfg)
    what = f"collector health {url or '(endpoint off)'}"
    if url is None:
        r.fail(what, f"health.port is {cfg.health.port}", "set a port in [collector.health] (default 9464)")
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            health = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        r.fail(what, f"no answer ({exc})",
               "start the collector (systemctl start seatmon-collector; journalctl -u seatmon-collector)")
        return False
    if not health.get("ok"):
        problems = "; ".join(f"{k}: {v}" for k, v in health.get("problems", {}).items()) or "not ok"
        r.fail(what, problems, "fix what it names (docs/collector.md, health endpoint)")
        return False
    r.ok(what, f"ok (received {health.get('received')}, written {health.get('written')}, "
               f"spool depth {health.get('spool_depth')})")
    return True


def test_event(site: str, now_ms: int) -> dict:
    """A passing self-test of the reserved unit. Its `seq` is the clock in
    ms: a unit's seq never restarts, and the collector stores each seq of a
    unit once, so every run's event must have a new, higher one."""
    return {"v": protocol.VERSION, "kind": protocol.SELFTEST, "site": site, "unit": UNIT, "seat": UNIT,
            "boot": (now_ms // 1000) % 2147483647, "seq": now_ms, "ts": now_ms, "clock": "ntp", "ok": True,
            "checks": {"host": "seatmon selfcheck"}, "faults": []}


def round_trip(r: Report, what: str, cfg, db, user, password, timeout) -> None:
    from collector.influx import InfluxError

    site = cfg.mqtt.site if cfg.mqtt.site != "+" else UNIT
    event = test_event(site, int(time.time() * 1000))
    client, why = _connect(cfg, user, password, timeout)
    if client is None:
        r.fail(what, f"could not connect again: {why}", "see the broker line above")
        return
    info = client.publish(protocol.topic(site, UNIT, protocol.EVENT, cfg.mqtt.prefix),
                          protocol.encode(protocol.EVENT, event), qos=1)
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as exc:
        client.loop_stop()
        r.fail(what, f"publish failed: {exc}", "check the broker")
        return
    client.disconnect()
    client.loop_stop()
    if not info.is_published():
        r.fail(what, f"the broker did not acknowledge the publish within {timeout:g} s", "check the broker's log")
        return
    query = (f"SELECT \"boot\" FROM \"selftest\" WHERE \"unit\" = '{UNIT}' AND \"site\" = '{site}' "
             f"AND time = {event['ts']}ms")
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    found = False
    while not found and time.monotonic() < deadline:
        try:
            found = any(s.get("values") for res in db.query(query) for s in res.get("series", []))
        except InfluxError:
            pass
        if not found:
            time.sleep(0.2)
    if not found:
        r.fail(what, f"published on the broker, not in InfluxDB after {timeout:g} s",
               f"the account {user or 'anonymous'} may not publish {UNIT}'s events (the broker ACL; "
               "re-run `seatmon broker config`), or the collector quarantined it (`seatmon collect quarantine "
               "list`) or subscribes to another site (mqtt.site)")
        return
    cleanup = ""
    try:
        db.query(f"DELETE FROM \"selftest\" WHERE \"unit\" = '{UNIT}'", method="POST")
    except InfluxError as exc:
        cleanup = f"; the test point stays (cannot delete it: {str(exc).splitlines()[0]})"
    r.ok(what, f"{protocol.topic(site, UNIT, protocol.EVENT, cfg.mqtt.prefix)} stored in "
               f"{time.monotonic() - t0:.1f} s as {user or 'anonymous'}{cleanup}")


def check_chromium(r: Report) -> None:
    what = "Chromium for HTML reports"
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        r.fail(what, "not found", "apt-get install chromium (setup.sh installs it)")
        return
    try:
        res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        r.fail(what, f"{path} does not run: {exc}", "reinstall chromium")
        return
    if res.returncode != 0:
        r.fail(what, f"{path} --version exited {res.returncode}", "reinstall chromium")
        return
    r.ok(what, f"{path}: {res.stdout.strip()}")
