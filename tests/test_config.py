"""The policy set (`policies/*.yml`): options, and every way it can be wrong (exit 2, at a line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdmpolicy.core.errors import InputError
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG
from pdmpolicy.policyset.config import load_policy_set
from tests.conftest import Repo, Result

TODAY = "2026-11-26"


def check(run: Any, *args: str) -> Result:
    result: Result = run("check", "--today", TODAY, *args)
    return result


def input_errors(result: Result) -> list[str]:
    """The `file:line:col: error: ...` lines of a run refused as bad input."""
    assert result.code == 2, (result.out, result.err)
    assert result.out == "", "nothing is checked when the input is bad"
    return [line for line in result.err.splitlines() if ": error: " in line]


def timeout_findings(run: Any) -> list[dict[str, Any]]:
    result = check(run, "--format", "json")
    assert result.code in (0, 1), result.err
    findings: list[dict[str, Any]] = json.loads(result.out)["findings"]
    return [f for f in findings if f["policy"] == "pdm-executor-timeout"]


# --- options --------------------------------------------------------------------------------


def test_default_minimum_is_3h(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG.replace("timeout: 10h", "timeout: 3h"))
    assert timeout_findings(run) == []
    repo.env("gstg.yml", GSTG.replace("timeout: 10h", "timeout: 2h 59m"))
    assert len(timeout_findings(run)) == 2


def test_option_raises_the_minimum(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-executor-timeout: {severity: error, minimum: 11h}\n")
    found = timeout_findings(run)
    assert len(found) == 2
    assert all("minimum 11h" in f["message"] for f in found)
    assert check(run).code == 1


def test_option_lowers_the_minimum(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG.replace("timeout: 10h", "timeout: 1h"))
    assert len(timeout_findings(run)) == 2
    repo.policies("policies:\n  pdm-executor-timeout:\n    minimum: 45 minutes\n")
    assert timeout_findings(run) == []
    assert check(run).code == 0


def test_unconfigured_policies_get_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yml").write_text("policies:\n  pdm-locked: warning\n")
    policy_set = load_policy_set(tmp_path / "policies", tmp_path, REGISTRY)
    assert set(policy_set.settings) == set(REGISTRY)
    assert policy_set.settings["pdm-locked"].severity == "warning"
    timeout = policy_set.settings["pdm-executor-timeout"]
    assert (timeout.severity, timeout.environments) == ("error", None)
    assert timeout.options == {"minimum": "3h"}


def test_no_policies_directory_means_every_default(tmp_path: Path) -> None:
    policy_set = load_policy_set(tmp_path / "policies", tmp_path, REGISTRY)
    assert {s.severity for s in policy_set.settings.values()} == {
        REGISTRY[name].default_severity for name in REGISTRY
    }
    assert policy_set.waivers == ()


# --- bad policy sets: exit 2 with file:line:col ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "at", "words"),
    [
        ("  pdm-executor-timeout: {minimum: 3}\n", "2:35", "option 'minimum' must be a duration"),
        ("  pdm-executor-timeout: {minimum: soon}\n", "2:35", "must be a duration"),
        ('  pdm-executor-timeout: {minimum: ""}\n', "2:35", "must be a duration"),
        ("  pdm-locked: {resource_group: 7}\n", "2:32", "option 'resource_group' must be"),
        ("  pdm-executor-timeout: {severity: fatal}\n", "2:36", "severity must be error"),
        ("  pdm-executor-timeout: {severity: null}\n", "2:36", "severity must be error"),
        ("  pdm-executor-timeout: {environments: gstg}\n", "2:40", "must be a list"),
        ("  pdm-executor-timeout: [error]\n", "2:25", "must be a mapping"),
    ],
    ids=[
        "number-for-duration",
        "word-for-duration",
        "empty-duration",
        "number-for-text",
        "unknown-severity",
        "null-severity",
        "scope-not-a-list",
        "setting-not-a-mapping",
    ],
)
def test_bad_option_values_are_input_errors(
    repo: Repo, run: Any, text: str, at: str, words: str
) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n" + text)
    [error] = input_errors(check(run))
    assert error.startswith(f"policies/policies.yml:{at}: error: "), error
    assert words in error


@pytest.mark.parametrize("value", ["-1", '"7"', "true", "1.5"])
def test_bad_count_option_is_an_input_error(repo: Repo, run: Any, value: str) -> None:
    """soak_days-like options (kind 'count') take whole numbers 0 or more only."""
    counted = [
        (name, option.name)
        for name, policy in sorted(REGISTRY.items())
        for option in policy.options
        if option.kind == "count"
    ]
    assert counted, "promotion-order and one-step-at-a-time take soak_days (SPEC.md)"
    name, option = counted[0]
    repo.env("gstg.yml", GSTG)
    repo.policies(f"policies:\n  {name}:\n    {option}: {value}\n")
    [error] = input_errors(check(run))
    assert error.startswith(f"policies/policies.yml:3:{len(option) + 7}: error: ")
    assert "whole number" in error


def test_unknown_option_is_an_input_error_listing_the_valid_ones(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-executor-timeout:\n    severity: error\n    maximum: 4h\n")
    result = check(run)
    [error] = input_errors(result)
    assert error == (
        "policies/policies.yml:4:5: error: policy 'pdm-executor-timeout' has no option 'maximum'"
    )
    assert "valid: severity, environments, minimum" in result.err


def test_unknown_policy_is_an_input_error_listing_every_valid_name(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-no-auto-retries: {severity: error}\n")
    result = check(run)
    [error] = input_errors(result)
    assert error == "policies/policies.yml:2:3: error: unknown policy 'pdm-no-auto-retries'"
    listed = result.err.split("valid policies: ", 1)[1].split("\n", 1)[0]
    assert listed.split(", ") == sorted(REGISTRY)


def test_policy_configured_in_two_files_names_both_places(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-locked: {severity: error}\n", "a.yml")
    repo.policies("# the second file\npolicies:\n  pdm-locked: {severity: warning}\n", "b.yml")
    [error] = input_errors(check(run))
    assert error.startswith("policies/b.yml:3:3: error: ")
    assert "pdm-locked" in error
    assert "policies/a.yml:2:3" in error


def test_every_problem_of_every_file_is_reported_at_once(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-lockd: error\n  pdm-locked: {severity: loud}\n", "a.yml")
    repo.policies("policies:\n  pdm-executor-timeout: {minimum: 3}\n", "b.yml")
    errors = input_errors(check(run))
    assert [e.split(": error: ")[0] for e in errors] == [
        "policies/a.yml:2:3",
        "policies/a.yml:3:26",
        "policies/b.yml:2:35",
    ]


@pytest.mark.parametrize(
    ("text", "at", "words"),
    [
        ("policies: false\n", "1:11", "'policies' must be a mapping"),
        ("policies: []\n", "1:11", "'policies' must be a mapping"),
        ("waivers: {}\n", "1:10", "'waivers' must be a list"),
        ("waivers: 0\n", "1:10", "'waivers' must be a list"),
        ("policy:\n  pdm-locked: error\n", "1:1", "unknown key 'policy'"),
        ("waivers:\n  - pdm-locked\n", "2:5", "a waiver must be a mapping"),
        ("waivers:\n  - policy: pdm-locked\n    until: 2026-12-31\n", "3:5", "unknown waiver key"),
        ("waivers:\n  - policy: pdm-locked\n    expires: 2026-13-01\n", "3:14", "YYYY-MM-DD"),
        ("waivers:\n  - policy: pdm-locked\n    expires: soon\n", "3:14", "YYYY-MM-DD"),
        ("waivers:\n  - policy: [pdm-locked]\n", "2:13", "waiver 'policy' must be a string"),
    ],
    ids=[
        "policies-false",
        "policies-list",
        "waivers-mapping",
        "waivers-number",
        "unknown-top-level-key",
        "waiver-not-a-mapping",
        "unknown-waiver-key",
        "impossible-expiry-date",
        "expiry-not-a-date",
        "policy-not-a-string",
    ],
)
def test_malformed_policy_files_are_input_errors(
    repo: Repo, run: Any, text: str, at: str, words: str
) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies(text)
    [error] = input_errors(check(run))
    assert error.startswith(f"policies/policies.yml:{at}: error: "), error
    assert words in error


def test_empty_sections_are_allowed(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\nwaivers:\n")
    assert check(run).code == 0
    repo.policies("policies: {}\nwaivers: []\n")
    assert check(run).code == 0


def test_load_policy_set_raises_input_error_with_locations(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text("policies:\n  nope: error\n")
    with pytest.raises(InputError) as raised:
        load_policy_set(tmp_path / "policies", tmp_path, REGISTRY)
    [problem] = raised.value.problems
    assert str(problem.loc) == "policies/p.yaml:2:3"
