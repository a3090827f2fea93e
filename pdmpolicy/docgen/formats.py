"""The input formats described for people and editors: docs/ reference tables and JSON Schemas.

The shape of an environment file is `schema.ENVIRONMENT_SCHEMA`, the shape of a policy set is
what `config.load_policy_set` accepts plus the registry's policies and options; this module
adds what each key means (`ENVIRONMENT_KEYS`, one sentence a key) and derives from them:

- the JSON Schemas in `schemas/` (editors: completion, hover text, validation as you type),
- the reference sections of docs/environment-files.md and docs/policy-set.md, and the JSON
  report's shape in docs/reports.md.

`python -m pdmpolicy.docgen.formats` rewrites all of them; `tests/test_formats.py` fails when a
committed file is out of date or a key has no description.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pdmpolicy.core import names
from pdmpolicy.policies.base import Option, Policy

ENVIRONMENT_SCHEMA_PATH = "schemas/environment.schema.json"
POLICY_SET_SCHEMA_PATH = "schemas/policy-set.schema.json"

EDITOR_LINE = "# yaml-language-server: $schema=../{path}"
"""The first line of an environment or policy set file that tells editors (VS Code's YAML
extension, anything using yaml-language-server) which schema to use: relative to the file,
so it works in a clone without network."""

ENVIRONMENT_KEYS: dict[str, str] = {
    "environment": "The environment's name; equals the file's name without `.yml`.",
    "database": "The database the environment's PDMs change. Environments that share a "
    "database (a canary and its main stage) name the same one: PDMs run once per database.",
    "upstream": "The environment that must lead this one through the rollout steps "
    "(production names staging), or `null`.",
    "rollout": "Where the environment is in the move of PDMs from the VMs to Kubernetes.",
    "rollout.step": "The rollout step; it fixes the job graph the environment must have "
    "(see Rollout steps).",
    "rollout.since": "The day the step was entered, `YYYY-MM-DD`: the soak clock of "
    "`promotion-order` and `one-step-at-a-time`.",
    "variables": "Variables of the rendered pipeline, at its top level. Jobs that execute "
    "PDMs, or may (effect unknown), do not inherit them unless `inherit_variables` says so.",
    "variables.<NAME>": 'A variable\'s value: always a string (quote `"true"`, `"false"`, '
    "numbers).",
    "jobs": "The environment's jobs, keyed by GitLab job name.",
    "jobs.<job>": "One job of the rendered child pipeline.",
    "jobs.<job>.runner": "Where it runs: `vm` (the deploy VMs, through the deployer's "
    "tooling), `kubernetes` (k-ctl, with `kctl:`), `generic` (its own `script:`).",
    "jobs.<job>.stage": "The GitLab stage (default `deploy`).",
    "jobs.<job>.needs": "Jobs of this file that must finish first.",
    "jobs.<job>.when": "GitLab's `when:` (default `on_success`).",
    "jobs.<job>.retry": "Automatic retries, 0 to 2 (default 0). A PDM job must not retry.",
    "jobs.<job>.allow_failure": "Whether a failure lets the pipeline go on (default `false`, "
    "also for manual jobs).",
    "jobs.<job>.interruptible": "Whether a newer pipeline may cancel it midway (default `false`).",
    "jobs.<job>.resource_group": "The GitLab resource group that serialises it with other "
    "pipelines (default `<database>-postdeploy-migrations`).",
    "jobs.<job>.timeout": "The job's timeout, such as `10h` or `3h 30m` (default: the project's).",
    "jobs.<job>.variables": "The job's own variables.",
    "jobs.<job>.variables.<NAME>": "A variable's value: always a string.",
    "jobs.<job>.inherit_variables": "Which top-level variables the job inherits: `true`, "
    "`false` or a list of names (default: all, except for jobs that execute PDMs or whose "
    "effect is unknown: none).",
    "jobs.<job>.kctl": "How a `kubernetes` job calls k-ctl.",
    "jobs.<job>.kctl.environment": "k-ctl's `-e`: the environment whose cluster is changed.",
    "jobs.<job>.kctl.stage": "k-ctl's stage: `main` or `cny` (`-s cny`); default `main`.",
    "jobs.<job>.kctl.action": "What k-ctl does: `upgrade` (deploys, and runs PDMs when not "
    "skipped), `template` or `list`.",
    "jobs.<job>.kctl.dry_run": "k-ctl's `-D`: render and validate, change nothing "
    "(default `false`).",
    "jobs.<job>.kctl.wait_for_jobs": "Whether the CI job ends only when the migrations Job "
    "has finished (default `false`).",
    "jobs.<job>.kctl.variables": "Variables given to the k-ctl process, such as "
    '`SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"`.',
    "jobs.<job>.kctl.variables.<NAME>": "A variable's value: always a string.",
    "jobs.<job>.script": "The commands of a `generic` job, one line each; pdmpolicy reads "
    "them to decide what the job does to PDMs.",
    "jobs.<job>.effect": "For a `generic` job only: what it does to PDMs, declared (`none`, "
    "`dry-run`, `executor`) where the analysis cannot see it; a declaration never lowers "
    "what the analysis sees (docs/effects.md).",
}
"""What each key of an environment file means, by its path (`<job>`, `<NAME>`: any key)."""

_TYPE_WORDS = {
    "string": "string",
    "boolean": "boolean",
    "count": "whole number",
    "dict": "mapping",
    "list": "list",
    "date": "date",
}

# Where a mapping's keys are free (job names, variable names), how the path spells them.
_WILDCARDS = {"jobs": "<job>"}


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every key path of a cerberus schema with its rules, in schema order."""
    for key, rules in schema.items():
        here = _child(path, key)
        yield here, rules
        if "schema" in rules and "dict" in _kinds(rules):
            yield from _walk(rules["schema"], here)
        if "valuesrules" in rules:
            inner = _child(here, _WILDCARDS.get(key, "<NAME>"))
            values = rules["valuesrules"]
            yield inner, values
            if "schema" in values and "dict" in _kinds(values):
                yield from _walk(values["schema"], inner)


