"""`pdmpolicy check`: validate, evaluate every policy, prove the invariants, report."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    environment_cases,
    has_errors,
    load,
    report_options,
    today,
    write_reports,
)

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers
    from pdmpolicy.core.findings import Finding
    from pdmpolicy.environments.project import Project
    from pdmpolicy.policies.base import EnvironmentView


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    check = commands.add_parser(
        "check",
        parents=[common],
        help="validate and evaluate every policy",
        description="Validate the environment files and evaluate every policy on the "
        "pipelines that would be rendered.",
    )
    report_options(check)
    check.add_argument(
        "--base",
        metavar="REF",
        help="git ref of the merge request's target: enables the change-aware policies "
        "(one-step-at-a-time) and the behavioural diff in the markdown note",
    )
    check.add_argument(
        "--link-base",
        metavar="URL",
        help="prefix for file links in the markdown note, e.g. "
        "$CI_PROJECT_URL/-/blob/$CI_COMMIT_SHA",
    )


def _base_diff(
    args: argparse.Namespace,
    project: Project,
    base: tuple[EnvironmentView, ...],
    findings: list[Finding],
) -> str:
    """The behavioural diff against the base, with the policies evaluated there too."""
    from pdmpolicy.core.errors import InputError
    from pdmpolicy.environments.project import Project
    from pdmpolicy.policyset.engine import evaluate
    from pdmpolicy.reports.diff import behaviour_diff

    base_project = Project(project.root, base, project.policy_set)
    try:
        base_findings = evaluate(base_project, today(args))
    except InputError:
        # The policy set may scope a policy to an environment the base does not have yet;
        # the diff then lists current failures as new rather than failing the run.
        base_findings = []
    return behaviour_diff(base, project.views, base_findings, findings, args.base)


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.environments.project import load_base
    from pdmpolicy.policies.base import pipeline_view
    from pdmpolicy.policyset.engine import evaluate
    from pdmpolicy.reports import ReportInput

    project = load(args)
    base = (
        load_base(project.root, args.base, args.environments, project.policy_set.toolchain)
        if args.base
        else None
    )
    findings = evaluate(project, today(args), base)
    sections = (_base_diff(args, project, base, findings),) if base is not None else ()
    report = ReportInput(
        findings=tuple(findings),
        cases=environment_cases(project),
        views=project.views,
        pipelines=tuple(pipeline_view(view) for view in project.views),
        waivers=project.policy_set.waivers,
        today=today(args),
        link_base=args.link_base,
        extra_sections=sections,
        policy_set=project.policy_set,
    )
    write_reports(args, report)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK
