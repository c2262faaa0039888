"""`seatmon unit`: desk-unit commands. `config push` publishes a unit's
configuration, built from the site inventory, as the retained QoS1 message on
its config topic; the running unit applies it. `simulate` runs virtual desk
units (the real firmware on simulated boards) against a broker."""

from __future__ import annotations

import sys

from tools import unit_config
from virtual.units import cli as simulate_cmd


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="unit_command", metavar="ACTION", required=True)
    config = sub.add_parser("config", help="a unit's configuration")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    push = csub.add_parser("push", help="publish the unit's config (retained, QoS1) on its config topic")
    unit_config.add_arguments(push)
    sim = sub.add_parser("simulate", help="run N virtual desk units (the real firmware) against a broker",
                         description=simulate_cmd.__doc__.split("\n\n")[0])
    simulate_cmd.add_arguments(sim)


def main(args) -> int:
    if args.unit_command == "config" and args.config_command == "push":
        return unit_config.main(args)
    if args.unit_command == "simulate":
        return simulate_cmd.main(args)
    print(f"seatmon unit: unknown action {args.unit_command}", file=sys.stderr)
    return 2
