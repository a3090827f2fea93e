"""The policy engine through `pdmpolicy check`: severity, scope, waivers, crashes, JSON shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import Context, Violation
from pdmpolicy.policies.examples import GSTG, GSTG_CNY_EXECUTOR, changed
from pdmpolicy.policies.manifest_examples import MIGRATIONS_JOB
from tests.conftest import Repo, Result

TODAY = "2026-11-26"
VM_JOB = "gstg-vm-post-deploy-migrations"
KUBE_JOB = "gstg-kubernetes-post-deploy-migrations"
INTERRUPTIBLE = changed(
    GSTG,
    "    timeout: 10h\n  gstg-kubernetes",
    "    timeout: 10h\n    interruptible: true\n  gstg-kubernetes",
)
INTERRUPTIBLE_LINE = INTERRUPTIBLE.splitlines().index("    interruptible: true") + 1
GPRD_INTERRUPTIBLE = INTERRUPTIBLE.replace("gstg", "gprd")
# Both executors time out too early: one finding per job.
SHORT = GSTG.replace("timeout: 10h", "timeout: 1h")


def check(run: Any, *args: str) -> Result:
    result: Result = run("check", "--today", TODAY, *args)
    return result


def check_json(run: Any, *args: str) -> tuple[Result, dict[str, Any]]:
    result = check(run, "--format", "json", *args)
    assert result.code in (0, 1), result.err
    return result, json.loads(result.out)


def of_policy(report: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["policy"] == policy]


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


# --- severity -------------------------------------------------------------------------------


def test_default_severity_is_error_and_fails(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE)
    result = check(run)
    assert result.code == 1
    assert (
        f"environments/gstg.yml:{INTERRUPTIBLE_LINE}:20: error pdm-not-interruptible: "
        in result.out
    )
    assert result.out.rstrip().endswith("1 error, 0 warnings, 0 waived")


def test_warning_severity_reports_but_exits_0(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE)
    repo.policies("policies:\n  pdm-not-interruptible: {severity: warning}\n")
    result = check(run)
    assert result.code == 0
    assert (
        f"environments/gstg.yml:{INTERRUPTIBLE_LINE}:20: warning pdm-not-interruptible: "
        in result.out
    )
    assert result.out.rstrip().endswith("0 errors, 1 warning, 0 waived")
    _, report = check_json(run)
    assert [f["severity"] for f in report["findings"]] == ["warning"]
    assert report["summary"] == {"errors": 0, "warnings": 1, "waived": 0}


def test_severity_shorthand_string(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE)
    repo.policies("policies:\n  pdm-not-interruptible: warning\n")
    assert check(run).code == 0


def test_off_severity_drops_the_policy(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE)
    repo.policies("policies:\n  pdm-not-interruptible: {severity: off}\n")
    result, report = check_json(run)
    assert result.code == 0
    assert report["findings"] == []


def test_a_warning_does_not_hide_an_error(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE.replace("timeout: 10h", "timeout: 1h"))
    repo.policies("policies:\n  pdm-not-interruptible: {severity: warning}\n")
    result, report = check_json(run)
    assert result.code == 1
    severities = {f["policy"]: f["severity"] for f in report["findings"]}
    assert severities == {"pdm-not-interruptible": "warning", "pdm-executor-timeout": "error"}
    assert report["summary"] == {"errors": 2, "warnings": 1, "waived": 0}


# --- scope ----------------------------------------------------------------------------------


def test_scope_limits_a_policy_to_its_environments(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE)
    repo.env("gprd.yml", GPRD_INTERRUPTIBLE)
    _, unscoped = check_json(run)
    assert {f["environment"] for f in of_policy(unscoped, "pdm-not-interruptible")} == {
        "gstg",
        "gprd",
    }
    repo.policies("policies:\n  pdm-not-interruptible: {environments: [gstg]}\n")
    result, report = check_json(run)
    assert result.code == 1
    assert [(f["environment"], f["path"]) for f in report["findings"]] == [
        ("gstg", "environments/gstg.yml")
    ]


def test_scope_applies_to_policies_that_relate_environments(repo: Repo, run: Any) -> None:
    """pdm-one-environment-per-database looks at every environment but reports in scope only."""
    repo.env("gstg.yml", GSTG)
    repo.env("gstg-cny.yml", GSTG_CNY_EXECUTOR)
    _, both = check_json(run)
    policy = "pdm-one-environment-per-database"
    assert {f["environment"] for f in of_policy(both, policy)} == {"gstg", "gstg-cny"}
    repo.policies(f"policies:\n  {policy}: {{environments: [gstg-cny]}}\n")
    _, scoped = check_json(run)
    assert [f["environment"] for f in of_policy(scoped, policy)] == ["gstg-cny"]
    assert "gstg" in of_policy(scoped, policy)[0]["message"]


def test_scope_naming_an_unknown_environment_is_an_input_error(repo: Repo, run: Any) -> None:
    """A typo in a scope would otherwise turn the policy off everywhere, silently."""
    repo.env("gstg.yml", INTERRUPTIBLE)
    repo.policies("policies:\n  pdm-not-interruptible: {severity: error, environments: [gsgt]}\n")
    result = check(run)
    assert result.code == 2
    assert result.out == ""
    assert "policies/policies.yml:2:" in result.err
    assert "'gsgt'" in result.err
    assert "gstg" in result.err  # the known environments are listed


# --- waivers --------------------------------------------------------------------------------


def waiver(**fields: str) -> str:
    entry = {
        "policy": "pdm-executor-timeout",
        "environment": "gstg",
        "reason": "staging migrations are short",
        "owner": '"@release-managers"',
        "expires": "2026-12-31",
    }
    entry.update(fields)
    lines = [f"{key}: {value}" for key, value in entry.items() if value != "-"]
    return "waivers:\n  - " + "\n    ".join(lines) + "\n"


def test_valid_waiver_marks_findings_waived_and_exits_0(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    _, before = check_json(run)
    assert len(of_policy(before, "pdm-executor-timeout")) == 2
    repo.policies(waiver())
    result, report = check_json(run)
    assert result.code == 0
    found = of_policy(report, "pdm-executor-timeout")
    assert len(found) == 2
    assert all(f["waived"] is True and f["severity"] == "error" for f in found)
    assert report["summary"] == {"errors": 0, "warnings": 0, "waived": 2}
    text = check(run)
    assert text.code == 0
    assert text.out.count("(waived)") == 2
    assert text.out.rstrip().endswith("0 errors, 0 warnings, 2 waived")


def test_waiver_for_one_job_leaves_the_others(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    repo.policies(waiver(job=VM_JOB))
    result, report = check_json(run)
    assert result.code == 1
    waived = {f["job"]: f["waived"] for f in of_policy(report, "pdm-executor-timeout")}
    assert waived == {VM_JOB: True, KUBE_JOB: False}
    assert report["summary"] == {"errors": 1, "warnings": 0, "waived": 1}


def test_waiver_for_another_environment_or_policy_waives_nothing(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    repo.env("gprd.yml", GSTG.replace("gstg", "gprd"))
    repo.policies(waiver(environment="gprd") + waiver(policy="pdm-locked")[len("waivers:\n") :])
    result, report = check_json(run)
    assert result.code == 1
    assert report["findings"] and not any(f["waived"] for f in report["findings"])
    assert report["summary"]["waived"] == 0


def test_expired_waiver_is_an_error_and_no_longer_waives(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    text = waiver(expires="2026-11-25")
    repo.policies(text)
    result, report = check_json(run)
    assert result.code == 1
    assert not any(f["waived"] for f in of_policy(report, "pdm-executor-timeout"))
    [finding] = of_policy(report, "waiver-valid")
    assert finding["severity"] == "error"
    assert (finding["path"], finding["line"]) == ("policies/policies.yml", line_of(text, "expires"))
    assert "expired" in finding["message"]
    assert report["summary"] == {"errors": 3, "warnings": 0, "waived": 0}


def test_waiver_expiring_today_still_waives(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    repo.policies(waiver(expires=TODAY))
    result, report = check_json(run)
    assert result.code == 0
    assert of_policy(report, "waiver-valid") == []


@pytest.mark.parametrize(
    ("fields", "at", "words"),
    [
        ({"reason": "-"}, "policy:", "no reason"),
        ({"reason": '""'}, "reason:", "no reason"),
        ({"owner": "-"}, "policy:", "no owner"),
        ({"expires": "-"}, "policy:", "no expiry"),
        ({"policy": "pdm-timeout"}, "policy:", "unknown policy 'pdm-timeout'"),
        ({"environment": "gstg-cny"}, "environment:", "unknown environment 'gstg-cny'"),
        ({"job": "gstg-migrations"}, "job:", "job 'gstg-migrations'"),
        ({"policy": "-"}, "environment:", "names no policy"),
        ({"environment": "-"}, "policy:", "names no environment"),
    ],
    ids=[
        "no-reason",
        "empty-reason",
        "no-owner",
        "no-expiry",
        "unknown-policy",
        "unknown-environment",
        "unknown-job",
        "no-policy",
        "no-environment",
    ],
)
def test_incomplete_waiver_is_a_finding_at_its_line_and_waives_nothing(
    repo: Repo, run: Any, fields: dict[str, str], at: str, words: str
) -> None:
    repo.env("gstg.yml", SHORT)
    text = waiver(**fields)
    repo.policies(text)
    result, report = check_json(run)
    assert result.code == 1
    problems = of_policy(report, "waiver-valid")
    assert [(f["path"], f["line"]) for f in problems] == [
        ("policies/policies.yml", line_of(text, at))
    ], problems
    assert words in problems[0]["message"]
    assert problems[0]["severity"] == "error"
    assert not any(f["waived"] for f in report["findings"])


def test_waiver_valid_cannot_be_waived(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.policies(waiver(expires="2026-01-01") + waiver(policy="waiver-valid")[len("waivers:\n") :])
    result, report = check_json(run)
    assert result.code == 1
    problems = of_policy(report, "waiver-valid")
    assert len(problems) == 2
    assert not any(f["waived"] for f in problems)


def test_waiver_valid_as_warning_still_does_not_honour_expired_waivers(
    repo: Repo, run: Any
) -> None:
    repo.env("gstg.yml", SHORT)
    repo.policies("policies:\n  waiver-valid: {severity: warning}\n" + waiver(expires="2026-11-01"))
    result, report = check_json(run)
    assert result.code == 1  # the timeout findings stand
    assert [f["severity"] for f in of_policy(report, "waiver-valid")] == ["warning"]
    assert not any(f["waived"] for f in of_policy(report, "pdm-executor-timeout"))


# --- a policy that crashes ------------------------------------------------------------------


def _crash(context: Context) -> list[Violation]:
    raise RuntimeError("boom")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_crashing_policy_is_an_error_never_a_pass(
    repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(REGISTRY[name], "check", _crash)
    repo.env("gstg.yml", GSTG)
    if "manifests" in REGISTRY[name].layers:
        (repo.root / "gstg.manifest.yaml").write_text(MIGRATIONS_JOB, encoding="utf-8")
        result = run("manifests", "gstg.manifest.yaml", "--today", TODAY, "--format", "json")
        report = json.loads(result.out)
    else:
        result, report = check_json(run, *(["--base", "HEAD"] if _needs_base(name, repo) else []))
    assert result.code == 1
    [finding] = of_policy(report, name)
    assert finding["severity"] == "error"
    assert finding["waived"] is False
    assert "internal error" in finding["message"]
    assert "RuntimeError: boom" in finding["message"]
    assert "Traceback" in result.err
    assert report["summary"]["errors"] == 1


def _needs_base(name: str, repo: Repo) -> bool:
    """Change-aware policies run only with --base: give them one (the file as committed)."""
    if not getattr(REGISTRY[name], "needs_base", False):
        return False
    repo.commit("base")
    return True


def test_crash_is_an_error_even_when_configured_as_warning_and_waived(
    repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(REGISTRY["pdm-executor-timeout"], "check", _crash)
    repo.env("gstg.yml", GSTG)
    repo.policies("policies:\n  pdm-executor-timeout: {severity: warning}\n" + waiver())
    result, report = check_json(run)
    assert result.code == 1
    [finding] = of_policy(report, "pdm-executor-timeout")
    assert (finding["severity"], finding["waived"]) == ("error", False)
    assert "internal error" in finding["message"]


def test_crash_of_one_policy_leaves_the_others_running(
    repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(REGISTRY["pdm-locked"], "check", _crash)
    repo.env("gstg.yml", INTERRUPTIBLE)
    _, report = check_json(run)
    assert {f["policy"] for f in report["findings"]} == {"pdm-locked", "pdm-not-interruptible"}


def test_crash_midway_through_yielding_is_still_reported(
    repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = REGISTRY["pdm-not-interruptible"].check

    def partial(context: Context) -> Any:
        yield from original(context)
        raise KeyError("late")

    monkeypatch.setattr(REGISTRY["pdm-not-interruptible"], "check", partial)
    repo.env("gstg.yml", INTERRUPTIBLE)
    result, report = check_json(run)
    assert result.code == 1
    messages = [f["message"] for f in of_policy(report, "pdm-not-interruptible")]
    assert any("internal error" in m and "KeyError" in m for m in messages)


# --- the JSON report ------------------------------------------------------------------------


FINDING_TYPES: dict[str, tuple[type, ...]] = {
    "policy": (str,),
    "severity": (str,),
    "environment": (str, type(None)),
    "job": (str, type(None)),
    "path": (str,),
    "line": (int,),
    "column": (int,),
    "message": (str,),
    "waived": (bool,),
}


def test_json_shape_is_exactly_the_spec(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", SHORT)
    repo.policies(waiver(job=VM_JOB, expires="2026-11-01"))  # expired: a finding with no job
    _, report = check_json(run)
    # "findings" and "summary" exactly as documented; "inventory" is the one addition.
    assert set(report) == {"findings", "summary", "inventory"}
    assert set(report["summary"]) == {"errors", "warnings", "waived"}
    assert all(type(v) is int for v in report["summary"].values())
    assert len(report["findings"]) == 3
    for finding in report["findings"]:
        assert set(finding) == set(FINDING_TYPES), finding
        for key, types in FINDING_TYPES.items():
            assert isinstance(finding[key], types), (key, finding[key])
            assert not (types == (int,) and isinstance(finding[key], bool))
        assert finding["line"] >= 1 and finding["column"] >= 1
        assert finding["severity"] in ("error", "warning")
        assert not finding["path"].startswith("/")
    by_policy = {f["policy"]: f for f in report["findings"]}
    assert by_policy["waiver-valid"]["path"] == "policies/policies.yml"
    assert by_policy["pdm-executor-timeout"]["environment"] == "gstg"
    assert {f["job"] for f in of_policy(report, "pdm-executor-timeout")} == {VM_JOB, KUBE_JOB}


def test_json_findings_without_a_job_say_null(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", changed(GSTG, "step: kubernetes-after-vm", "step: vm"))
    _, report = check_json(run)
    [finding] = of_policy(report, "rollout-step-shape")
    assert finding["job"] is None
    assert finding["environment"] == "gstg"


def test_findings_are_sorted_by_path_line_column_policy(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", INTERRUPTIBLE.replace("timeout: 10h", "timeout: 1h"))
    repo.env("gprd.yml", GPRD_INTERRUPTIBLE)
    _, report = check_json(run)
    keys = [(f["path"], f["line"], f["column"], f["policy"]) for f in report["findings"]]
    assert len(keys) == 4
    assert keys == sorted(keys)
