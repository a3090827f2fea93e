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
    from pdmpolicy.gitlab.api import CiLint
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
    gitlab = verify.add_argument_group(
        "reading includes through GitLab's API (optional; no network without --gitlab-url)"
    )
    gitlab.add_argument(
        "--gitlab-url",
        metavar="URL",
        help="GitLab's base URL, e.g. https://gitlab.example.com: an include that is not in "
        "this repository and has no copy under --includes is read through GitLab's CI Lint "
        "API (docs/gitlab-loader.md)",
    )
    gitlab.add_argument(
        "--gitlab-project",
        metavar="ID",
        help="project id or full path group/project whose context GitLab merges the "
        "includes in (required with --gitlab-url)",
    )
    gitlab.add_argument(
        "--gitlab-token-variable",
        default=TOKEN_VARIABLE,
        metavar="NAME",
        help=f"environment variable holding a token with the api or read_api scope "
        f"(default: {TOKEN_VARIABLE}); the token is never taken on the command line",
    )
    gitlab.add_argument(
        "--gitlab-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="where GitLab's answers are kept, one file per include (default: "
        "$XDG_CACHE_HOME/pdmpolicy/gitlab-ci-lint, else ~/.cache/pdmpolicy/gitlab-ci-lint)",
    )
    gitlab.add_argument(
        "--gitlab-refresh",
        action="store_true",
        help="ask GitLab again for includes whose answer is cached",
    )
    report_options(verify)


TOKEN_VARIABLE = "PDMPOLICY_GITLAB_TOKEN"  # noqa: S105 - a variable name, not a secret
"""`gitlab.api.DEFAULT_TOKEN_VARIABLE`, known without importing it."""


def _api(args: argparse.Namespace) -> CiLint | None:
    """GitLab's CI Lint API when --gitlab-url is given."""
    import os

    from pdmpolicy.gitlab.api import CiLint, default_cache

    given = [
        name
        for name, value in (
            ("--gitlab-project", args.gitlab_project),
            ("--gitlab-cache", args.gitlab_cache),
            ("--gitlab-refresh", args.gitlab_refresh or None),
        )
        if value is not None
    ]
    if args.gitlab_url is None:
        if given:
            raise UsageError(f"{given[0]} is only used with --gitlab-url")
        return None
    if not args.gitlab_url.startswith(("https://", "http://")):
        raise UsageError(f"--gitlab-url {args.gitlab_url} is not an http(s) URL")
    if not args.gitlab_project:
        raise UsageError("--gitlab-url needs --gitlab-project (the project id or path)")
    token = os.environ.get(args.gitlab_token_variable, "").strip()
    if not token:
        raise UsageError(
            f"no GitLab token: set the environment variable {args.gitlab_token_variable} to a "
            "token with the api or read_api scope (or name another with "
            "--gitlab-token-variable)"
        )
    if not all(33 <= ord(char) <= 126 for char in token):
        raise UsageError(
            f"the token in {args.gitlab_token_variable} contains spaces or characters a "
            "GitLab token never has"
        )
    return CiLint(
        url=args.gitlab_url.rstrip("/"),
        project=args.gitlab_project,
        token=token,
        token_variable=args.gitlab_token_variable,
        cache=args.gitlab_cache or default_cache(),
        refresh=args.gitlab_refresh,
    )


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
    api = _api(args)
    pipelines: dict[str, Pipeline] = {}
    problems: list[Problem] = []
    for file in args.files:
        try:
            for pipeline in load_pipelines(file, root, args.includes, api):
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
