"""`pdmpolicy policies [NAME]`: list the policies, or document one."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK
from pdmpolicy.core.errors import UsageError

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    docs = commands.add_parser(
        "policies",
        help="list the policies (built-in and plugins), or document one",
        description="List the policies, built-in and from installed plugins (with the "
        "package each comes from), or print the documentation of one.",
    )
    docs.add_argument("name", nargs="?", metavar="POLICY")


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.docgen.policydocs import policy_markdown
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.policies.plugins import BUILTIN

    if args.name is None:
        width = max(len(name) for name in REGISTRY)
        for name in sorted(REGISTRY):
            origin = REGISTRY.origin(name)
            # Built-ins are the common case: only a plugin's line says where it comes from.
            suffix = "" if origin == BUILTIN else f"  [{origin}]"
            print(f"{name:<{width}}  {REGISTRY[name].summary}{suffix}")
        return EXIT_OK
    if args.name not in REGISTRY:
        raise UsageError(f"unknown policy '{args.name}' (valid: {', '.join(sorted(REGISTRY))})")
    text = policy_markdown(REGISTRY[args.name])
    origin = REGISTRY.origin(args.name)
    if origin != BUILTIN:
        heading, _, rest = text.partition("\n\n")
        text = f"{heading}\n\nFrom {origin}.\n\n{rest}"
    sys.stdout.write(text)
    return EXIT_OK
