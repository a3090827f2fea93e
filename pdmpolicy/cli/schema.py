"""`pdmpolicy schema [environment|policy-set]`: a JSON Schema of an input format, for editors."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pdmpolicy.cli.common import EXIT_OK

if TYPE_CHECKING:
    from pdmpolicy.cli.common import Subparsers


def add_parser(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    schema = commands.add_parser(
        "schema",
        help="JSON Schema of environment files (or policy set files), for editors",
        description="Print the JSON Schema of environments/<name>.yml, or with 'policy-set' "
        "of policies/*.yml (with the installed plugins' policies). The repository commits "
        "both in schemas/; see docs/environment-files.md.",
    )
    schema.add_argument(
        "kind",
        nargs="?",
        choices=("environment", "policy-set"),
        default="environment",
        help="which format (default: environment)",
    )


def run(args: argparse.Namespace) -> int:
    from pdmpolicy.docgen.formats import environment_json_schema, policy_set_json_schema

    if args.kind == "policy-set":
        from pdmpolicy.policies import REGISTRY

        schema = policy_set_json_schema(REGISTRY)
    else:
        schema = environment_json_schema()
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return EXIT_OK
