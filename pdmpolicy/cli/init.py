"""`pdmpolicy init ENV --database DB`: a new environment file at rollout step `vm`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_FINDINGS, EXIT_OK, load, today

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    init = commands.add_parser(
        "init",
        parents=[common],
        help="a new environment file at rollout step vm that checks clean",
        description="Write environments/ENV.yml: a commented environment at rollout step vm "
        "(one VM executor), since --today, then render ci/. Refused (exit 2) for an invalid "
        "name, an existing file or environment, an unknown upstream, or a database whose "
        "PDMs another environment runs already; refused (exit 1) if the result would not "
        "pass check.",
        epilog="example: pdmpolicy init gprd-cny --database gprd-cny --upstream gprd",
    )
    init.add_argument("environment", metavar="ENV", help="the new environment's name")
    init.add_argument("--database", required=True, metavar="DB", help="its database")
    init.add_argument(
        "--upstream", metavar="ENV", help="the environment that must lead it (default: none)"
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.environments.project import Project, views_of
    from pdmpolicy.output.atomic import write_files
    from pdmpolicy.output.render import rendered_files, write_all
    from pdmpolicy.reports import REPORTERS, ReportInput
    from pdmpolicy.rollout.advance import blocking, build_environment_text
    from pdmpolicy.rollout.init import environment_text, refuse, timeout_for

    project = load(args)
    name, database, upstream = args.environment, args.database, args.upstream
    target = args.environments / f"{name}.yml"
    existing = [
        path.as_posix()
        for path in (target, args.environments / f"{name}.yaml")
        if path.exists() or path.is_symlink()
    ]
    refuse(name, database, upstream, project.views, existing)
    day = today(args)
    text = environment_text(name, database, upstream, day, timeout_for(project.policy_set))
    path = (args.environments / f"{name}.yml").as_posix()
    environment = build_environment_text(path, text)
    views = views_of([*project.environments, environment])
    after = Project(project.root, views, project.policy_set)
    findings, standing = blocking(project, after, day, {path})
    if findings:
        sys.stdout.write(REPORTERS["text"](ReportInput(tuple(findings))))
        print(f"pdmpolicy: refusing to create {path}: it would not pass check", file=sys.stderr)
        return EXIT_FINDINGS
    if standing:
        print(
            f"note: {len(standing)} error-level finding(s) that stood before still stand in "
            "other files (`pdmpolicy check` lists them)"
        )
    write_files({target: text})
    print(f"wrote {path}: {name} at step vm since {day.isoformat()} (database {database})")
    files = rendered_files(after)
    for changed in write_all(project.root, files):
        print(f"wrote {changed}" if changed in files else f"removed {changed}")
    print(f"next: `pdmpolicy status` says when {name} may move; `pdmpolicy advance {name}`")
    return EXIT_OK
