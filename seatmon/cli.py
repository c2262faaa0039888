"""The `seatmon` command.

Each subcommand lives in its own module, which provides
`add_arguments(parser)` and `main(args) -> int`. A subcommand whose module is
not built yet is listed in --help as such and exits 3 when called, so nothing
pretends to work.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from seatmon import __version__, options

# name -> (module providing add_arguments/main, or None while not built; help text)
SUBCOMMANDS: dict[str, tuple[str | None, str]] = {
    "collect": ("collector.cli", "run the collector service (MQTT -> spool -> InfluxDB)"),
    "report": ("seatmon.report", "answer-time, staffing, safety and unit-health reports; daily to monthly"),
    "board": ("seatmon.wallboard", "live web wallboard"),
    "web": ("seatmon.web", "the web front end: wallboard, reports and fleet behind logins and roles; its accounts"),
    "unit": ("seatmon.unit_cmd", "virtual desk units and unit config"),
    "flash": ("tools.flash", "find, provision and verify desk units over USB"),
    "broker": ("tools.broker_config", "a site's Mosquitto configuration, CA and broker certificate"),
    "rehearse": ("virtual.rehearse", "a virtual ESP32 board to rehearse provisioning on: start, port, status, stop"),
    "fleet": ("tools.fleet", "update the desk units' code over the air; show each unit's version"),
    "demo": ("seatmon.demo", "the live demo: servers, collector, wallboard, virtual units, reports"),
    "roster": ("seatmon.roster.cli", "the roster: who sat at which seat when (import the shift plan, set, clear, show)"),
    "data": ("seatmon.retention", "data protection: remove roster assignments older than the retention period"),
    "selfcheck": ("seatmon.selfcheck", "check this installation: broker, InfluxDB, collector, a test event, Chromium"),
    "audit": ("seatmon.audit", "the log of report runs that named agents: who looked at whom, when"),
}

NOT_BUILT_EXIT = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, with a pointer to --help instead of the usage
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="seatmon", description="Seat monitor for customer-service call centres.")
    parser.add_argument("--version", action="version", version=f"seatmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in SUBCOMMANDS.items():
        if module is None:
            p = sub.add_parser(name, help=f"{help_text} [not built yet]", description=help_text)
            p.set_defaults(_module=None, _name=name)
        else:
            p = sub.add_parser(name, help=help_text, description=help_text)
            importlib.import_module(module).add_arguments(p)
            p.set_defaults(_module=module, _name=name)
    _check_options(parser)
    return parser


# Options several subcommands share, parsed the same way everywhere, so a bad
# value is refused before any server is contacted.
CHECKED_OPTIONS = {"--influx": options.influx_url, "--from": options.iso_date, "--to": options.iso_date,
                   "--month": options.month, "--tz": options.time_zone}


# The reports check their dates, months and zones themselves, before they ask
# InfluxDB, with messages of their own: only --influx is shared with them.
SELF_CHECKED = {"report": {"--influx"}}


def _check_options(parser: argparse.ArgumentParser, only: set[str] | None = None) -> None:
    for action in parser._actions:
        for flag in action.option_strings:
            if flag in CHECKED_OPTIONS and action.type is None and (only is None or flag in only):
                action.type = CHECKED_OPTIONS[flag]
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _check_options(sub, SELF_CHECKED.get(name, only))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # what the audit log records (seatmon/audit.py)
    if extra and getattr(args, "_module", "") is not None:
        parser.parse_args(argv)  # reports the unknown arguments and exits 2
    if not args.command:
        parser.print_help()
        return 2
    if args._module is None:
        print(f"seatmon {args._name}: not built yet in seatmon {__version__}.", file=sys.stderr)
        return NOT_BUILT_EXIT
    return importlib.import_module(args._module).main(args) or 0


def main_exit() -> None:
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
