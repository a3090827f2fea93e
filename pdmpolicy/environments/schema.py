"""The environment file format (docs/environment-files.md), checked with cerberus, errors
placed at their line.

Two passes: cerberus checks the shape of one file (keys, types, enums, name patterns); then
`check_references` checks what a shape cannot say (needs that name no job, ordering cycles,
keys that belong to another runner, the file name). Every problem of a file is reported, not
only the first. `json_schema()` exports the same format for editors.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping, Sequence, Sized
from typing import Any

from pdmpolicy.core import names
from pdmpolicy.core.errors import Problem
from pdmpolicy.core.location import key_loc, resolve, value_loc
from pdmpolicy.core.records import record
from pdmpolicy.environments.load import Document
from pdmpolicy.gitlab.effects import DECLARABLE
from pdmpolicy.gitlab.shell import read_script

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YAML11_SPECIAL = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|~|null|Null|NULL|[-+]?(?:0|[1-9][0-9_]*|0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)"
    r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def is_yaml11_special(value: Any) -> bool:
    """A plain (unquoted) scalar that GitLab's YAML 1.1 parser reads as boolean, number or null.

    ruamel.yaml reads YAML 1.2, where plain `no` is the string "no"; GitLab reads YAML 1.1,
    where it is false. Quoted strings are ScalarString instances and never special.
    """
    from ruamel.yaml.scalarstring import ScalarString

    return (
        isinstance(value, str)
        and not isinstance(value, ScalarString)
        and bool(_YAML11_SPECIAL.match(value))
    )


def parse_date(value: Any) -> dt.date | None:
    """A `YYYY-MM-DD` date, quoted or not; None if it is not one."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, str) and _DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _date_problem(value: Any) -> str:
    text = str(value)
    if _DATE.match(text):
        try:
            dt.date.fromisoformat(text)
        except ValueError as exc:
            return f"{text} is not a day of the calendar ({exc})"
    if _DATE.match(text[:10]) and len(text) > 10:
        return f"expected a date without a time, written YYYY-MM-DD; found {text!r}"
    return f"expected a date written YYYY-MM-DD; found {text!r}"


def _date_error(value: Any) -> str | None:
    if isinstance(value, str | dt.date) and parse_date(value) is None:
        return _date_problem(value)
    return None


def _variable_value_error(value: Any) -> str | None:
    return f"YAML_1_1:{value}" if is_yaml11_special(value) else None


def _duration_error(value: Any) -> str | None:
    # cerberus runs this on a value of any type (`timeout:` left empty is None); the type
    # rule reports those.
    if isinstance(value, str) and names.parse_duration(value) is None:
        return "expected a duration such as '10h', '3h 30m' or '90 minutes'"
    return None


_CHECKS = {
    "date": _date_error,
    "variable_value": _variable_value_error,
    "duration": _duration_error,
}
"""The schema's `check_with` rules: the error text for a value, or None."""

_TYPES: dict[str, tuple[tuple[type, ...], tuple[type, ...]]] = {
    "string": ((str,), ()),
    "boolean": ((bool,), ()),
    # YAML `true` is a Python bool and bool is an int: a retry of `true` must not pass.
    "count": ((int,), (bool,)),
    "dict": ((Mapping,), ()),
    "list": ((Sequence,), (str,)),
    "date": ((str, dt.date), ()),
}
"""The schema's types: included and excluded Python types, as cerberus reads them (a test
holds the two equal)."""


