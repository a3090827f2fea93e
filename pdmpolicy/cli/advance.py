"""`pdmpolicy advance ENV`: rewrite one environment file for its next rollout step."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_FINDINGS, EXIT_OK, load, today
from pdmpolicy.core.errors import UsageError
from pdmpolicy.core.names import ROLLOUT_STEPS

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    advance = commands.add_parser(
        "advance",
        parents=[common],
        help="rewrite one environment file for its next rollout step, and render ci/",
        description="Rewrite environments/ENV.yml for the next rollout step (or --to STEP): "
        "the jobs that step requires, built from the ones there (names, timeouts, variables "
        "and k-ctl settings kept), rollout.step set and since set to --today. Comments, key "
        "order and quoting of everything else stay as written. Forward moves are refused "
        "(exit 1) with the rule, the reason and the first day allowed while promotion-order "
        "or one-step-at-a-time would fail; moving back towards the VMs is always allowed. "
        "The result is checked with the full policy set before anything is written; then "
        "ci/ is rendered.",
        epilog="steps, in order: " + " < ".join(ROLLOUT_STEPS) + ". example: pdmpolicy "
        "advance gprd --today 2026-12-07 --dry-run",
    )
    advance.add_argument("environment", metavar="ENV", help="the environment to move")
    advance.add_argument(
        "--to",
        choices=ROLLOUT_STEPS,
        metavar="STEP",
        help="the step to move to (default: the next one); an earlier step moves back",
    )
    advance.add_argument(
        "--dry-run",
        action="store_true",
        help="print the unified diff of every file that would change; write nothing",
    )
    advance.add_argument(
        "--with-downstream",
        action="store_true",
        help="when moving back would leave environments downstream ahead of ENV, move them "
        "back too (they are named otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.output.atomic import write_files
    from pdmpolicy.output.render import drift, rendered_files, write_all
    from pdmpolicy.reports import REPORTERS, ReportInput
    from pdmpolicy.rollout.advance import plan_moves

    project = load(args)
    day = today(args)
    views = {view.name: view for view in project.views}
    if args.environment not in views:
        known = ", ".join(sorted(views))
        raise UsageError(f"no environment '{args.environment}' (known: {known})")
    env = views[args.environment].environment
    if args.to is None and env.step_index == len(ROLLOUT_STEPS) - 1:
        print(f"{env.name} is at {env.step}, the last step: nothing to advance")
        return EXIT_OK
    target = ROLLOUT_STEPS.index(args.to) if args.to else env.step_index + 1
    if target == env.step_index:
        print(f"{env.name} is at {env.step} already: nothing to change")
        return EXIT_OK
    outcome = plan_moves(project, env.name, target, day, args.with_downstream)
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.refusals:
        print(
            f"pdmpolicy: refusing to move {env.name} to {ROLLOUT_STEPS[target]} on "
            f"{day.isoformat()}; nothing was written",
            file=sys.stderr,
        )
        for refusal in outcome.refusals:
            print(f"  {refusal}", file=sys.stderr)
        return EXIT_FINDINGS
    if outcome.findings:
        sys.stdout.write(REPORTERS["text"](ReportInput(tuple(outcome.findings))))
        print(
            f"pdmpolicy: refusing to move {env.name}: the result would not pass check; "
            "nothing was written",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    assert outcome.project is not None
    files = rendered_files(outcome.project)
    for move in outcome.moves:
        print(f"{move.environment}: {move.old} -> {move.new}")
        for change in move.rewrite.changes:
            print(f"  {change}")
    print("check (full policy set, current files as the base): clean for the files written")
    if outcome.standing:
        print(
            f"note: {len(outcome.standing)} error-level finding(s) that stood before still "
            "stand in other files (`pdmpolicy check` lists them)"
        )
    if args.dry_run:
        sys.stdout.write(outcome.diff())
        for item in drift(project.root, files):
            sys.stdout.write(item.diff)
        print("dry run: nothing was written")
        return EXIT_OK
    write_files({project.root / move.path: move.after for move in outcome.moves})
    for move in outcome.moves:
        print(f"wrote {move.path}")
    for path in write_all(project.root, files):
        print(f"wrote {path}" if path in files else f"removed {path}")
    return EXIT_OK
