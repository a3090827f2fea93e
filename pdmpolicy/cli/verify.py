"""`pdmpolicy verify FILE...`: prove the execution invariants on any GitLab CI file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    has_errors,
    parse_date,
    report_options,
    today,
    write_reports,
)
from pdmpolicy.core.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pdmpolicy.cli.common import Subparsers
    from pdmpolicy.core.findings import Finding
    from pdmpolicy.gitlab.pipeline import Pipeline


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    verify = commands.add_parser(
        "verify",
        help="prove the execution invariants on GitLab CI files",
        description="Prove pdm-at-most-once, and check the job-level policies "
        "(no-auto-deploy-variables, skip-flag-false, pdm-no-auto-retry, "
        "pdm-not-interruptible, pdm-locked, ...), on any GitLab CI file, emitted or "
        "hand-written, and on the child pipelines it triggers. A violation prints a "
        "counterexample: the shortest sequence of job events that breaks it.",
    )
    verify.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="GitLab CI files (child pipelines they include are followed)",
    )
    verify.add_argument(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="policy set for severities and options (default: policies/ "
        "when it exists, else the built-in defaults)",
    )
    verify.add_argument(
        "--today",
        type=parse_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the date for date rules (default: today, UTC)",
    )
    verify.add_argument(
        "--includes",
        type=Path,
        default=None,
        metavar="DIR",
        help="copies of includes that are not in this repository: DIR/templates/<name>, "
        "DIR/projects/<group/project>/<file>, DIR/remote/<host>/<path>, "
        "DIR/components/<host>/<path>.yml; an include without a copy is reported as not "
        "read (docs/gitlab-loader.md)",
    )
    report_options(verify)


INPUT_CHECK = "gitlab-ci-input"
"""The name warnings about the CI files themselves carry in reports (they come from reading
the files, not from a policy): includes that were not read, duplicated keys."""


def _input_warnings(pipelines: Iterable[Pipeline]) -> list[Finding]:
    from pdmpolicy.core.findings import Finding

    return [
        Finding(
            policy=INPUT_CHECK,
            severity="warning",
            message=warning.what,
            loc=warning.loc,
            hint="vendor the included file into the repository to have it read"
            if "is not read" in warning.what
            else "",
            subject=f"{INPUT_CHECK}:{warning.what}",
        )
        for pipeline in pipelines
        for warning in pipeline.warnings
    ]


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.core.errors import InputError, Problem
    from pdmpolicy.core.findings import Finding
    from pdmpolicy.gitlab import load_pipelines
    from pdmpolicy.gitlab.analysis import analyse
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.policies.base import PipelineView
    from pdmpolicy.policyset.config import load_policy_set
    from pdmpolicy.policyset.engine import evaluate_pipelines
    from pdmpolicy.reports import Case, ReportInput

    root = Path.cwd()
    policies = args.policies
    if policies is None:
        policies = Path("policies")
    elif not policies.is_dir():
        raise UsageError(f"--policies {policies} is not a directory")
    policy_set = load_policy_set(policies, root, REGISTRY)
    if args.includes is not None and not args.includes.is_dir():
        raise UsageError(f"--includes {args.includes} is not a directory")
    pipelines: dict[str, Pipeline] = {}
    problems: list[Problem] = []
    for file in args.files:
        try:
            for pipeline in load_pipelines(file, root, args.includes):
                pipelines.setdefault(pipeline.path, pipeline)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    views = tuple(
        PipelineView(p, analyse(p, policy_set.toolchain, root=root)) for p in pipelines.values()
    )
    findings = evaluate_pipelines(views, policy_set, today(args))
    findings = sorted([*findings, *_input_warnings(pipelines.values())], key=Finding.sort_key)
    cases = tuple(
        Case(name, path, path)
        for name in sorted(REGISTRY)
        if policy_set.settings[name].severity != "off" and "pipelines" in REGISTRY[name].layers
        for path in pipelines
    )
    report = ReportInput(
        findings=tuple(findings),
        cases=cases,
        pipelines=views,
        today=today(args),
        title="pdmpolicy verify",
        blocked="This pipeline must not run PDMs as written.",
    )
    write_reports(args, report)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK
