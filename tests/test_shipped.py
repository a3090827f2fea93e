"""The shipped environments, policy set and rendered ci/: clean, current, valid for GitLab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from pdmpolicy.cli import main
from tests.conftest import REPO_ROOT

SCHEMA = json.loads((REPO_ROOT / "tests/data/gitlab-ci-schema.json").read_text(encoding="utf-8"))
RENDERED = sorted((REPO_ROOT / "ci").rglob("*.yml"))


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def _plain(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.mark.usefixtures("in_repo")
def test_shipped_environments_check_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--today", "2026-11-26", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == []
    assert report["summary"] == {"errors": 0, "warnings": 0, "waived": 0}


@pytest.mark.usefixtures("in_repo")
def test_rendered_ci_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--check", "--today", "2026-11-26"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_shipped_story_gstg_leads_gprd() -> None:
    assert {p.name for p in RENDERED} == {
        "postdeploy-migrations.yml",
        "gstg-postdeploy-migrations.yml",
        "gprd-postdeploy-migrations.yml",
    }
    gstg = YAML(typ="safe").load((REPO_ROOT / "environments/gstg.yml").read_text())
    gprd = YAML(typ="safe").load((REPO_ROOT / "environments/gprd.yml").read_text())
    assert gstg["rollout"]["step"] == "kubernetes-first"
    assert gprd["rollout"]["step"] == "dry-run"
    assert gprd["upstream"] == "gstg"


@pytest.mark.parametrize("path", RENDERED, ids=lambda p: p.name)
def test_rendered_files_pass_gitlab_ci_json_schema(path: Path) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = sorted(validator.iter_errors(_plain(path)), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_gitlab_schema_rejects_a_broken_pipeline() -> None:
    """The schema check above can fail: an invalid retry is caught."""
    validator = jsonschema.Draft7Validator(SCHEMA)
    broken = {"job": {"script": ["true"], "retry": 5}}
    assert list(validator.iter_errors(broken))


@pytest.mark.usefixtures("in_repo")
def test_environment_json_schema_accepts_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((REPO_ROOT / "environments").glob("*.yml")):
        data = json.loads(json.dumps(_plain(path), default=str))
        assert not list(validator.iter_errors(data)), path
    assert list(validator.iter_errors({"environment": "gstg"}))  # missing keys are caught


def test_project_gitlab_ci_is_valid_and_publishes_the_reports() -> None:
    path = REPO_ROOT / ".gitlab-ci.yml"
    pipeline = _plain(path)
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(pipeline))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    job = pipeline["pdmpolicy"]
    assert "nox -s mr" in job["script"]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"  # reports are kept when the job fails
    assert artifacts["reports"] == {
        "junit": "reports/junit.xml",
        "codequality": "reports/codequality.json",
    }
    assert "reports/note.md" in artifacts["paths"]
    conditions = [rule["if"] for rule in pipeline["workflow"]["rules"]]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in conditions
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in conditions  # Code Quality's base
    for session in ("lint", "typing", "tests"):
        assert any(f"nox -s {session}" in line for line in pipeline[session]["script"])
