"""Fixtures of the e2e tests: the gitlab-ci-local to run, and the rendered cases.

The tests are marked `e2e` and skipped unless PDMPOLICY_E2E=1, which the `e2e` nox session
sets after installing the tools (tests/e2e/install.sh). With PDMPOLICY_E2E=1 a missing tool
is a failure, never a skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.cases import Case, Sources


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "e2e: runs rendered pipelines in gitlab-ci-local; run by `nox -s e2e` "
        "(or PDMPOLICY_E2E=1 after `bash tests/e2e/install.sh`)",
    )


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    tool = harness.find_gitlab_ci_local()
    if tool is None or not tool.is_file():
        pytest.fail(
            "gitlab-ci-local is not installed: run `bash tests/e2e/install.sh` "
            f"(or set {harness.TOOL_ENV}); the e2e session does this itself",
            pytrace=False,
        )
    if shutil.which("rsync") is None:
        pytest.fail(
            "rsync is missing (gitlab-ci-local copies job directories with it): run "
            "`bash tests/e2e/install.sh`",
            pytrace=False,
        )
    return tool


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return Sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture
def case(request: pytest.FixtureRequest, sources: Sources) -> Case:
    return sources.case(request.param)