@functools.cache
def _validator_class() -> Any:
    """cerberus, imported when a file is not found valid at once: it costs some 50 ms to
    import, a sixth of a whole `check` on the shipped files."""
    import cerberus

    class _Validator(cerberus.Validator):  # type: ignore[misc]
        """cerberus with the few types this format needs."""

        types_mapping = cerberus.Validator.types_mapping.copy()
        types_mapping["count"] = cerberus.TypeDefinition("count", *_TYPES["count"])
        types_mapping["date"] = cerberus.TypeDefinition("date", *_TYPES["date"])

        def _error(self, *args: Any) -> None:
            if len(args) != 1:
                super()._error(*args)  # builds the error, then adds it through the branch below
                return
            # cerberus sorts its whole error list and both error trees after every error, so a
            # file with thousands of bad values took minutes. The trees serve coerce,
            # dependencies and readonly, which this schema does not use; problems are put in
            # file order when they are reported.
            self._errors.extend(args[0])

        def _validate_regex(self, pattern: str, field: str, value: Any) -> None:
            """{'type': 'string'}"""
            # cerberus matches `pattern + '$'`, and `$` also matches before a final line break:
            # "gstg\n" passed as a name, a variable name and a script line. The whole value must
            # match (the patterns keep their `$` for JSON Schema, where it means the end).
            if isinstance(value, str) and not re.fullmatch(pattern, value):
                self._error(field, cerberus.errors.REGEX_MISMATCH)

        def _check_with_date(self, field: str, value: Any) -> None:
            error = _date_error(value)
            if error is not None:
                self._error(field, error)

        def _check_with_variable_value(self, field: str, value: Any) -> None:
            error = _variable_value_error(value)
            if error is not None:
                self._error(field, error)

        def _check_with_duration(self, field: str, value: Any) -> None:
            error = _duration_error(value)
            if error is not None:
                self._error(field, error)

    return _Validator


def __getattr__(name: str) -> Any:
    if name == "_Validator":
        return _validator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "empty": False, **extra}


