"""The policy set: `policies/*.yml` read, merged and checked against the registry.

Each file may hold `policies:` (name -> severity, scope, options), `waivers:` and
`toolchain:` (how the team's tools are called, docs/toolchain.md; one file may hold it). A
policy or toolchain configured in two places, an unknown policy or option, a wrong type: an
`InputError` at the line. Waivers are only type-checked here; whether each one is
acceptable (named policy exists, reason/owner/expiry present, not expired) is the
`waiver-valid` policy's verdict, so a bad waiver is a finding on the merge request rather
than an unusable policy set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from pdmpolicy.core import names
from pdmpolicy.core.errors import InputError, Problem
from pdmpolicy.core.findings import SEVERITIES
from pdmpolicy.core.location import Loc, item_loc, key_loc, value_loc
from pdmpolicy.core.records import record
from pdmpolicy.environments.load import read_yaml
from pdmpolicy.environments.schema import parse_date
from pdmpolicy.policies.base import Option, Policy, Waiver
from pdmpolicy.policyset.toolchain import DEFAULT, Toolchain
from pdmpolicy.policyset.toolchain_section import read_toolchain

FILE_KEYS = ("policies", "waivers", "toolchain")


@record
class Setting:
    """How one policy applies: severity, scope and options (defaults filled in)."""

    severity: str
    environments: tuple[str, ...] | None
    options: Mapping[str, Any]
    loc: Loc | None = None
    locs: Mapping[str, Loc] = field(default_factory=dict, repr=False, compare=False)

    def in_scope(self, environment: str | None) -> bool:
        return (
            self.environments is None or environment is None or (environment in self.environments)
        )


@record
class PolicySet:
    settings: Mapping[str, Setting]
    waivers: tuple[Waiver, ...]
    files: tuple[str, ...]
    toolchain: Toolchain = DEFAULT
    """How the tools are called: the built-in defaults with the `toolchain:` section over them."""
    toolchain_file: str | None = None
    """The policy file that holds the `toolchain:` section; None when none does."""


def _option_value(option: Option, value: Any, loc: Loc, policy: str) -> tuple[Any, Problem | None]:
    where = f"{policy}: option '{option.name}'"
    if option.kind == "duration":
        seconds = names.parse_duration(value) if isinstance(value, str) else None
        if seconds is None:
            return None, Problem(loc, f"{where} must be a duration such as '3h'", "")
        return value, None
    if option.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None, Problem(loc, f"{where} must be a whole number, 0 or more", "")
        return value, None
    if not isinstance(value, str) or not value:
        return None, Problem(loc, f"{where} must be a non-empty string", "")
    return value, None


def _setting(
    path: str, policies: Any, name: str, policy: Policy, problems: list[Problem]
) -> Setting:
    entry = policies[name]
    loc = key_loc(path, policies, name)
    if isinstance(entry, str):
        entry = {"severity": entry}
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping):
        problems.append(
            Problem(
                value_loc(path, policies, name),
                f"policy '{name}' must be a mapping such as {{severity: error}}",
            )
        )
        return Setting(policy.default_severity, None, policy.option_defaults(), loc)
    severity = entry.get("severity", policy.default_severity)
    if severity not in SEVERITIES:
        problems.append(
            Problem(
                value_loc(path, entry, "severity") if "severity" in entry else loc,
                f"policy '{name}': severity must be error, warning or off; found {severity!r}",
            )
        )
    environments = entry.get("environments")
    if environments is not None and (
        not isinstance(environments, list) or not all(isinstance(e, str) for e in environments)
    ):
        problems.append(
            Problem(
                value_loc(path, entry, "environments"),
                f"policy '{name}': environments must be a list of names",
            )
        )
        environments = None
    options = policy.option_defaults()
    known = {o.name: o for o in policy.options}
    for key in entry:
        if key in ("severity", "environments"):
            continue
        if key not in known:
            valid = ", ".join(["severity", "environments", *sorted(known)])
            problems.append(
                Problem(
                    key_loc(path, entry, key),
                    f"policy '{name}' has no option '{key}'",
                    f"valid: {valid}",
                )
            )
            continue
        value, problem = _option_value(known[key], entry[key], value_loc(path, entry, key), name)
        if problem:
            problems.append(problem)
        else:
            options[key] = value
    return Setting(
        severity=str(severity) if severity in SEVERITIES else policy.default_severity,
        environments=tuple(environments) if environments is not None else None,
        options=options,
        loc=loc,
        locs={str(k): value_loc(path, entry, k) for k in entry},
    )


def _waiver(path: str, waivers: Any, index: int, problems: list[Problem]) -> Waiver | None:
    entry = waivers[index]
    loc = item_loc(path, waivers, index)
    if not isinstance(entry, Mapping):
        problems.append(
            Problem(
                loc,
                "a waiver must be a mapping with policy, environment, reason, owner and expires",
            )
        )
        return None
    allowed = ("policy", "environment", "job", "reason", "owner", "expires")
    for key in entry:
        if key not in allowed:
            problems.append(
                Problem(
                    key_loc(path, entry, key),
                    f"unknown waiver key '{key}'",
                    "valid: " + ", ".join(allowed),
                )
            )
    for key in ("policy", "environment", "job", "reason", "owner"):
        if key in entry and not isinstance(entry[key], str):
            problems.append(
                Problem(value_loc(path, entry, key), f"waiver '{key}' must be a string")
            )
    expires = None
    expires_text = None
    if "expires" in entry:
        expires_text = str(entry["expires"])
        expires = parse_date(entry["expires"])
        if expires is None:
            problems.append(
                Problem(
                    value_loc(path, entry, "expires"),
                    "waiver 'expires' must be a date written YYYY-MM-DD",
                )
            )

    def text(key: str) -> str | None:
        value = entry.get(key)
        return value if isinstance(value, str) and value.strip() else None

    return Waiver(
        policy=text("policy"),
        environment=text("environment"),
        job=text("job"),
        reason=text("reason"),
        owner=text("owner"),
        expires=expires,
        expires_text=expires_text,
        loc=loc,
        locs={str(k): value_loc(path, entry, k) for k in entry},
    )


def load_policy_set(directory: Path, root: Path, registry: Mapping[str, Policy]) -> PolicySet:
    """Read every `*.yml`/`*.yaml` in `directory`; raise InputError with every problem."""
    problems: list[Problem] = []
    settings: dict[str, Setting] = {}
    where: dict[str, Loc] = {}
    waivers: list[Waiver] = []
    toolchain = DEFAULT
    toolchain_at: Loc | None = None
    files = (
        sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]) if directory.is_dir() else []
    )
    shown: list[str] = []
    for file in files:
        try:
            doc = read_yaml(file, root)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        shown.append(doc.path)
        for key in doc.data:
            if key not in FILE_KEYS:
                problems.append(
                    Problem(
                        key_loc(doc.path, doc.data, key),
                        f"unknown key '{key}'",
                        "a policy file holds 'policies:', 'waivers:' and 'toolchain:'",
                    )
                )
        if "toolchain" in doc.data:
            loc = key_loc(doc.path, doc.data, "toolchain")
            if toolchain_at is not None:
                problems.append(
                    Problem(
                        loc,
                        f"the toolchain is configured twice: here and at {toolchain_at}",
                        "keep one toolchain: section in the policy set",
                    )
                )
            else:
                toolchain_at = loc
                toolchain = read_toolchain(doc.path, doc.data, problems)
        # An empty `policies:` is no policy; `policies: false` or `[]` is a mistake.
        policies = doc.data.get("policies")
        policies = {} if policies is None else policies
        if not isinstance(policies, Mapping):
            problems.append(
                Problem(
                    value_loc(doc.path, doc.data, "policies"),
                    "'policies' must be a mapping of policy name to settings",
                )
            )
            policies = {}
        for name in policies:
            loc = key_loc(doc.path, policies, name)
            if name not in registry:
                problems.append(
                    Problem(
                        loc,
                        f"unknown policy '{name}'",
                        "valid policies: " + ", ".join(sorted(registry)),
                    )
                )
                continue
            if name in where:
                problems.append(
                    Problem(
                        loc,
                        f"policy '{name}' is configured twice: here and at {where[name]}",
                        "configure each policy once",
                    )
                )
                continue
            where[name] = loc
            settings[name] = _setting(doc.path, policies, name, registry[name], problems)
        raw_waivers = doc.data.get("waivers")
        raw_waivers = [] if raw_waivers is None else raw_waivers
        if not isinstance(raw_waivers, list):
            problems.append(
                Problem(value_loc(doc.path, doc.data, "waivers"), "'waivers' must be a list")
            )
            raw_waivers = []
        for index in range(len(raw_waivers)):
            waiver = _waiver(doc.path, raw_waivers, index, problems)
            if waiver is not None:
                waivers.append(waiver)
    if problems:
        raise InputError(problems)
    for name, policy in registry.items():
        settings.setdefault(name, Setting(policy.default_severity, None, policy.option_defaults()))
    return PolicySet(
        settings,
        tuple(waivers),
        tuple(shown),
        toolchain,
        toolchain_at.path if toolchain_at is not None else None,
    )
