"""What several commands share: options, loading the project, the date, writing reports."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

    from pdmpolicy.core.findings import Finding
    from pdmpolicy.environments.project import Project
    from pdmpolicy.reports import Case, ReportInput

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2

REPORT_FORMATS: tuple[str, ...] = ("codequality", "json", "junit", "markdown", "text")
"""The names of `pdmpolicy.reports.REPORTERS`, known without importing every reporter (a
test keeps the two equal)."""


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _report_spec(text: str) -> tuple[str, Path]:
    kind, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected FORMAT=FILE, got {text!r}")
    if kind not in REPORT_FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown report format {kind!r} (valid: {', '.join(REPORT_FORMATS)})"
        )
    return kind, Path(path)


def report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=REPORT_FORMATS, default="text", help="report format (default: text)"
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
        + ", ".join(REPORT_FORMATS)
        + ")",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="text format: only the first line of each finding (no source, no hint) and "
        "the summary",
    )


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal only; NO_COLOR (no-color.org) turns it off, FORCE_COLOR on."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and environ.get("TERM") != "dumb"


def _source_reader() -> Callable[[str], list[str] | None]:
    """A finding's file, read once, for the text report's source lines."""
    cache: dict[str, list[str] | None] = {}

    def lines(path: str) -> list[str] | None:
        if path not in cache:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except (OSError, ValueError):
                cache[path] = None
            else:
                cache[path] = text.splitlines()
        return cache[path]

    return lines


def common_options() -> argparse.ArgumentParser:
    """--environments, --policies, --today: the options of every command that reads a project."""
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
        type=parse_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the date for expiry and soak rules (default: today, UTC)",
    )
    return common


def load(args: argparse.Namespace) -> Project:
    from pdmpolicy.environments.project import load_project

    return load_project(Path.cwd(), args.environments, args.policies)


def today(args: argparse.Namespace) -> dt.date:
    date: dt.date = args.today or dt.datetime.now(dt.UTC).date()
    return date


def has_errors(findings: list[Finding]) -> bool:
    from pdmpolicy.core.findings import counts

    return counts(findings)["errors"] > 0


def environment_cases(project: Project) -> tuple[Case, ...]:
    """Every policy x environment evaluated, so passing policies show in JUnit."""
    from pdmpolicy.policies import REGISTRY
    from pdmpolicy.reports import Case

    cases = []
    for name in sorted(REGISTRY):
        setting = project.policy_set.settings[name]
        if setting.severity == "off" or "environments" not in REGISTRY[name].layers:
            continue
        for view in project.views:
            if setting.in_scope(view.name):
                cases.append(Case(name, view.name, view.environment.path))
    return tuple(cases)


def write_reports(args: argparse.Namespace, report: ReportInput) -> None:
    """`--format` to standard output (or `--output`), and every `--report FORMAT=FILE`."""
    from pdmpolicy.reports import REPORTERS
    from pdmpolicy.reports.text import TextStyle, render_text

    outputs = {path: REPORTERS[kind](report) for kind, path in args.report}
    if args.format == "text":
        # For a person: the source lines, and colour when they land on a terminal.
        style = TextStyle(
            colour=not args.output and use_colour(sys.stdout, os.environ),
            quiet=args.quiet,
            sources=None if args.quiet else _source_reader(),
        )
        main_report = render_text(report, style)
    else:
        main_report = REPORTERS[args.format](report)
    if args.output:
        outputs[args.output] = main_report
    if outputs:
        from pdmpolicy.output.atomic import write_files

        write_files(outputs)
    if not args.output:
        sys.stdout.write(main_report)
