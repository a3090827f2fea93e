"""The GitLab CI/CD component templates/pdmpolicy.yml: valid for GitLab, and its job works.

A component is a header (`spec: inputs:`), `---`, and the configuration in which GitLab
replaces `$[[ inputs.NAME ]]` before it reads anything else. Both documents are validated
against GitLab CI's JSON Schema (tests/data), with the defaults and with other inputs; then
the job's script runs in a scratch deploy project as a shell runner would run it, installing
pdmpolicy with pip from a wheel of this working tree (the session's wheelhouse).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from ruamel.yaml import YAML

from pdmpolicy.cli import main
from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import INSTALLS, REPO_ROOT, Repo
from tests.worktree import clean_python

COMPONENT = REPO_ROOT / "templates" / "pdmpolicy.yml"
SCHEMA = json.loads((REPO_ROOT / "tests/data/gitlab-ci-schema.json").read_text(encoding="utf-8"))
_INPUT = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def _documents() -> tuple[dict[str, Any], str]:
    text = COMPONENT.read_text(encoding="utf-8")
    header, separator, body = text.partition("\n---\n")
    assert separator, "a component's header ends with ---"
    return YAML(typ="safe").load(header), body


def _interpolate(body: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What GitLab does with the inputs: textual replacement, then YAML."""
    spec, _ = _documents()
    values = {name: rules.get("default") for name, rules in spec["spec"]["inputs"].items()} | inputs
    missing = set(_INPUT.findall(body)) - set(values)
    assert not missing, f"inputs used but not declared: {missing}"
    loaded: dict[str, Any] = YAML(typ="safe").load(
        _INPUT.sub(lambda match: str(values[match.group(1)]), body)
    )
    return loaded


def _errors(document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_header_declares_the_inputs_and_validates() -> None:
    header, body = _documents()
    assert _errors(header) == []
    inputs = header["spec"]["inputs"]
    assert {"image", "stage", "version", "environments", "policies"} <= set(inputs)
    for name, rules in inputs.items():
        assert rules.get("description"), name
        assert "default" in rules, f"{name}: every input has a default"
        assert f"inputs.{name} ]]" in body, f"input {name} is never used"


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"stage": "policy", "image": "registry.example.com/python:3.12", "version": "0.2.0",
         "environments": "deploy/environments", "policies": "deploy/policies",
         "reports": "out"},
    ],
    ids=["defaults", "custom"],
)  # fmt: skip
def test_configuration_validates_against_gitlab_ci_schema(inputs: dict[str, str]) -> None:
    _, body = _documents()
    pipeline = _interpolate(body, inputs)
    assert _errors(pipeline) == []
    job = pipeline["pdmpolicy"]
    reports = inputs.get("reports", "reports")
    assert job["stage"] == inputs.get("stage", "test")
    assert job["artifacts"]["when"] == "always"  # the reports are kept when the job fails
    assert job["artifacts"]["reports"] == {
        "junit": f"{reports}/junit.xml",
        "codequality": f"{reports}/codequality.json",
    }
    assert any("render --check" in line for line in job["script"])
    note = pipeline["pdmpolicy-note"]
    assert note["needs"] == [{"job": "pdmpolicy", "artifacts": True}]
    assert note["allow_failure"] is True


def test_schema_check_can_fail() -> None:
    _, body = _documents()
    pipeline = _interpolate(body, {})
    pipeline["pdmpolicy"]["artifacts"]["when"] = "sometimes"
    assert _errors(pipeline)


@pytest.fixture(scope="module")
def runner_python(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> tuple[Path, Path]:
    """A clean Python (as the job's image has) and a directory of wheels: this working
    tree's pdmpolicy and its dependencies, which `pip install` in the job finds."""
    return clean_python(tmp_path_factory.mktemp("component-runner")), wheelhouse


def _run_job(project: Path, runner: tuple[Path, Path], variables: dict[str, str]) -> int:
    """The job's script, interpolated with the defaults, as a shell runner runs it."""
    bin_dir, wheels = runner
    _, body = _documents()
    job = _interpolate(body, {})["pdmpolicy"]
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(project),
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "CI_PROJECT_URL": "https://gitlab.example.com/release/deploy",
        "CI_COMMIT_SHA": "0123abcd",
        **{name: str(value) for name, value in job["variables"].items()},
        **variables,
    }
    script = "set -e\n" + "\n".join(job["script"]) + "\n"
    done = subprocess.run(
        ["sh", "-c", script], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    print(done.stdout, done.stderr)
    return done.returncode


@INSTALLS
def test_job_passes_a_safe_project_and_writes_the_reports(
    repo: Repo, runner_python: tuple[Path, Path]
) -> None:
    repo.env("gstg.yml", GSTG)
    assert main(["render"]) == 0
    assert _run_job(repo.root, runner_python, {}) == 0
    suites = ElementTree.parse(repo.root / "reports/junit.xml").getroot()
    assert suites.iter("testcase") and not list(suites.iter("failure"))
    assert json.loads((repo.root / "reports/codequality.json").read_text()) == []
    assert (repo.root / "reports/note.md").read_text().strip()


@INSTALLS
def test_job_fails_an_unsafe_merge_request_with_its_reports(
    repo: Repo, runner_python: tuple[Path, Path]
) -> None:
    repo.env("gstg.yml", GSTG)
    assert main(["render"]) == 0
    repo.commit("target branch")
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    repo.env(
        "gstg.yml",
        changed(GSTG, "    timeout: 10h\n  gstg-k", "    timeout: 10h\n    retry: 1\n  gstg-k"),
    )
    code = _run_job(repo.root, runner_python, {"CI_MERGE_REQUEST_DIFF_BASE_SHA": base})
    assert code == 1
    issues = json.loads((repo.root / "reports/codequality.json").read_text())
    assert "pdm-no-auto-retry" in {issue["check_name"] for issue in issues}
    assert "pdm-no-auto-retry" in (repo.root / "reports/note.md").read_text()


@INSTALLS
def test_job_fails_when_ci_is_stale(repo: Repo, runner_python: tuple[Path, Path]) -> None:
    repo.env("gstg.yml", GSTG)
    assert main(["render"]) == 0
    repo.env("gstg.yml", changed(GSTG, "timeout: 10h\n  gstg-k", "timeout: 11h\n  gstg-k"))
    assert _run_job(repo.root, runner_python, {}) == 1
