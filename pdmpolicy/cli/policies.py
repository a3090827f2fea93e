"""`pdmpolicy policies [NAME]`: list the policies, or document one."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK
from pdmpolicy.errors import UsageError

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    docs = commands.add_parser(
        "policies",
        help="list the built-in policies, or document one",
        description="List the built-in policies, or print the documentation of one.",
    )
    docs.add_argument("name", nargs="?", metavar="POLICY")


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.policydocs import policy_markdown

    if args.name is None:
        width = max(len(name) for name in REGISTRY)
        for name in sorted(REGISTRY):
            print(f"{name:<{width}}  {REGISTRY[name].summary}")
        return EXIT_OK
    if args.name not in REGISTRY:
        raise UsageError(f"unknown policy '{args.name}' (valid: {', '.join(sorted(REGISTRY))})")
    sys.stdout.write(policy_markdown(REGISTRY[args.name]))
    return EXIT_OK
