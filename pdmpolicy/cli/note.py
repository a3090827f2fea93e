"""`pdmpolicy note FILE`: create or update the one pdmpolicy note on a merge request."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


TOKEN_VARIABLE = "PDMPOLICY_GITLAB_TOKEN"  # noqa: S105 - a variable name, not a secret
TIMEOUT = 10.0
"""The defaults of `pdmpolicy.reports.mrnote`, known without importing it (and through it the
reports) for every command; tests/test_startup.py keeps them equal."""


def _seconds(text: str) -> float:
    from pdmpolicy.reports import mrnote

    return mrnote.positive_seconds(text)


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
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
        default=TOKEN_VARIABLE,
        metavar="NAME",
        help="environment variable holding a token with the api scope (default: "
        f"{TOKEN_VARIABLE}); the token itself is never taken on the command "
        "line nor printed",
    )
    note.add_argument(
        "--timeout",
        type=_seconds,
        default=TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each answer from GitLab (default: {TIMEOUT:g})",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.reports import mrnote

    return mrnote.run(
        args.file,
        gitlab_url=args.gitlab_url,
        project=args.project,
        mr=args.mr,
        token_variable=args.token_variable,
        timeout=args.timeout,
    )
