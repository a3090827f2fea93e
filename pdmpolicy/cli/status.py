"""`pdmpolicy status`: where every environment is, what may move next, and when."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK, load, today

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    status = commands.add_parser(
        "status",
        parents=[common],
        help="each environment's rollout step, soak, next step and when it may move",
        description="One row per environment: database, rollout step, since when and for "
        "how many days, the upstream and its step, the next step, and the earliest day it "
        "may be taken with the rule that decides it (promotion-order: the upstream's step "
        "and soak; one-step-at-a-time: the environment's own soak; waivers in force lift "
        "either), or 'may advance now'. A 'planned' date assumes the upstream advances as "
        "early as it may.",
        epilog="example: pdmpolicy status --today 2026-12-01 --format markdown",
    )
    status.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (default): a table; json: one object; markdown: a table and a Mermaid "
        "gantt chart of the plan to kubernetes-only",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.rollout.report import render

    project = load(args)
    sys.stdout.write(render(args.format, project.environments, project.policy_set, today(args)))
    return EXIT_OK
