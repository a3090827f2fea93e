"""`pdmpolicy render [--check]`: write ci/ (all files or none), or show how it is stale."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_FINDINGS, EXIT_OK, has_errors, load, today

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    render = commands.add_parser(
        "render",
        parents=[common],
        help="write ci/ (all files or none)",
        description="Write ci/environments/<env>-postdeploy-migrations.yml and "
        "ci/postdeploy-migrations.yml. Refuses while any error-level finding stands.",
    )
    render.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a unified diff when ci/ is stale",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.output.render import drift, rendered_files, write_all
    from pdmpolicy.policyset.engine import evaluate
    from pdmpolicy.reports import REPORTERS, ReportInput

    project = load(args)
    findings = evaluate(project, today(args))
    files = rendered_files(project)
    if has_errors(findings):
        sys.stdout.write(REPORTERS["text"](ReportInput(tuple(findings))))
        print("pdmpolicy: not rendering while error-level findings stand", file=sys.stderr)
        return EXIT_FINDINGS
    if args.check:
        stale = drift(project.root, files)
        for item in stale:
            sys.stdout.write(item.diff)
        if stale:
            print(
                f"pdmpolicy: ci/ is stale ({len(stale)} file(s)); run `pdmpolicy render`",
                file=sys.stderr,
            )
            return EXIT_FINDINGS
        print(f"ci/ is up to date ({len(files)} files)")
        return EXIT_OK
    changed = write_all(project.root, files)
    for path in changed:
        print(f"wrote {path}" if path in files else f"removed {path}")
    if not changed:
        print(f"ci/ is up to date ({len(files)} files)")
    return EXIT_OK
