"""`seatmon collect`: run the collector, check its config, create the
database, inspect or replay the quarantine, migrate old-schema data and
rebuild roll-ups."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from collector import config as config_mod
from collector import spool as spool_mod
from seatmon import sitefile

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (example: deploy/collector.example.toml); its values win over the "
                             "site file's; required unless --site or SEATMON_COLLECT_<SECTION>_<KEY> variables "
                             "configure the collector")
    sitefile.add_option(parser)
    parser.add_argument("--check", action="store_true", help="validate the config, reach the broker and InfluxDB, exit")
    sub = parser.add_subparsers(dest="collect_action", metavar="ACTION")
    sub.add_parser("init-db", help="create the InfluxDB database (or bucket) and the spool")
    q = sub.add_parser("quarantine", help="list, show or replay quarantined messages")
    qsub = q.add_subparsers(dest="quarantine_action", metavar="WHAT", required=True)
    ql = qsub.add_parser("list", help="newest quarantined messages")
    ql.add_argument("--limit", type=int, default=50)
    ql.add_argument("--all", action="store_true", help="include replayed ones")
    qs = qsub.add_parser("show", help="one message in full")
    qs.add_argument("id", type=int)
    qr = qsub.add_parser("replay", help="publish messages again on their topic (after a fix)")
    qr.add_argument("ids", type=int, nargs="*", help="ids to replay")
    qr.add_argument("--all", action="store_true", help="every message not replayed yet")
    m = sub.add_parser("migrate", help="convert data stored before the shift label became a field (tag shift -> "
                                       "tag shift_name + field shift), then build its roll-ups; safe to re-run")
    m.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    m.add_argument("--tz", metavar="ZONE", help="zone of the day roll-ups (default: rollup.tz of the config)")
    r = sub.add_parser("rollup", help="rebuild the roll-ups of a date range from the stored calls (repair)")
    r.add_argument("--from", dest="date_from", metavar="DATE", required=True, help="first local day, YYYY-MM-DD")
    r.add_argument("--to", dest="date_to", metavar="DATE", required=True, help="last local day (inclusive)")
    r.add_argument("--tz", metavar="ZONE", help="zone of the days and of the day roll-ups "
                                                "(default: rollup.tz of the config)")


EXAMPLE_CONFIG = "deploy/collector.example.toml"


def load_config(config_path: str | None, site_path: str | None):
    """The collector's config from its file and/or the site file; raises
    ConfigError or SiteFileError."""
    site = sitefile.load(site_path) if site_path else None
    return config_mod.load(config_path, site=site)


def main(args: argparse.Namespace) -> int:
    site_path = sitefile.path_from(args.site_file)
    if args.config is None and site_path is None and not any(
            name.startswith(config_mod.ENV_PREFIX) for name in os.environ):
        print(f"seatmon collect: no configuration: pass --site FILE (start from deploy/site.example.toml), "
              f"--config FILE (start from {EXAMPLE_CONFIG} in the seatmon source) or set "
              f"{config_mod.ENV_PREFIX}<SECTION>_<KEY> variables", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, site_path)
    except (config_mod.ConfigError, sitefile.SiteFileError) as exc:
        print(f"seatmon collect: config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log.level)
    action = getattr(args, "collect_action", None)
    if args.check:
        return check(cfg)
    if action == "init-db":
        return init_db(cfg)
    if action == "quarantine":
        return quarantine(cfg, args)
    if action in ("migrate", "rollup"):
        return maintain(cfg, args)
    return run(cfg)


def _ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


def _mqtt_probe(cfg, timeout: float = 10.0):
    """Connect a throwaway client with the collector's credentials."""
    import paho.mqtt.client as mqtt

    m = cfg.mqtt
    done = threading.Event()
    result = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=m.client_id + "-check", protocol=mqtt.MQTTv5)
    if m.username:
        client.username_pw_set(m.username, m.password or None)
    if m.tls:
        client.tls_set(ca_certs=m.ca_file or None, certfile=m.cert_file or None, keyfile=m.key_file or None)

    def on_connect(c, u, flags, reason_code, props):
        result["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    client.connect(m.host, m.port, keepalive=10)
    client.loop_start()
    ok = done.wait(timeout)
    return client, ok, result.get("rc")


def check(cfg) -> int:
    from collector.influx import InfluxError, make_writer

    failures = 0
    print(f"config {cfg.source}: ok")
    spool_dir = Path(cfg.spool.path).parent
    if spool_dir.is_dir():
        print(f"spool directory {spool_dir}: ok")
    else:
        print(f"spool directory {spool_dir}: missing (create it; the systemd unit's StateDirectory does)")
        failures += 1
    try:
        client, ok, rc = _mqtt_probe(cfg)
        client.disconnect()
        client.loop_stop()
        if ok and not rc.is_failure:
            print(f"broker {cfg.mqtt.host}:{cfg.mqtt.port}: ok")
        else:
            print(f"broker {cfg.mqtt.host}:{cfg.mqtt.port}: refused ({rc})" if ok else "broker: no answer")
            failures += 1
    except OSError as exc:
        print(f"broker {cfg.mqtt.host}:{cfg.mqtt.port}: unreachable: {exc}")
        failures += 1
    try:
        influx = make_writer(cfg)
        version = influx.ping()
        print(f"influxdb {cfg.influx.url}: ok (version {version})")
        if cfg.influx.api == "v1":
            results = influx.query("SHOW DATABASES")
            names = [v[0] for r in results for s in r.get("series", []) for v in s.get("values", [])]
            if cfg.influx.database not in names:
                print(f"influxdb database '{cfg.influx.database}': missing (run `seatmon collect init-db`)")
                failures += 1
    except InfluxError as exc:
        print(f"influxdb {cfg.influx.url}: {exc}")
        failures += 1
    return 1 if failures else 0


def init_db(cfg) -> int:
    from collector.influx import InfluxError, make_writer

    try:
        make_writer(cfg).create_database()
    except InfluxError as exc:
        print(f"seatmon collect init-db: {exc}", file=sys.stderr)
        return 1
    try:
        spool_mod.Spool(cfg.spool.path).close()
    except spool_mod.SpoolError as exc:
        print(f"seatmon collect init-db: {exc}", file=sys.stderr)
        return 2
    print(f"database '{cfg.influx.database}' ready at {cfg.influx.url}; spool at {cfg.spool.path}")
    return 0


def quarantine(cfg, args) -> int:
    try:
        db = spool_mod.open_readonly(cfg.spool.path)
    except FileNotFoundError as exc:
        print(f"seatmon collect quarantine: {exc}", file=sys.stderr)
        return 1
    what = args.quarantine_action
    if what == "list":
        rows = spool_mod.quarantine_list(db, args.limit, args.all)
        print(f"{spool_mod.quarantine_count(db)} quarantined in total")
        for qid, received, topic, reason, size, replayed in rows:
            mark = f" (replayed {_ms(replayed)})" if replayed else ""
            print(f"{qid:>8}  {_ms(received)}  {topic}  {size} B  {reason}{mark}")
        return 0
    if what == "show":
        row = spool_mod.quarantine_get(db, args.id)
        if row is None:
            print(f"no quarantined message {args.id}", file=sys.stderr)
            return 1
        qid, received, topic, payload, reason, replayed = row
        print(json.dumps({"id": qid, "received": _ms(received), "topic": topic, "reason": reason,
                          "replayed": _ms(replayed) if replayed else None,
                          "payload": payload.decode("utf-8", errors="backslashreplace")}, indent=2))
        return 0
    # replay: publish again on the original topic; the running collector
    # validates it afresh and stores or quarantines it again.
    ids = args.ids
    if args.all:
        ids = [r[0] for r in db.execute("SELECT id FROM quarantine WHERE replayed_ms IS NULL AND topic != '(influx write)'"
                                        " ORDER BY id")]
    if not ids:
        print("nothing to replay")
        return 0
    client, ok, rc = _mqtt_probe(cfg)
    if not ok or rc.is_failure:
        print(f"seatmon collect quarantine replay: broker {cfg.mqtt.host}:{cfg.mqtt.port} not reachable", file=sys.stderr)
        return 1
    replayed = 0
    for qid in ids:
        row = spool_mod.quarantine_get(db, qid)
        if row is None or row[2] == "(influx write)":
            print(f"{qid}: not a replayable message", file=sys.stderr)
            continue
        info = client.publish(row[2], row[3], qos=1)
        info.wait_for_publish(10)
        spool_mod.quarantine_mark_replayed(db, qid)
        replayed += 1
    client.disconnect()
    client.loop_stop()
    print(f"replayed {replayed} message(s)")
    return 0


def maintain(cfg, args) -> int:
    """`migrate` and `rollup`: progress lines on stdout, one-line errors."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from collector import migrate
    from collector.influx import InfluxError, make_writer

    action = args.collect_action
    tz = args.tz or cfg.rollup.tz
    say = lambda text: print(text, flush=True)  # noqa: E731
    db = make_writer(cfg)
    if not hasattr(db, "query"):
        print(f"seatmon collect {action}: needs InfluxQL /query (influx.api = v1, or a DBRP mapping)", file=sys.stderr)
        return 2
    try:
        if action == "migrate":
            migrate.run(db, tz, say, dry_run=args.dry_run)
            return 0
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
        if last < first:
            print(f"seatmon collect rollup: --to {last} is before --from {first}", file=sys.stderr)
            return 2
        zone = ZoneInfo(tz)
        start = int(datetime(first.year, first.month, first.day, tzinfo=zone).timestamp() * 1000)
        after = last + timedelta(days=1)
        end = int(datetime(after.year, after.month, after.day, tzinfo=zone).timestamp() * 1000)
        points = migrate.rebuild_range(db, start, end, tz, say)
        say(f"roll-ups rebuilt from {first} to {last} ({tz}): {points} points written")
        return 0
    except InfluxError as exc:
        print(f"seatmon collect {action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seatmon collect {action}: interrupted; run it again to finish", file=sys.stderr)
        return 1


def run(cfg) -> int:
    from collector.service import Collector, HealthPortError

    log = logging.getLogger("seatmon.collector")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    try:
        collector = Collector(cfg).start()
    except (spool_mod.SpoolError, HealthPortError) as exc:
        print(f"seatmon collect: {exc}", file=sys.stderr)
        return 2
    log.info("collector running", extra={"config": cfg.source, "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}",
                                         "influx": cfg.influx.url, "spool": cfg.spool.path})
    while not stop.wait(1.0):
        pass
    collector.stop()
    return 0


if __name__ == "__main__":
    from seatmon.cli import main as seatmon_main

    sys.exit(seatmon_main(["collect", *sys.argv[1:]]))
