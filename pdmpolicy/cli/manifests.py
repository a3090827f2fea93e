"""`pdmpolicy manifests PATH...`: the manifest-* policies on rendered Kubernetes YAML."""

from __future__ import annotations

import argparse
import io
import sys
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    has_errors,
    load,
    report_options,
    today,
    write_reports,
)

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers
    from pdmpolicy.environments.project import Project
    from pdmpolicy.manifests.model import ManifestFile
    from pdmpolicy.reports import Case


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    manifests = commands.add_parser(
        "manifests",
        parents=[common],
        help="check rendered Kubernetes manifests (the dry-run output)",
        description="Check rendered Kubernetes manifests (helm template / helmfile template "
        "output, or a dry run saved by the rendered pipeline) against the manifest-* "
        "policies: the migrations Job carries no SKIP_POST_DEPLOYMENT_MIGRATIONS, is not "
        "retried, has a deadline no shorter than the CI timeout, and is the only one of its "
        "database. docs/manifests.md says how the Job and each file's environment are found.",
    )
    manifests.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest files, directories (every *.yaml and *.yml below, sorted), or - for "
        "standard input",
    )
    manifests.add_argument(
        "--environment",
        metavar="ENV",
        help="the environment every PATH was rendered for (default: inferred per file from "
        "its name, see docs/manifests.md)",
    )
    report_options(manifests)


def _cases(project: Project, files: tuple[ManifestFile, ...]) -> tuple[Case, ...]:
    """Every manifest policy x environment (or file, where none applies) checked."""
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.reports import Case

    cases = []
    for name in sorted(REGISTRY):
        setting = project.policy_set.settings[name]
        if setting.severity == "off" or "manifests" not in REGISTRY[name].layers:
            continue
        subjects: dict[str, str] = {}
        for file in files:
            if file.environment is None or setting.in_scope(file.environment):
                subjects.setdefault(file.environment or file.path, file.path)
        cases += [Case(name, subject, path) for subject, path in subjects.items()]
    return tuple(cases)


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.manifests.read import STDIN, read_manifests
    from pdmpolicy.manifests.target import assign
    from pdmpolicy.policyset.engine import evaluate_manifests
    from pdmpolicy.reports import ReportInput
    from pdmpolicy.reports.manifests import manifests_section

    project = load(args)
    stdin = sys.stdin.buffer if STDIN in args.paths else io.BytesIO()
    sources = read_manifests(args.paths, project.root, stdin)
    files = assign(sources, project.environments, args.environment)
    findings = evaluate_manifests(files, project, today(args))
    report = ReportInput(
        findings=tuple(findings),
        cases=_cases(project, files),
        waivers=project.policy_set.waivers,
        today=today(args),
        title="pdmpolicy manifests",
        blocked="The migrations Job must not run as rendered.",
        extra_sections=(manifests_section(files),),
    )
    write_reports(args, report)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK
