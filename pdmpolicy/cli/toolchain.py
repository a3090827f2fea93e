"""`pdmpolicy toolchain`: the toolchain in effect, written as a `toolchain:` section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    toolchain = commands.add_parser(
        "toolchain",
        help="the toolchain in effect (how k-ctl, the VM tooling and Rails are called)",
        description="Print the toolchain that render and the checks use: the built-in "
        "defaults with the policy set's toolchain: section over them, every key written. "
        "The output is itself a valid toolchain: section (docs/toolchain.md).",
    )
    toolchain.add_argument(
        "--policies",
        type=Path,
        default=Path("policies"),
        metavar="DIR",
        help="policy set (default: policies/; the built-in defaults when it does not exist)",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.output.render import dump_yaml
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.policyset.config import load_policy_set
    from pdmpolicy.policyset.toolchain_section import section

    policy_set = load_policy_set(args.policies, Path.cwd(), REGISTRY)
    source = policy_set.toolchain_file
    where = f"with {source} over them" if source else "(no toolchain: section in the policy set)"
    sys.stdout.write(
        f"# The toolchain in effect: the built-in defaults {where}.\n"
        "# docs/toolchain.md says what each key means and the status of each default.\n"
        + dump_yaml({"toolchain": section(policy_set.toolchain)})
    )
    return EXIT_OK
