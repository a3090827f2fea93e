"""The `pdmpolicy` command: argument parsing, dispatch to one module per command, exit codes.

Exit codes: 0 no error-level finding; 1 error-level findings, drift or a violated invariant;
2 invalid input or usage. Bad input is printed as `file:line:col: error: ...`; anything else
that escapes is a bug and is shown as one, with its traceback.

Each command lives in its own module (`pdmpolicy/cli/<command>.py`) with `add_parser` and
`run`; a module imports what its command needs inside `run`, so starting one command never
pays for the others.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType

from pdmpolicy import __version__
from pdmpolicy.cli.common import EXIT_INPUT, EXIT_OK, common_options
from pdmpolicy.core.errors import InputError, UsageError

COMMANDS: tuple[str, ...] = (
    "check",
    "render",
    "status",
    "advance",
    "init",
    "explain",
    "manifests",
    "verify",
    "schema",
    "policies",
    "toolchain",
    "note",
)
"""Command names in the order `--help` lists them; each is a module of this package."""


def _command(name: str) -> ModuleType:
    return import_module(f"pdmpolicy.cli.{name}")


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. When `argv` starts with a command's name, only that command's
    options are declared: building every command's parser (and importing every command's
    module) is a tenth of a `check` run. The parse is the same: options before the command
    belong to `pdmpolicy` itself, the usage line names `COMMAND`, not the list, and a
    missing or unknown command builds them all for the message and `--help`."""
    parser = argparse.ArgumentParser(
        prog="pdmpolicy",
        description="Check post-deployment migration environments against the policy set, "
        "and render the GitLab CI pipelines that run them. Run from the repository root.",
        epilog="exit codes: 0 no error-level finding; 1 error-level findings or drift; "
        "2 invalid input or usage",
    )
    parser.add_argument("--version", action="version", version=f"pdmpolicy {__version__}")
    common = common_options()
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = argv[0] if argv else None
    for name in (wanted,) if wanted in COMMANDS else COMMANDS:
        _command(name).add_parser(commands, common)
    return parser


def input_errors_json(error: InputError) -> str:
    """Input errors as the JSON object `--format json` writes (docs/policies.md):
    `{"errors": [{path, line, column, message, hint}], "findings": [], "summary": {...}}`."""
    import json

    errors = [
        {
            "path": problem.loc.path,
            "line": problem.loc.line,
            "column": problem.loc.column,
            "message": problem.message,
            "hint": problem.hint,
        }
        for problem in error.problems
    ]
    document = {
        "errors": errors,
        "findings": [],
        "summary": {"errors": len(errors), "warnings": 0, "waived": 0},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _input_errors_as_json(args: argparse.Namespace, error: InputError) -> None:
    """With `--format json` (standard output, or `--output`) and each `--report json=FILE`,
    the input errors are written as JSON too, so a machine reading the report learns why
    there is nothing else in it. Other formats stay silent: the text on standard error
    says it."""
    document = input_errors_json(error)
    outputs = {path: document for kind, path in getattr(args, "report", []) if kind == "json"}
    to_stdout = getattr(args, "format", None) == "json"
    if to_stdout and getattr(args, "output", None):
        outputs[args.output] = document
        to_stdout = False
    if outputs:
        from pdmpolicy.output.atomic import write_files

        write_files(outputs)
    if to_stdout:
        sys.stdout.write(document)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = _parser(argv).parse_args(argv)
    try:
        result: int = _command(args.command).run(args)
        return result
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"pdmpolicy: {len(exc.problems)} input error(s); nothing was checked", file=sys.stderr
        )
        _input_errors_as_json(args, exc)
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
        import traceback

        print(
            "pdmpolicy: internal error (a bug in pdmpolicy; please report it with the "
            "input and this traceback):",
            file=sys.stderr,
        )
        traceback.print_exc()
        return 3
