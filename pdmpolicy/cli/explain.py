"""`pdmpolicy explain ENV`: job order, what each job does to PDMs, a Mermaid graph."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK, load
from pdmpolicy.core.errors import UsageError

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="job order, PDM effects and a Mermaid graph",
        description="Show the order of an environment's jobs, what each does to PDMs, and a "
        "Mermaid graph.",
    )
    explain.add_argument("environment", metavar="ENV")


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.reports.graph import explain

    project = load(args)
    for view in project.views:
        if view.name == args.environment:
            sys.stdout.write(explain(view))
            return EXIT_OK
    known = ", ".join(view.name for view in project.views)
    raise UsageError(f"no environment '{args.environment}' (known: {known})")