def _kinds(rules: Mapping[str, Any]) -> list[str]:
    kinds = rules.get("type")
    return kinds if isinstance(kinds, list) else [kinds] if kinds else []


def environment_key_paths() -> list[str]:
    from pdmpolicy.environments.schema import ENVIRONMENT_SCHEMA

    return [path for path, _ in _walk(ENVIRONMENT_SCHEMA)]


def _describe_json(schema: dict[str, Any], rules: Mapping[str, Any], path: str) -> None:
    """Add `description` to the JSON Schema node of `path`, and to its children."""
    schema["description"] = ENVIRONMENT_KEYS[path]
    properties = schema.get("properties", {})
    for key, node in properties.items():
        _describe_json(node, rules["schema"][key], _child(path, key))
    if "valuesrules" in rules and isinstance(schema.get("additionalProperties"), dict):
        key = _WILDCARDS.get(path.rsplit(".", 1)[-1], "<NAME>")
        _describe_json(schema["additionalProperties"], rules["valuesrules"], _child(path, key))


def environment_json_schema() -> dict[str, Any]:
    """The JSON Schema of environment files, each key described (`pdmpolicy schema`)."""
    from pdmpolicy.environments.schema import ENVIRONMENT_SCHEMA, json_schema

    schema = json_schema()
    for key, node in schema["properties"].items():
        _describe_json(node, ENVIRONMENT_SCHEMA[key], key)
    return schema


_SEVERITY = {"enum": ["error", "warning", "off"]}


def _option_json(option: Option) -> dict[str, Any]:
    if option.kind == "count":
        node: dict[str, Any] = {"type": "integer", "minimum": 0}
    elif option.kind == "duration":
        node = {"type": "string", "minLength": 1}
    else:
        node = {"type": "string", "minLength": 1}
    return {**node, "default": option.default, "description": option.description}


