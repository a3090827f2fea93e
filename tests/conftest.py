"""Shared fixtures: throwaway repositories and an in-process CLI runner.

Hypothesis profiles: `dev` (default, quick) and `ci` (derandomized, many more examples),
chosen with HYPOTHESIS_PROFILE; `.ci/run` uses `ci`.

Tests that install pdmpolicy (the pre-commit hooks, the example plugin, the CI/CD
component's job) share one wheelhouse per session and are marked
`xdist_group("installs")`: with `pytest -n N --dist loadgroup` (the `tests` nox session)
they run on one worker, which builds the wheels once.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from pdmpolicy.cli import main

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str


class Repo:
    """A temporary repository layout: environments/, policies/, ci/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "environments").mkdir()
        (root / "policies").mkdir()

    def env(self, name: str, text: str | bytes) -> Path:
        path = self.root / "environments" / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def policies(self, text: str, name: str = "policies.yml") -> Path:
        path = self.root / "policies" / name
        path.write_text(text, encoding="utf-8")
        return path

    def files(self, files: dict[str, str]) -> list[str]:
        """Write documentation-style examples: `policies*.yml` to policies/, others to
        environments/; `base:<name>` files are committed first, as the merge request's
        target. Returns the extra arguments `check` needs (`--base HEAD` when there is a
        base)."""
        base = {k.removeprefix("base:"): v for k, v in files.items() if k.startswith("base:")}
        if base:
            for name, text in base.items():
                self.env(name, text)
            self.commit("base")
            for name in base:
                (self.root / "environments" / name).unlink()
        for name, text in files.items():
            if name.startswith("base:"):
                continue
            if name.startswith("policies"):
                self.policies(text, name)
            else:
                self.env(name, text)
        return ["--base", "HEAD"] if base else []

    def commit(self, message: str) -> None:
        """Commit everything in the repository (creating it on first use)."""
        if not (self.root / ".git").exists():
            self.git("init", "-q")
        self.git("add", "-A")
        self.git(
            "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", message
        )

    def git(self, *args: str) -> None:
        subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True)


INSTALLS = pytest.mark.xdist_group("installs")
"""The mark of a module whose tests install pdmpolicy from the `wheelhouse`."""


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it too; without xdist (`-p no:xdist`) --strict-markers still passes.
    config.addinivalue_line("markers", "xdist_group(name): run the group on one xdist worker")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree's pdmpolicy, its dependencies and setuptools as wheels, built once."""
    from tests.worktree import build_wheelhouse

    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    monkeypatch.chdir(tmp_path)
    yield Repo(tmp_path)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `pdmpolicy ARGS...` in-process in the current directory."""

    def runner(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return runner
