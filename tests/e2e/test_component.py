"""The CI/CD component in gitlab-ci-local: a scratch deploy project includes
templates/pdmpolicy.yml (locally, with inputs: gitlab-ci-local cannot resolve a component
reference) and gets the policy job, which passes a safe project and fails an unsafe one with
its reports. The job installs this working tree's pdmpolicy with pip, from wheels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pdmpolicy.cli import main
from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import REPO_ROOT
from tests.worktree import wheels_and_python

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PDMPOLICY_E2E") != "1",
        reason="end-to-end: run `nox -s e2e` (or PDMPOLICY_E2E=1 after tests/e2e/install.sh)",
    ),
]

INCLUDE = """\
include:
  - local: templates/pdmpolicy.yml
    inputs:
      stage: policy
      reports: out
stages: [policy]
"""
UNSAFE = changed(GSTG, "    timeout: 10h\n  gstg-k", "    timeout: 10h\n    retry: 1\n  gstg-k")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return wheels_and_python(tmp_path_factory.mktemp("component-runner"))


class Project:
    def __init__(self, root: Path, tool: Path, runner: tuple[Path, Path]) -> None:
        self.root, self.tool, (self.bin, self.wheels) = root, tool, runner
        (root / "templates").mkdir(parents=True)
        shutil.copy(REPO_ROOT / "templates/pdmpolicy.yml", root / "templates")
        (root / "environments").mkdir()
        (root / "policies").mkdir()
        (root / "policies/default.yml").write_text("policies: {}\n", encoding="utf-8")
        (root / ".gitlab-ci.yml").write_text(INCLUDE, encoding="utf-8")
        (root / "environments/gstg.yml").write_text(GSTG, encoding="utf-8")
        cwd = Path.cwd()
        os.chdir(root)
        try:
            assert main(["render"]) == 0
        finally:
            os.chdir(cwd)
        self.git("init", "-q", "-b", "main")
        self.commit()
        self.git("remote", "add", "origin", "https://gitlab.example.com/release/deploy.git")
        self.git("update-ref", "refs/remotes/origin/main", "HEAD")
        self.git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONPATH" and not k.startswith(("CI_", "GITLAB_", "PDMPOLICY_"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["HOME"] = str(self.root.parent / "home")
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        return env

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True)

    def commit(self) -> None:
        self.git("add", "-A")
        self.git("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "x")

    def gitlab_ci_local(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tool), "--no-color", "--home", str(self.root.parent / "home"),
             "--force-shell-executor", "--shell-isolation",
             "--variable", f"PIP_FIND_LINKS={self.wheels}", "--variable", "PIP_NO_INDEX=1",
             *args],
            cwd=self.root, capture_output=True, text=True, env=self.env(), timeout=300,
            check=False,
        )  # fmt: skip

    def report(self, name: str) -> str:
        return (self.root / ".gitlab-ci-local/builds/pdmpolicy/out" / name).read_text()


@pytest.fixture
def project(tmp_path: Path, gitlab_ci_local: Path, runner: tuple[Path, Path]) -> Project:
    return Project(tmp_path / "deploy", gitlab_ci_local, runner)


def test_including_the_component_adds_the_policy_job(project: Project) -> None:
    listed = project.gitlab_ci_local("--list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["pdmpolicy", "policy", "on_success", "false", "[]"] in rows
    merge_request = project.gitlab_ci_local(
        "--list",
        "--variable", "CI_PIPELINE_SOURCE=merge_request_event",
        "--variable", "PDMPOLICY_GITLAB_TOKEN=secret",
    )  # fmt: skip
    assert any(
        row[:1] == ["pdmpolicy-note"] for row in map(str.split, merge_request.stdout.splitlines())
    )


def test_policy_job_passes_a_safe_project(project: Project) -> None:
    run = project.gitlab_ci_local("pdmpolicy")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  pdmpolicy" in run.stdout
    assert "ci/ is up to date" in run.stdout
    assert json.loads(project.report("codequality.json")) == []
    assert "<testcase" in project.report("junit.xml")


def test_policy_job_fails_an_unsafe_change_with_its_reports(project: Project) -> None:
    (project.root / "environments/gstg.yml").write_text(UNSAFE, encoding="utf-8")
    project.commit()
    run = project.gitlab_ci_local("pdmpolicy")
    assert run.returncode != 0
    assert "error pdm-no-auto-retry:" in run.stdout
    issues = json.loads(project.report("codequality.json"))
    assert "pdm-no-auto-retry" in {issue["check_name"] for issue in issues}
    assert "<failure" in project.report("junit.xml")
