"""Sessions CI runs: lint, typing, tests, and the main job `check`."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.needs_version = ">=2024.4.15"

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint and format-check the code with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """Type-check the package with mypy in strict mode."""
    session.install("-e", ".[dev]")
    session.run("mypy")


WHOLE_SUITE = ("-n", "auto", "--dist", "loadgroup")
"""pytest-xdist: one worker per core; the tests that install pdmpolicy share a worker (their
`xdist_group`), which builds the wheels once. Only for the whole suite: a worker's start-up
costs more than it saves on a few test files, so `nox -s tests -- ARGS` runs ARGS as given."""


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (hypothesis profile from HYPOTHESIS_PROFILE, default `dev`)."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or WHOLE_SUITE))


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Fuzz readers, schema, policies and prover on both cores (FUZZ_EXAMPLES per target)."""
    session.install("-e", ".[test]", "atheris")
    session.run("python", "tests/fuzz/run.py", *session.posargs)


@nox.session(python=PYTHON)
def mr(session: nox.Session) -> None:
    """Merge-request job: check with every report, against the target branch when known."""
    session.install(".")
    args = [
        "check",
        "--report", "junit=reports/junit.xml",
        "--report", "codequality=reports/codequality.json",
        "--report", "markdown=reports/note.md",
    ]  # fmt: skip
    base = os.environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
    if base:
        args += ["--base", base]
    project, commit = os.environ.get("CI_PROJECT_URL"), os.environ.get("CI_COMMIT_SHA")
    if project and commit:
        args += ["--link-base", f"{project}/-/blob/{commit}"]
    session.run("pdmpolicy", *args)


@nox.session(python=PYTHON)
def check(session: nox.Session) -> None:
    """The main job: check the shipped environments and fail when ci/ is stale."""
    session.install(".")
    session.run("pdmpolicy", "check")
    session.run("pdmpolicy", "render", "--check")


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """Run the rendered pipelines in gitlab-ci-local (installs it, Node 22 and rsync first)."""
    session.run("bash", "tests/e2e/install.sh", external=True)
    session.install("-e", ".[test]")
    # Each test runs gitlab-ci-local in its own temporary directory: on two cores 115 s
    # instead of 162 s for the 43 tests (measured in a fresh clone).
    args = session.posargs or WHOLE_SUITE
    session.run("pytest", "tests/e2e", *args, env={"PDMPOLICY_E2E": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py, to the screen and reports/benchmarks.md (docs/performance.md).

    check-jsonschema is installed to time `verify` beside it; offline, that row is skipped.
    """
    session.install(".")
    session.run_install(
        "python", "-m", "pip", "install", "--quiet", "check-jsonschema", success_codes=[0, 1]
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
