"""`pdmpolicy schema`: the JSON Schema of environment files, for editors."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    commands.add_parser(
        "schema",
        help="JSON Schema of environment files, for editors",
        description="Print the JSON Schema of environments/<name>.yml.",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK
