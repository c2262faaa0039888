"""`seatmon board`: the live wallboard. Every seat's state right now and the
current shift's figures, on one self-updating page. Documented in
docs/wallboard.md.

Modules: floor.py decides (pure), live.py subscribes to MQTT, history.py
reads stored calls from InfluxDB, app.py ties them together, web.py serves
the page and its server-sent-event stream.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="the board's TOML configuration (deploy/board.example.toml); it wins over the site "
                             "file; required unless --site or $SEATMON_SITE gives a site file")
    from seatmon import sitefile

    sitefile.add_option(parser)
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="address to serve the page on [board.listen in the config, 127.0.0.1:8080]; "
                             "a non-loopback address requires basic auth")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def check_exposure(cfg) -> None:
    """Off loopback, the floor is visible to the network: demand a password."""
    from seatmon.wallboard.config import ConfigError, is_loopback

    if not is_loopback(cfg.listen_host) and not cfg.auth_user:
        raise ConfigError(f"listening on {cfg.listen} (not loopback) requires basic auth: set board.auth_user and "
                          "board.auth_password (or $SEATMON_BOARD_PASSWORD)")


def main(args) -> int:
    from seatmon import sitefile
    from seatmon.wallboard.app import Board
    from seatmon.wallboard.config import ConfigError, load, split_listen
    from seatmon.wallboard.web import BoardServer

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    site_path = sitefile.path_from(args.site_file)
    if args.config is None and site_path is None:
        print("seatmon board: no configuration: pass --site FILE (deploy/site.example.toml) or --config FILE "
              "(deploy/board.example.toml)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        cfg = load(args.config, site=sitefile.load(site_path) if site_path else None)
        if args.listen:
            try:
                split_listen(args.listen)
            except ValueError as exc:
                raise ConfigError(f"--listen: {exc}")
            cfg.listen = args.listen
        check_exposure(cfg)
    except (ConfigError, sitefile.SiteFileError) as exc:
        print(f"seatmon board: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    board = Board(cfg)
    try:
        server = BoardServer((cfg.listen_host, cfg.listen_port), board,
                             (cfg.auth_user, cfg.auth_password) if cfg.auth_user else None)
    except OSError as exc:
        print(f"seatmon board: cannot listen on {cfg.listen}: {exc.strerror}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    board.start()
    serving = threading.Thread(target=server.serve_forever, daemon=True, name="board-http")
    serving.start()
    host, port = server.server_address[:2]
    logging.getLogger("seatmon.board").info("serving the wallboard on http://%s:%s/", host, port)
    print(f"seatmon board: http://{host}:{port}/", flush=True)
    stop.wait()
    server.shutdown()
    board.stop()
    server.server_close()
    return 0
