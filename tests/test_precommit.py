"""The pre-commit hooks (.pre-commit-hooks.yaml), run by pre-commit itself.

pre-commit installs this repository (the working tree as it is, as one commit) into its own
virtual environment with pip (its dependencies and build backend from the session's
wheelhouse, no index), and runs the hooks in a scratch deploy project: once with
`pre-commit try-repo` (how a hook author tries a hook), then with the configuration the
README shows and `pre-commit run --all-files`, as a user's commit runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pdmpolicy.cli import main
from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import INSTALLS, REPO_ROOT, Repo
from tests.worktree import copy_working_tree

PRE_COMMIT = shutil.which("pre-commit")
README_URL = "https://gitlab.example.com/release-tools/pdmpolicy"
README_REV = "v0.1.0"
README_CONFIG = (
    (REPO_ROOT / "README.md")
    .read_text(encoding="utf-8")
    .split("```yaml\n# .pre-commit-config.yaml\n", 1)[1]
    .split("```", 1)[0]
)
"""The configuration the README tells users to write, with its URL and rev replaced."""
pytestmark = [
    pytest.mark.skipif(
        PRE_COMMIT is None, reason="pre-commit is not installed (pip install -e '.[test]')"
    ),
    INSTALLS,
]

RETRIED = changed(
    GSTG, "    timeout: 10h\n  gstg-kubernetes", "    timeout: 10h\n    retry: 1\n  gstg-kubernetes"
)


def test_hooks_take_no_file_names_and_watch_the_inputs() -> None:
    hooks = YAML(typ="safe").load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {hook["id"]: hook["entry"] for hook in hooks} == {
        "pdmpolicy-check": "pdmpolicy check",
        "pdmpolicy-render-check": "pdmpolicy render --check",
    }
    for hook in hooks:
        assert hook["pass_filenames"] is False
        for path in (
            "environments/gstg.yml",
            "policies/default.yml",
            "ci/postdeploy-migrations.yml",
        ):
            assert re.search(hook["files"], path), (hook["id"], path)
        assert not re.search(hook["files"], "src/app.yml")


@pytest.fixture(scope="module")
def hook_repo(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> tuple[Path, Path, Path]:
    """This working tree as one commit, a pre-commit home for the module, and the wheels
    pip installs the hook's environment from.

    try-repo on a tree with uncommitted changes makes a new commit every run, and
    pre-commit builds a new hook environment for each; one fixed commit is built once.
    """
    root = copy_working_tree(tmp_path_factory.mktemp("hook-repo"), commit=True)
    return root, tmp_path_factory.mktemp("pre-commit-home"), wheelhouse


def _pre_commit(
    project: Path, hook_repo: tuple[Path, Path, Path], hook: str, *, try_repo: bool = False
) -> subprocess.CompletedProcess[str]:
    assert PRE_COMMIT is not None
    source, home, wheels = hook_repo
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_INDEX": "1",
    }
    env.pop("PYTHONPATH", None)  # the hook runs the pdmpolicy pre-commit installed, no other
    if try_repo:
        # try-repo builds its environment in a temporary store every time: used once.
        command = ["try-repo", str(source), hook]
    else:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True
        ).stdout.strip()
        (project / ".pre-commit-config.yaml").write_text(
            README_CONFIG.replace(README_URL, str(source)).replace(README_REV, rev),
            encoding="utf-8",
        )
        command = ["run", hook]
    return subprocess.run(
        [PRE_COMMIT, *command, "--all-files", "--verbose"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def _deploy_project(repo: Repo, environment: str) -> None:
    """A deploy project: one environment, its rendered ci/, all committed."""
    repo.env("gstg.yml", GSTG)
    assert main(["render"]) == 0
    repo.env("gstg.yml", environment)
    repo.commit("deploy project")


def test_try_repo_runs_the_check_hook_and_it_fails_on_an_unsafe_change(
    repo: Repo, hook_repo: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy_project(repo, RETRIED)
    capsys.readouterr()
    result = _pre_commit(repo.root, hook_repo, "pdmpolicy-check", try_repo=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error pdm-no-auto-retry:" in result.stdout


@pytest.mark.parametrize("hook", ["pdmpolicy-check", "pdmpolicy-render-check"])
def test_hook_passes_on_a_safe_project(
    hook: str, repo: Repo, hook_repo: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy_project(repo, GSTG)
    capsys.readouterr()
    result = _pre_commit(repo.root, hook_repo, hook)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


@pytest.mark.parametrize("hook", ["pdmpolicy-check", "pdmpolicy-render-check"])
def test_hook_fails_on_an_unsafe_change(
    hook: str, repo: Repo, hook_repo: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy_project(repo, RETRIED)
    capsys.readouterr()
    result = _pre_commit(repo.root, hook_repo, hook)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout
    assert "error pdm-no-auto-retry:" in result.stdout