def _setting_json(policy: Policy | None) -> dict[str, Any]:
    """A policy's entry under `policies:`: a severity, or a mapping of settings."""
    properties: dict[str, Any] = {
        "severity": {
            **_SEVERITY,
            "description": "error fails the check and blocks rendering; "
            "warning is reported only; off turns the policy off",
        },
        "environments": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The environments the policy applies to (default: all).",
        },
    }
    mapping: dict[str, Any] = {"type": ["object", "null"], "properties": properties}
    if policy is not None:
        for option in policy.options:
            properties[option.name] = _option_json(option)
        mapping["additionalProperties"] = False
        description = f"{policy.summary} (default severity: {policy.default_severity})."
    else:
        description = "A policy from a plugin (see `pdmpolicy policies`)."
    return {"description": description, "anyOf": [_SEVERITY, mapping]}


_WAIVER_KEYS = {
    "policy": "The policy whose findings are waived.",
    "environment": "The environment whose findings are waived.",
    "job": "Only this job's findings (default: every job of the environment).",
    "reason": "Why the finding is acceptable for now.",
    "owner": 'Who decided, such as a GitLab group (`"@release-managers"`).',
    "expires": "The last day the waiver holds, `YYYY-MM-DD`; an expired waiver is an error.",
}


def policy_set_json_schema(registry: Mapping[str, Policy] | None = None) -> dict[str, Any]:
    """The JSON Schema of `policies/*.yml`: every policy of `registry` (default: the
    built-ins) with its options; other kebab-case names are accepted as plugins' policies."""
    if registry is None:
        from pdmpolicy.policies import BUILTINS

        registry = BUILTINS
    from pdmpolicy.environments.schema import _DATE

    waiver_keys: dict[str, Any] = {
        key: {"type": "string", "description": text} for key, text in _WAIVER_KEYS.items()
    }
    # YAML reads an unquoted date as a date; editors see the text, which must be a day.
    waiver_keys["expires"]["pattern"] = _DATE.pattern
    waiver = {"type": "object", "properties": waiver_keys, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pdmpolicy policy set file",
        "description": "policies/<name>.yml: which policies apply, their severity, options "
        "and scope, and waivers. See docs/policy-set.md.",
        "type": "object",
        "properties": {
            "policies": {
                "type": ["object", "null"],
                "description": "Policy name -> severity, or a mapping of severity, "
                "environments and options. Each policy is configured at most once.",
                "properties": {name: _setting_json(registry[name]) for name in sorted(registry)},
                "propertyNames": {"pattern": names.NAME_PATTERN},
                "additionalProperties": _setting_json(None),
            },
            "waivers": {
                "type": ["array", "null"],
                "description": "Findings excused for a while, each with reason, owner and expiry.",
                "items": waiver,
            },
            # The toolchain section is read by config.py; docs/toolchain.md documents it.
            "toolchain": {
                "type": ["object", "null"],
                "description": "How k-ctl, the VM tooling and Rails are called. See "
                "docs/toolchain.md.",
            },
        },
        "additionalProperties": False,
    }


def _rules_text(rules: Mapping[str, Any]) -> str:
    parts = [" or ".join(_TYPE_WORDS[k] for k in _kinds(rules))]
    if "allowed" in rules:
        parts.append("one of " + ", ".join(f"`{v}`" for v in rules["allowed"]))
    if "min" in rules or "max" in rules:
        parts.append(f"{rules.get('min', 0)} to {rules['max']}" if "max" in rules else "")
    if rules.get("regex") == names.NAME_PATTERN:
        parts.append("a name (lowercase letters, digits, `-`, `_`; at most 63)")
    elif rules.get("regex") == names.RESOURCE_GROUP_PATTERN:
        parts.append("letters, digits, `_`, `.`, `-`")
    if rules.get("check_with") == "duration":
        parts.append("a duration")
    if "keysrules" in rules and rules["keysrules"].get("regex") == names.VARIABLE_PATTERN:
        parts.append("keys are variable names")
    text = ", ".join(part for part in parts if part)
    return f"{text}; or `null`" if rules.get("nullable") else text