_NAME = _string(regex=names.NAME_PATTERN)
_VARIABLES = {
    "type": "dict",
    "keysrules": {"type": "string", "regex": names.VARIABLE_PATTERN},
    "valuesrules": {"type": "string", "check_with": "variable_value"},
}
_KCTL = {
    "environment": {**_NAME, "required": True},
    "stage": {"type": "string", "allowed": list(names.KCTL_STAGES)},
    "action": {"type": "string", "allowed": list(names.KCTL_ACTIONS), "required": True},
    "dry_run": {"type": "boolean"},
    "wait_for_jobs": {"type": "boolean"},
    "variables": _VARIABLES,
}
_JOB = {
    "runner": {"type": "string", "allowed": list(names.RUNNERS), "required": True},
    "stage": {"type": "string", "allowed": list(names.STAGES)},
    "needs": {"type": "list", "schema": _NAME},
    "when": {"type": "string", "allowed": list(names.JOB_WHEN)},
    "retry": {"type": "count", "min": 0, "max": 2},
    "allow_failure": {"type": "boolean"},
    "interruptible": {"type": "boolean"},
    "resource_group": _string(regex=names.RESOURCE_GROUP_PATTERN),
    "timeout": _string(check_with="duration"),
    "variables": _VARIABLES,
    "inherit_variables": {
        "type": ["boolean", "list"],
        "schema": {"type": "string", "regex": names.VARIABLE_PATTERN},
    },
    "kctl": {"type": "dict", "schema": _KCTL},
    "script": {
        "type": "list",
        "empty": False,
        "schema": _string(regex=r"^[^\n\r]*$"),
    },
    "effect": {"type": "string", "allowed": list(DECLARABLE)},
}
ENVIRONMENT_SCHEMA: dict[str, Any] = {
    "environment": {**_NAME, "required": True},
    "database": {**_NAME, "required": True},
    "upstream": {**_NAME, "nullable": True},
    "rollout": {
        "type": "dict",
        "required": True,
        "schema": {
            "step": {"type": "string", "allowed": list(names.ROLLOUT_STEPS), "required": True},
            "since": {"type": "date", "check_with": "date", "required": True},
        },
    },
    "variables": _VARIABLES,
    "jobs": {
        "type": "dict",
        "required": True,
        "empty": False,
        "keysrules": {"type": "string", "regex": names.NAME_PATTERN},
        "valuesrules": {"type": "dict", "schema": _JOB},
    },
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


_TYPE_WORDS = {
    "string": "a string",
    "boolean": "true or false",
    "count": "a whole number",
    "dict": "a mapping",
    "list": "a list",
    "date": "a date written YYYY-MM-DD",
}
_NAME_HINT = (
    "use lowercase letters, digits, '-' and '_', starting and ending with a letter or digit"
)


def _leaf_errors(errors: Any) -> Iterator[Any]:
    for error in errors:
        if error.is_group_error:
            yield from _leaf_errors(error.child_errors)
        else:
            yield error


def name_problem(name: str) -> str:
    """Why `name` does not match names.NAME_PATTERN, in a few words."""
    if not name:
        return "it is empty"
    if len(name) > 63:
        return f"it is {len(name)} characters long, more than 63"
    if any(c.isupper() for c in name):
        return "it has uppercase letters"
    for char in name:
        if not re.match(r"[a-z0-9_-]", char):
            return f"{char!r} is not allowed in names"
    return "it must start and end with a letter or digit"


def _yaml_kind(value: Any, literal: str) -> str:
    if value is None or literal.lower() in ("~", "null"):
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "number" if any(c.isdigit() for c in literal) or "." in literal else "boolean"


@record
class _Where:
    """What a cerberus error is about, read from its document and schema paths."""

    path: tuple[Any, ...]
    schema_path: tuple[Any, ...]
    in_keys: bool

    @property
    def field(self) -> Any:
        return self.path[-1] if self.path else "document"

    @property
    def name(self) -> str:
        """How to call the value in a message: 'retry', or "item 2 of 'needs'"."""
        if len(self.path) == 2 and self.path[0] == "jobs":
            return f"job '{self.field}'"
        if isinstance(self.field, int) and len(self.path) >= 2:
            return f"item {self.field + 1} of '{self.path[-2]}'"
        return f"'{self.field}'"

    @property
    def is_variable_value(self) -> bool:
        rules = list(self.schema_path)
        if "valuesrules" not in rules or self.in_keys:
            return False
        last = len(rules) - 1 - rules[::-1].index("valuesrules")
        return last >= 1 and rules[last - 1] == "variables" and last >= len(rules) - 2

    @property
    def key_kind(self) -> str:
        """'variable' or 'job' for an error in a mapping's keys."""
        rules = list(self.schema_path)
        at = rules.index("keysrules") if "keysrules" in rules else 0
        return "job" if at >= 1 and rules[at - 1] == "jobs" else "variable"

    @property
    def owner(self) -> str:
        """The mapping that holds the field: 'the file', "job 'x'", "'kctl' of job 'x'"."""
        parent = self.path[:-1]
        if not parent:
            return "the file"
        if len(parent) == 2 and parent[0] == "jobs":
            return f"job '{parent[1]}'"
        if len(parent) >= 3 and parent[0] == "jobs":
            return f"'{parent[-1]}' of job '{parent[1]}'"
        return f"'{parent[-1]}'"


def _message(error: Any, where: _Where, literal: str) -> tuple[str, str]:
    """Message and hint for one cerberus leaf error; `literal` is the value as written."""
    import cerberus

    field = where.field
    name = where.name
    value = error.value
    rule = error.rule
    code = error.code
    written = literal
    literal = literal or (str(value).lower() if isinstance(value, bool) else str(value))
    if code == cerberus.errors.UNKNOWN_FIELD.code:
        shown = f"'{field}'" if isinstance(field, str) else written or _describe(field)
        return f"unknown key {shown} in {where.owner}", (
            "check the spelling against docs/environment-files.md (`pdmpolicy schema`)"
        )
    if code == cerberus.errors.REQUIRED_FIELD.code:
        return f"{where.owner} is missing the required key '{field}'", ""
    if where.in_keys:
        shown = f"'{value}'" if isinstance(value, str) else literal
        if where.key_kind == "variable":
            return f"{shown} is not a valid variable name", (
                "use letters, digits and '_', not starting with a digit"
            )
        reason = name_problem(value) if isinstance(value, str) else "it is not text"
        return f"{shown} is not a valid job name: {reason}", _NAME_HINT
    if where.is_variable_value and (value is None or isinstance(value, bool | int | float)):
        kind = _yaml_kind(value, literal)
        if value is None and not written:
            return f"variable {name} has no value", f'write {field}: "" for an empty string'
        return (
            f"variable {name} must be a string; GitLab reads the unquoted {literal} as a {kind}",
            f'quote it: {field}: "{literal}"',
        )
    is_job = len(where.path) == 2 and where.path[0] == "jobs"
    if is_job and value is None:
        return f"{name} has no settings", "give it at least a runner: vm, kubernetes or generic"
    if rule == "nullable" or (rule == "type" and value is None):
        return f"{name} must not be empty", (
            "write upstream: null when there is none" if field == "upstream" else ""
        )
    if rule == "type":
        wanted = error.constraint if isinstance(error.constraint, list) else [error.constraint]
        words = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
        hint = ""
        if where.path == ("jobs",):
            hint = "write the jobs as a mapping keyed by job name, not as a list"
        elif field == "needs" and isinstance(value, str):
            hint = f"write a list: needs: [{value}]"
        elif field == "timeout" and isinstance(value, int | float):
            hint = f"give a unit, such as timeout: {literal}h or {literal}m"
        elif "string" in wanted and isinstance(value, bool | int | float):
            shown = f"{field}: " if isinstance(field, str) else ""
            hint = f'quote it: {shown}"{literal}" (YAML reads unquoted {literal} as a ' + (
                "boolean)" if isinstance(value, bool) else "number)"
            )
        return f"{name} must be {words}, found {_describe(value)}", hint
    if rule == "allowed":
        choices = ", ".join(str(c) for c in error.constraint)
        return f"{name} must be one of {choices}; found {_describe(value)}", ""
    if rule == "regex":
        if error.constraint == names.NAME_PATTERN:
            return f"{name}: '{value}' is not a valid name: {name_problem(value)}", _NAME_HINT
        if error.constraint == names.VARIABLE_PATTERN:
            return f"{_describe(value)} is not a valid variable name", (
                "use letters, digits and '_', not starting with a digit"
            )
        if "\\n" in error.constraint:
            return "a script line must not contain a line break", "write one command per item"
        return f"{name}: {_describe(value)} has characters that are not allowed", ""
    if rule == "min":
        return f"{name} must be at least {error.constraint}, found {value}", ""
    if rule == "max":
        return f"{name} must be at most {error.constraint}, found {value}", (
            "GitLab allows retry 0, 1 or 2" if field == "retry" else ""
        )
    if rule == "empty":
        return f"{name} must not be empty", (
            "write upstream: null when there is none" if field == "upstream" else ""
        )
    if code == cerberus.errors.CUSTOM.code:
        text = str(error.info[0]) if error.info else "invalid value"
        if text.startswith("YAML_1_1:"):
            literal = text.partition(":")[2]
            return (
                f"variable {name} must be a string; GitLab reads the unquoted {literal} "
                f"as a {_yaml_kind(value, literal)}",
                f'quote it: {field}: "{literal}"',
            )
        return f"{name}: {text}", ""
    return f"{name}: invalid value ({rule})", ""


_KNOWN_RULES = frozenset(
    {
        "type", "required", "nullable", "empty", "allowed", "regex", "min", "max", "schema",
        "keysrules", "valuesrules", "check_with", "meta",
    }
)  # fmt: skip
"""The cerberus rules `_certainly_valid` reads; a schema using another is left to cerberus."""


def _certainly_valid(schema: Mapping[str, Any], document: Any) -> bool:
    """True only when cerberus would find no error in `document` (a mapping) under `schema`.

    cerberus builds a child validator per nested value and copies the document first:
    about 6 ms a file, more than reading it. A valid file, the usual case, needs no more
    than a yes, which this walk of the same rules gives in a fraction of that. It may say
    no to a valid document (any rule it does not read is a no); cerberus then decides, and
    words every error. It never says yes where cerberus finds an error.
    """
    if not isinstance(document, Mapping):
        return False
    for field in document:
        if not isinstance(field, str) or field not in schema:
            return False
    for field, rules in schema.items():
        if field in document:
            if not _value_valid(rules, document[field]):
                return False
        elif rules.get("required"):
            return False
    return True


def _value_valid(rules: Mapping[str, Any], value: Any) -> bool:
    if not _KNOWN_RULES.issuperset(rules):
        return False
    if value is None:
        # cerberus drops the other rules but check_with for a null it allows.
        return bool(rules.get("nullable")) and "check_with" not in rules
    kinds = rules.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        for kind in kinds:
            if kind not in _TYPES:
                return False
            included, excluded = _TYPES[kind]
            if isinstance(value, included) and not isinstance(value, excluded):
                break
        else:
            return False
    if rules.get("empty", True) is False and isinstance(value, Sized) and len(value) == 0:
        return False
    if "allowed" in rules and (not isinstance(value, str) or value not in rules["allowed"]):
        return False
    if "regex" in rules and isinstance(value, str) and not re.fullmatch(rules["regex"], value):
        return False
    if "min" in rules or "max" in rules:
        if not isinstance(value, int | float):
            return False
        if "min" in rules and value < rules["min"]:
            return False
        if "max" in rules and value > rules["max"]:
            return False
    check = rules.get("check_with")
    if check is not None and (
        not isinstance(check, str) or check not in _CHECKS or _CHECKS[check](value) is not None
    ):
        return False
    if "schema" in rules:
        inner = rules["schema"]
        if isinstance(value, Mapping):
            if not _certainly_valid(inner, value):
                return False
        elif isinstance(value, Sequence) and not isinstance(value, str):
            return all(_value_valid(inner, item) for item in value)
    if "keysrules" in rules or "valuesrules" in rules:
        if not isinstance(value, Mapping):
            return False
        keys, values = rules.get("keysrules"), rules.get("valuesrules")
        for key, item in value.items():
            if keys is not None and not _value_valid(keys, key):
                return False
            if values is not None and not _value_valid(values, item):
                return False
    return True


def validate_shape(doc: Document) -> list[Problem]:
    """Check one environment file against ENVIRONMENT_SCHEMA; every problem, located."""
    if _certainly_valid(ENVIRONMENT_SCHEMA, doc.data):
        return []
    import cerberus

    validator = _validator_class()(ENVIRONMENT_SCHEMA)
    if validator.validate(dict(doc.data)):
        return []
    problems = []
    for error in _leaf_errors(validator._errors):
        where = _Where(
            tuple(error.document_path), tuple(error.schema_path), "keysrules" in error.schema_path
        )
        on_key = where.in_keys or error.code == cerberus.errors.UNKNOWN_FIELD.code
        if error.code == cerberus.errors.REQUIRED_FIELD.code:
            # The key is not there: point at the mapping that lacks it, by its own key.
            loc = resolve(doc.path, doc.data, where.path[:-1], key=True)
        else:
            loc = resolve(doc.path, doc.data, where.path, key=on_key)
        # A key written without a value has no literal; its location is the key's own.
        valueless = not on_key and loc == resolve(doc.path, doc.data, where.path, key=True)
        message, hint = _message(error, where, "" if valueless else doc.source(loc))
        problems.append(Problem(loc, message, hint))
    return problems


_RUNNER_KEYS = {"vm": set(), "kubernetes": {"kctl"}, "generic": {"script"}}
_GENERIC_ONLY = ("effect",)
"""Keys only a `runner: generic` job may have but need not."""


def check_references(doc: Document, stem: str) -> list[Problem]:
    """What the shape cannot say: file name, runner-specific keys, needs, cycles.

    Runs only on a document that passed `validate_shape`.
    """
    data = doc.data
    path = doc.path
    problems = []
    if data["environment"] != stem:
        problems.append(
            Problem(
                value_loc(path, data, "environment"),
                f"environment '{data['environment']}' does not match the file name '{stem}.yml'",
                f"name the file {data['environment']}.yml"
                + (
                    f", or set environment: {stem}"
                    if re.fullmatch(names.NAME_PATTERN, stem)
                    else ""
                ),
            )
        )
    jobs = data["jobs"]
    for name, job in jobs.items():
        runner = job["runner"]
        for key in ("kctl", "script"):
            if key in job and key not in _RUNNER_KEYS[runner]:
                problems.append(
                    Problem(key_loc(path, job, key), f"'{key}' does not apply to runner: {runner}")
                )
        for key in _GENERIC_ONLY:
            if key in job and runner != "generic":
                problems.append(
                    Problem(
                        key_loc(path, job, key),
                        f"'{key}' does not apply to runner: {runner}",
                        f"the analysis sees what a runner: {runner} job does; only a "
                        "runner: generic job declares its effect",
                    )
                )
        for key in _RUNNER_KEYS[runner]:
            if key not in job:
                problems.append(
                    Problem(
                        key_loc(path, jobs, name),
                        f"job '{name}' has runner: {runner} but no '{key}'",
                    )
                )
        if name in names.GITLAB_RESERVED:
            problems.append(
                Problem(
                    key_loc(path, jobs, name),
                    f"'{name}' is a GitLab CI keyword and cannot name a job",
                )
            )
        script = job.get("script") or []
        _, unreadable = read_script(
            [
                (line, resolve(path, data, ("jobs", name, "script", i)))
                for i, line in enumerate(script)
            ]
        )
        for loc, reason in unreadable:
            problems.append(
                Problem(
                    loc,
                    f"the shell cannot read this script line: {reason}",
                    "balance the quotes; quote or escape a literal quote character",
                )
            )
        needs = job.get("needs", [])
        for index, need in enumerate(needs):
            loc = resolve(path, data, ("jobs", name, "needs", index))
            if need not in jobs:
                known = ", ".join(sorted(jobs))
                problems.append(
                    Problem(
                        loc,
                        f"job '{name}' needs '{need}', which is not a job here",
                        f"jobs in this file: {known}",
                    )
                )
            elif need == name:
                problems.append(Problem(loc, f"job '{name}' needs itself"))
            elif needs.index(need) != index:
                problems.append(Problem(loc, f"job '{name}' lists '{need}' in needs twice"))
    problems.extend(_cycles(doc))
    return problems


def _cycles(doc: Document) -> list[Problem]:
    """One problem per ordering cycle among `needs`, at the first job of the cycle."""
    jobs = doc.data["jobs"]
    graph = {
        name: [n for n in job.get("needs", []) if n in jobs and n != name]
        for name, job in jobs.items()
    }
    state: dict[str, int] = {}
    problems = []
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        trail.append(name)
        for need in graph[name]:
            if state.get(need) == 1:
                cycle = trail[trail.index(need) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    start = min(cycle)
                    order = cycle[cycle.index(start) :] + cycle[: cycle.index(start)] + [start]
                    problems.append(
                        Problem(
                            resolve(doc.path, doc.data, ("jobs", start, "needs")),
                            "needs form a cycle: " + " -> ".join(order),
                            "a job cannot wait, directly or not, for itself",
                        )
                    )
            elif need not in state:
                visit(need, trail)
        trail.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return problems


def json_schema() -> dict[str, Any]:
    """ENVIRONMENT_SCHEMA as JSON Schema (draft 2020-12), for editors."""

    def convert(rules: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kinds = rules.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        mapped = {
            "string": "string", "boolean": "boolean", "count": "integer", "dict": "object",
            "list": "array", "date": "string",
        }  # fmt: skip
        types = [mapped[k] for k in kinds]
        if rules.get("nullable"):
            types.append("null")
        if types:
            out["type"] = types[0] if len(types) == 1 else types
        if "allowed" in rules:
            out["enum"] = list(rules["allowed"])
        if "regex" in rules:
            out["pattern"] = rules["regex"]
        if "date" in kinds:
            out["pattern"] = _DATE.pattern
        if "min" in rules:
            out["minimum"] = rules["min"]
        if "max" in rules:
            out["maximum"] = rules["max"]
        if rules.get("empty") is False and "string" in kinds:
            out["minLength"] = 1
        if "schema" in rules and "dict" in kinds:
            out.update(convert_mapping(rules["schema"]))
        elif "schema" in rules:
            out["items"] = convert(rules["schema"])
        if "keysrules" in rules:
            out["propertyNames"] = convert(rules["keysrules"])
        if "valuesrules" in rules:
            out["additionalProperties"] = convert(rules["valuesrules"])
        return out

    def convert_mapping(schema: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {key: convert(rules) for key, rules in schema.items()},
            "required": sorted(k for k, r in schema.items() if r.get("required")),
            "additionalProperties": False,
        }

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pdmpolicy environment file",
        "description": "environments/<name>.yml: one environment's post-deployment migration "
        "jobs. See docs/environment-files.md.",
        **convert_mapping(ENVIRONMENT_SCHEMA),
    }
