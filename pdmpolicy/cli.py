"""The `pdmpolicy` command: argument parsing, running, exit codes.

Exit codes (SPEC.md): 0 no error-level finding; 1 error-level findings, drift or a violated
invariant; 2 invalid input or usage. Bad input is printed as `file:line:col: error: ...`;
anything else that escapes is a bug and is shown as one, with its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from pdmpolicy import __version__, mrnote
from pdmpolicy.analysis import analyse
from pdmpolicy.atomic import write_files
from pdmpolicy.config import load_policy_set
from pdmpolicy.diff import behaviour_diff
from pdmpolicy.engine import evaluate, evaluate_manifests, evaluate_pipelines
from pdmpolicy.errors import InputError, Problem, UsageError
from pdmpolicy.findings import Finding, counts
from pdmpolicy.gitlab import load_pipelines
from pdmpolicy.graph import explain
from pdmpolicy.manifests.model import ManifestFile
from pdmpolicy.manifests.read import STDIN, read_manifests
from pdmpolicy.manifests.target import assign
from pdmpolicy.pipeline import Pipeline
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import EnvironmentView, PipelineView
from pdmpolicy.policydocs import policy_markdown
from pdmpolicy.project import Project, load_base, load_project
from pdmpolicy.render import drift, rendered_files, write_all
from pdmpolicy.reports import REPORTERS, Case, ReportInput
from pdmpolicy.reports.manifests import manifests_section
from pdmpolicy.schema import json_schema

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _report_spec(text: str) -> tuple[str, Path]:
    kind, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected FORMAT=FILE, got {text!r}")
    if kind not in REPORTERS:
        raise argparse.ArgumentTypeError(
            f"unknown report format {kind!r} (valid: {', '.join(sorted(REPORTERS))})"
        )
    return kind, Path(path)


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=sorted(REPORTERS), default="text", help="report format (default: text)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE instead of standard output",
    )
    parser.add_argument(
        "--report",
        action="append",
        type=_report_spec,
        default=[],
        metavar="FORMAT=FILE",
        help="also write a report in FORMAT to FILE; repeatable (formats: "
        + ", ".join(sorted(REPORTERS))
        + ")",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdmpolicy",
        description="Check post-deployment migration environments against the policy set, "
        "and render the GitLab CI pipelines that run them. Run from the repository root.",
        epilog="exit codes: 0 no error-level finding; 1 error-level findings or drift; "
        "2 invalid input or usage",
    )
    parser.add_argument("--version", action="version", version=f"pdmpolicy {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--environments",
        type=Path,
        default=Path("environments"),
        metavar="DIR",
        help="environment files (default: environments/)",
    )
    common.add_argument(
        "--policies",
        type=Path,
        default=Path("policies"),
        metavar="DIR",
        help="policy set and waivers (default: policies/)",
    )
    common.add_argument(
        "--today",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the date for expiry and soak rules (default: today, UTC)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        parents=[common],
        help="validate and evaluate every policy",
        description="Validate the environment files and evaluate every policy on the "
        "pipelines that would be rendered.",
    )
    _report_options(check)
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

    explain_parser = commands.add_parser(
        "explain",
        parents=[common],
        help="job order, PDM effects and a Mermaid graph",
        description="Show the order of an environment's jobs, what each does to PDMs, and a "
        "Mermaid graph.",
    )
    explain_parser.add_argument("environment", metavar="ENV")

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
    _report_options(manifests)

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
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the date for date rules (default: today, UTC)",
    )
    _report_options(verify)

    commands.add_parser(
        "schema",
        help="JSON Schema of environment files, for editors",
        description="Print the JSON Schema of environments/<name>.yml.",
    )

    docs = commands.add_parser(
        "policies",
        help="list the built-in policies, or document one",
        description="List the built-in policies, or print the documentation of one.",
    )
    docs.add_argument("name", nargs="?", metavar="POLICY")

    note = commands.add_parser(
        "note",
        help="create or update the pdmpolicy note on a GitLab merge request",
        description="Post FILE (written by `pdmpolicy check --report markdown=FILE`) as the "
        "pdmpolicy note of a merge request, through GitLab's Notes API: the note this token's "
        "user posted before (found by its first line, <!-- pdmpolicy-note -->) is updated, "
        "otherwise one is created; never a second one. The defaults come from GitLab CI's "
        "predefined variables, so in a merge request pipeline `pdmpolicy note FILE` is enough. "
        "Needs python-gitlab: pip install 'pdmpolicy[mr]'.",
        epilog="exit codes: 0 note created, updated or already up to date; 1 GitLab refused "
        "or could not be reached (401, 403, 404, timeout, no connection, malformed answer); "
        "2 usage or configuration (no token, no merge request IID, not a pdmpolicy note)",
    )
    note.add_argument("file", type=Path, metavar="FILE", help="the Markdown note to post")
    note.add_argument(
        "--gitlab-url",
        metavar="URL",
        help="GitLab's base URL, e.g. https://gitlab.example.com (default: $CI_SERVER_URL)",
    )
    note.add_argument(
        "--project",
        metavar="ID",
        help="project id or full path group/project (default: $CI_MERGE_REQUEST_PROJECT_ID, "
        "else $CI_PROJECT_ID)",
    )
    note.add_argument(
        "--mr",
        metavar="IID",
        help="the merge request's IID, the N of !N (default: $CI_MERGE_REQUEST_IID)",
    )
    note.add_argument(
        "--token-variable",
        default=mrnote.DEFAULT_TOKEN_VARIABLE,
        metavar="NAME",
        help="environment variable holding a token with the api scope (default: "
        f"{mrnote.DEFAULT_TOKEN_VARIABLE}); the token itself is never taken on the command "
        "line nor printed",
    )
    note.add_argument(
        "--timeout",
        type=mrnote.positive_seconds,
        default=mrnote.DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each answer from GitLab (default: {mrnote.DEFAULT_TIMEOUT:g})",
    )
    return parser


def _load(args: argparse.Namespace) -> Project:
    return load_project(Path.cwd(), args.environments, args.policies)


def _today(args: argparse.Namespace) -> dt.date:
    return args.today or dt.datetime.now(dt.UTC).date()


def _has_errors(findings: list[Finding]) -> bool:
    return counts(findings)["errors"] > 0


def _cases(project: Project) -> tuple[Case, ...]:
    """Every policy x environment evaluated, so passing policies show in JUnit."""
    cases = []
    for name in sorted(REGISTRY):
        setting = project.policy_set.settings[name]
        if setting.severity == "off" or "environments" not in REGISTRY[name].layers:
            continue
        for view in project.views:
            if setting.in_scope(view.name):
                cases.append(Case(name, view.name, view.environment.path))
    return tuple(cases)


def _report_input(
    args: argparse.Namespace,
    project: Project,
    findings: list[Finding],
    extra_sections: tuple[str, ...] = (),
) -> ReportInput:
    return ReportInput(
        findings=tuple(findings),
        cases=_cases(project),
        views=project.views,
        waivers=project.policy_set.waivers,
        today=_today(args),
        link_base=getattr(args, "link_base", None),
        extra_sections=extra_sections,
    )


def _base_diff(
    args: argparse.Namespace,
    project: Project,
    base: tuple[EnvironmentView, ...],
    findings: list[Finding],
) -> str:
    """The behavioural diff against the base, with the policies evaluated there too."""
    base_project = Project(project.root, base, project.policy_set)
    try:
        base_findings = evaluate(base_project, _today(args))
    except InputError:
        # The policy set may scope a policy to an environment the base does not have yet;
        # the diff then lists current failures as new rather than failing the run.
        base_findings = []
    return behaviour_diff(base, project.views, base_findings, findings, args.base)


def _check(args: argparse.Namespace) -> int:
    project = _load(args)
    base = load_base(project.root, args.base, args.environments) if args.base else None
    findings = evaluate(project, _today(args), base)
    sections = (_base_diff(args, project, base, findings),) if base is not None else ()
    _write_reports(args, _report_input(args, project, findings, sections))
    return EXIT_FINDINGS if _has_errors(findings) else EXIT_OK


def _write_reports(args: argparse.Namespace, report: ReportInput) -> None:
    """`--format` to standard output (or `--output`), and every `--report FORMAT=FILE`."""
    outputs = {path: REPORTERS[kind](report) for kind, path in args.report}
    main_report = REPORTERS[args.format](report)
    if args.output:
        outputs[args.output] = main_report
    write_files(outputs)
    if not args.output:
        sys.stdout.write(main_report)


def _manifest_cases(project: Project, files: tuple[ManifestFile, ...]) -> tuple[Case, ...]:
    """Every manifest policy x environment (or file, where none applies) checked."""
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


def _manifests(args: argparse.Namespace) -> int:
    project = _load(args)
    stdin = sys.stdin.buffer if STDIN in args.paths else io.BytesIO()
    sources = read_manifests(args.paths, project.root, stdin)
    files = assign(sources, project.environments, args.environment)
    findings = evaluate_manifests(files, project, _today(args))
    report = ReportInput(
        findings=tuple(findings),
        cases=_manifest_cases(project, files),
        waivers=project.policy_set.waivers,
        today=_today(args),
        title="pdmpolicy manifests",
        blocked="The migrations Job must not run as rendered.",
        extra_sections=(manifests_section(files),),
    )
    _write_reports(args, report)
    return EXIT_FINDINGS if _has_errors(findings) else EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    root = Path.cwd()
    policies = args.policies
    if policies is None:
        policies = Path("policies")
    elif not policies.is_dir():
        raise UsageError(f"--policies {policies} is not a directory")
    policy_set = load_policy_set(policies, root, REGISTRY)
    pipelines: dict[str, Pipeline] = {}
    problems: list[Problem] = []
    for file in args.files:
        try:
            for pipeline in load_pipelines(file, root):
                pipelines.setdefault(pipeline.path, pipeline)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    views = tuple(PipelineView(p, analyse(p)) for p in pipelines.values())
    findings = evaluate_pipelines(views, policy_set, _today(args))
    cases = tuple(
        Case(name, path, path)
        for name in sorted(REGISTRY)
        if policy_set.settings[name].severity != "off" and "pipelines" in REGISTRY[name].layers
        for path in pipelines
    )
    report = ReportInput(
        findings=tuple(findings),
        cases=cases,
        today=_today(args),
        title="pdmpolicy verify",
        blocked="This pipeline must not run PDMs as written.",
    )
    _write_reports(args, report)
    return EXIT_FINDINGS if _has_errors(findings) else EXIT_OK


def _render(args: argparse.Namespace) -> int:
    project = _load(args)
    findings = evaluate(project, _today(args))
    files = rendered_files(project)
    if _has_errors(findings):
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


def _explain(args: argparse.Namespace) -> int:
    project = _load(args)
    for view in project.views:
        if view.name == args.environment:
            sys.stdout.write(explain(view))
            return EXIT_OK
    known = ", ".join(view.name for view in project.views)
    raise UsageError(f"no environment '{args.environment}' (known: {known})")


def _policies(args: argparse.Namespace) -> int:
    if args.name is None:
        width = max(len(name) for name in REGISTRY)
        for name in sorted(REGISTRY):
            print(f"{name:<{width}}  {REGISTRY[name].summary}")
        return EXIT_OK
    if args.name not in REGISTRY:
        raise UsageError(f"unknown policy '{args.name}' (valid: {', '.join(sorted(REGISTRY))})")
    sys.stdout.write(policy_markdown(REGISTRY[args.name]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "render":
            return _render(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "manifests":
            return _manifests(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "schema":
            print(json.dumps(json_schema(), indent=2))
            return EXIT_OK
        if args.command == "note":
            return mrnote.run(
                args.file,
                gitlab_url=args.gitlab_url,
                project=args.project,
                mr=args.mr,
                token_variable=args.token_variable,
                timeout=args.timeout,
            )
        return _policies(args)
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"pdmpolicy: {len(exc.problems)} input error(s); nothing was checked", file=sys.stderr
        )
        return EXIT_INPUT
    except UsageError as exc:
        print(f"pdmpolicy: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        # Writing failed (disk full, permissions): every output is staged first, so
        # nothing was replaced.
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"pdmpolicy: error: cannot write{where}: {exc.strerror or exc}; no file was changed",
            file=sys.stderr,
        )
        return EXIT_INPUT
    except Exception:
        print(
            "pdmpolicy: internal error (a bug in pdmpolicy; please report it with the "
            "input and this traceback):",
            file=sys.stderr,
        )
        traceback.print_exc()
        return 3