def environment_reference() -> str:
    """The generated reference table of docs/environment-files.md."""
    from pdmpolicy.environments.schema import ENVIRONMENT_SCHEMA

    rows = ["| key | required | value | meaning |", "| --- | --- | --- | --- |"]
    for path, rules in _walk(ENVIRONMENT_SCHEMA):
        required = "yes" if rules.get("required") else ""
        rows.append(f"| `{path}` | {required} | {_rules_text(rules)} | {ENVIRONMENT_KEYS[path]} |")
    steps = ", ".join(f"`{step}`" for step in names.ROLLOUT_STEPS)
    return "\n".join(rows) + f"\n\nRollout steps, in order: {steps}.\n"


def policy_set_reference() -> str:
    """The generated reference tables of docs/policy-set.md (built-in policies)."""
    from pdmpolicy.policies import BUILTINS

    rows = [
        "| policy | default severity | options (default) |",
        "| --- | --- | --- |",
    ]
    for name in sorted(BUILTINS):
        policy = BUILTINS[name]
        options = ", ".join(f"`{o.name}` (`{o.default}`)" for o in policy.options) or ""
        rows.append(f"| [`{name}`](policies.md#{name}) | `{policy.default_severity}` | {options} |")
    rows += ["", "Waiver keys:", "", "| key | meaning |", "| --- | --- |"]
    rows += [f"| `{key}` | {text} |" for key, text in _WAIVER_KEYS.items()]
    return "\n".join(rows) + "\n"


_FINDING_FIELDS = {
    "policy": "the policy's name",
    "severity": "`error` or `warning`, as the policy set says",
    "environment": "the environment, or `null` (a GitLab CI file given to `verify`)",
    "job": "the job, or `null` where none applies",
    "path": "the file to edit, relative to the repository",
    "line": "1-based line",
    "column": "1-based column",
    "message": "what is wrong and why it matters",
    "waived": "`true` when a waiver in force excuses it",
}


def report_reference() -> str:
    """The generated part of docs/reports.md: the JSON report of one sample finding, and
    what each field of a finding means (a test checks the fields are the reporter's)."""
    from pdmpolicy.core.findings import Finding
    from pdmpolicy.core.location import Loc
    from pdmpolicy.reports.base import ReportInput
    from pdmpolicy.reports.json import render_json

    sample = Finding(
        policy="pdm-no-auto-retry",
        severity="error",
        message="PDM job gstg-kubernetes-post-deploy-migrations is retried automatically "
        "(retry 1): PDMs would start again after a failed attempt",
        loc=Loc("environments/gstg.yml", 21, 12),
        environment="gstg",
        job="gstg-kubernetes-post-deploy-migrations",
        hint="remove retry; a person re-runs a failed PDM job",
    )
    fields = ["| field | meaning |", "| --- | --- |"]
    fields += [f"| `{key}` | {text} |" for key, text in _FINDING_FIELDS.items()]
    return (
        "```json\n"
        + render_json(ReportInput(findings=(sample,)))
        + "```\n\nA finding's fields:\n\n"
        + "\n".join(fields)
        + "\n"
    )


BEGIN = "<!-- BEGIN GENERATED: python -m pdmpolicy.docgen.formats -->"
END = "<!-- END GENERATED -->"


def splice(document: str, generated: str) -> str:
    """`document` with the text between its BEGIN/END markers replaced by `generated`."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError("the document has no generated section markers")
    return f"{head}{BEGIN}\n{generated}{END}{tail}"


def _json(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generated_files(root: Path) -> dict[Path, str]:
    """Every file this module generates, with the content it must have."""
    environment_doc = root / "docs/environment-files.md"
    policy_doc = root / "docs/policy-set.md"
    report_doc = root / "docs/reports.md"
    return {
        root / ENVIRONMENT_SCHEMA_PATH: _json(environment_json_schema()),
        root / POLICY_SET_SCHEMA_PATH: _json(policy_set_json_schema()),
        environment_doc: splice(
            environment_doc.read_text(encoding="utf-8"), environment_reference()
        ),
        policy_doc: splice(policy_doc.read_text(encoding="utf-8"), policy_set_reference()),
        report_doc: splice(report_doc.read_text(encoding="utf-8"), report_reference()),
    }


def main() -> int:
    root = Path.cwd()
    for path, text in generated_files(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(root), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
