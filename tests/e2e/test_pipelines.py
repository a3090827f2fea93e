"""Run what we emit: the rendered pipelines, executed by gitlab-ci-local.

For every shipped environment and one environment per rollout step (tests/e2e/cases.py),
the files `pdmpolicy render` writes are run by gitlab-ci-local with its shell executor,
with stub `k-ctl` and `deploy-vms` programs that record their arguments and environment.
What is proven, and what gitlab-ci-local does not model, is in docs/e2e.md.

The `assert_*` functions are the checks; the `test_control_*` tests feed them pipelines
broken on purpose (no `env -u`, no `needs`) to show that they fail when they should.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from pdmpolicy.core import names
from pdmpolicy.policyset.toolchain import DEFAULT
from tests.e2e import harness
from tests.e2e.cases import PARENT, STEP_EXECUTORS, TODAY, Case, case_ids, kctl_argv
from tests.e2e.cases import kctl_variables as declared_kctl_variables
from tests.e2e.harness import TRIGGER_VARIABLES, Run, Workspace

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PDMPOLICY_E2E") != "1",
        reason="end-to-end: run `nox -s e2e` (or PDMPOLICY_E2E=1 after tests/e2e/install.sh)",
    ),
]

CASES = pytest.mark.parametrize("case", case_ids(), indirect=True)

WAIT = DEFAULT.kubernetes.wait
"""How the shipped (default) toolchain makes k-ctl wait: the `WAIT_FOR_JOBS=true` input."""


# --- the checks ---------------------------------------------------------------------------


def assert_each_job_ran_once(run: Run, case: Case) -> None:
    """Every job of the child pipeline ran its one command exactly once, and nothing else ran."""
    jobs = sorted(job.name for job in case.view.pipeline.jobs)
    ran = sorted(str(call.job) for call in run.calls)
    assert ran == jobs, f"jobs that called a stub: {ran}, pipeline jobs: {jobs}\n{run.explain()}"


def assert_executors_in_policy_order(run: Run, case: Case) -> None:
    """The executors that ran are those the policy and the analysis say, in that order, each
    once, each starting only after the one before it had finished."""
    observed = [(call.executor_kind, call.job) for call in run.executor_calls]
    expected = case.expected_executors
    kinds = STEP_EXECUTORS[case.environment.step]
    assert tuple(kind for kind, _ in expected) == kinds, (
        f"pdmpolicy's analysis orders the executors {expected}, but step "
        f"{case.environment.step} requires {kinds}"
    )
    assert observed == expected, (
        f"executors ran as {observed}, expected {expected}\n{run.explain()}"
    )
    for before, after in zip(run.executor_calls, run.executor_calls[1:], strict=False):
        assert after.start >= before.end, (
            f"{after.describe()} started {before.end - after.start:.2f}s before "
            f"{before.describe()} ended\n{run.explain()}"
        )


def assert_trigger_variables_never_reach_the_tools(run: Run) -> None:
    """AUTO_DEPLOY and GITLAB_IMAGE_TAG were in the job's environment (the pipeline variables
    arrived), and neither reached k-ctl or the VM tooling."""
    assert run.calls, f"no stub was called\n{run.explain()}"
    for call in run.calls:
        for name, value in TRIGGER_VARIABLES.items():
            assert call.parent_env.get(name) == value, (
                f"the job shell of {call.job} did not receive {name} from gitlab-ci-local; "
                f"the test would prove nothing\n{run.explain()}"
            )
            assert name not in call.env, (
                f"{call.describe()} sees {name}={call.env[name]!r} (a pipeline variable)\n"
                f"{run.explain()}"
            )


def assert_kctl_gets_declared_flags(run: Run, case: Case) -> None:
    """k-ctl's argv is what the environment file declares, SKIP_POST_DEPLOYMENT_MIGRATIONS is
    "false" for executors, and the declared variables (and WAIT_FOR_JOBS) are set."""
    kctl_calls = [call for call in run.calls if call.program == names.KCTL]
    declared = [job.name for job in case.environment.jobs if job.kctl is not None]
    assert sorted(str(c.job) for c in kctl_calls) == sorted(declared), run.explain()
    for call in kctl_calls:
        job = str(call.job)
        assert list(call.argv) == kctl_argv(case.environment, job), call.describe()
        variables = declared_kctl_variables(case.environment, job)
        for name, value in variables.items():
            assert call.env.get(name) == value, f"{call.describe()}: {name}={call.env.get(name)!r}"
        if WAIT.variable not in variables:
            assert WAIT.variable not in call.env, call.describe()
        if call.executor_kind:
            assert call.env.get(names.SKIP_VARIABLE) == "false", (
                f"{call.describe()}: {names.SKIP_VARIABLE}={call.env.get(names.SKIP_VARIABLE)!r}"
            )
    for call in run.calls:
        if call.program == names.VM_TOOL:
            job = case.environment.job(str(call.job))
            for name, value, _ in job.variables:
                assert call.env.get(name) == value, f"{call.describe()}: {name}"


def assert_failure_stops_later_executors(run: Run, failing: str, case: Case) -> None:
    """The failing executor ran once, no executor after it started, the pipeline failed."""
    order = [job for _, job in case.expected_executors]
    later = order[order.index(failing) + 1 :]
    attempts = [call for call in run.calls if call.job == failing]
    assert len(attempts) == 1 and attempts[0].exit == 1, run.explain()
    started = [str(call.job) for call in run.executor_calls if call.job in later]
    assert not started, f"{started} ran after {failing} failed\n{run.explain()}"
    assert run.code != 0, f"the pipeline passed although {failing} failed\n{run.explain()}"


def success_edges(listing: list[dict[str, Any]], waits: dict[str, set[str]]) -> dict[str, set[str]]:
    """GitLab's rule for "b starts only after a succeeded": b runs on_success (or is
    manual/delayed) and a may not fail (allow_failure false)."""
    allow = {job["name"]: job["allow_failure"] for job in listing}
    return {
        job["name"]: (
            {a for a in waits[job["name"]] if allow[a] is False}
            if job["when"] in ("on_success", "manual", "delayed")
            else set()
        )
        for job in listing
    }


def assert_listing_agrees(listing: list[dict[str, Any]], stages: list[str], case: Case) -> None:
    """gitlab-ci-local's own reading of the child file (jobs, when, allow_failure, needs,
    stages) gives the same order, and the same "only after success", as pdmpolicy's."""
    analysis = case.view.analysis
    jobs = {job.name: job for job in case.view.pipeline.jobs}
    assert sorted(job["name"] for job in listing) == sorted(jobs), listing
    for entry in listing:
        job = jobs[entry["name"]]
        assert entry["when"] == job.when, entry
        assert entry["allow_failure"] is job.allow_failure, entry
    waits = harness.waits_from_listing(listing, stages)
    pdmpolicy_waits = {name: set(before) for name, before in analysis.direct_predecessors.items()}
    assert waits == pdmpolicy_waits, (
        f"gitlab-ci-local reads 'waits for' as {waits}, pdmpolicy as {pdmpolicy_waits}"
    )
    after_success = harness.closure(success_edges(listing, waits))
    assert after_success == dict(analysis.after_success), (
        f"gitlab-ci-local: only after success {after_success}, pdmpolicy: "
        f"{dict(analysis.after_success)}"
    )


# --- the tests ----------------------------------------------------------------------------


@CASES
def test_gitlab_ci_local_validates_and_orders_jobs_as_pdmpolicy(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    workspace = Workspace(tmp_path, case.files, gitlab_ci_local)
    # --list-json parses and validates (GitLab's CI JSON Schema) before listing.
    listing = workspace.list_json(case.child)
    stages = workspace.preview(case.child).get("stages")
    assert_listing_agrees(listing, stages, case)
    check = workspace.gitlab_ci_local("--file", case.child, "--validate-dependency-chain")
    assert check.code == 0, check.explain()
    # `pdmpolicy explain` lists every job after everything gitlab-ci-local makes it wait for.
    order = harness.explain_order(case.source, case.environment.name, TODAY)
    waits = harness.closure(harness.waits_from_listing(listing, stages))
    assert sorted(order) == sorted(job["name"] for job in listing), order
    for job, before in waits.items():
        assert all(order.index(b) < order.index(job) for b in before), (job, before, order)


@CASES
def test_parent_selects_only_this_environment(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    workspace = Workspace(tmp_path, case.files, gitlab_ci_local)
    selector = f"DEPLOY_ENVIRONMENT={case.environment.name}"
    listing = workspace.list_json(PARENT, "--variable", selector)
    active = [job["name"] for job in listing if job["when"] != "never"]
    triggers = workspace.preview(PARENT)
    assert len(active) == 1, listing
    include = triggers[active[0]]["trigger"]["include"]
    assert include == [{"local": case.child}], include
    nothing = workspace.list_json(PARENT, "--variable", "DEPLOY_ENVIRONMENT=no-such-environment")
    assert all(job["when"] == "never" for job in nothing), nothing


@CASES
def test_pipeline_runs_executors_in_order_without_trigger_variables(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    run = Workspace(tmp_path, case.files, gitlab_ci_local).pipeline(case.child)
    assert run.code == 0, run.explain()
    assert_each_job_ran_once(run, case)
    assert_executors_in_policy_order(run, case)
    assert_trigger_variables_never_reach_the_tools(run)
    assert_kctl_gets_declared_flags(run, case)


@CASES
def test_parent_pipeline_runs_the_child_in_order(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    """Through the parent's trigger (gitlab-ci-local runs `trigger: include` children)."""
    variables = {"DEPLOY_ENVIRONMENT": case.environment.name, **TRIGGER_VARIABLES}
    workspace = Workspace(tmp_path, case.files, gitlab_ci_local)
    run = workspace.pipeline(PARENT, variables=variables)
    assert run.code == 0, run.explain()
    assert_each_job_ran_once(run, case)
    assert_executors_in_policy_order(run, case)
    assert_kctl_gets_declared_flags(run, case)
    for call in run.calls:
        for name in TRIGGER_VARIABLES:
            assert name not in call.env, call.describe()


@CASES
def test_failing_first_executor_stops_the_rest(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    first = case.expected_executors[0][1]
    workspace = Workspace(tmp_path, case.files, gitlab_ci_local, fail_jobs=[first])
    run = workspace.pipeline(case.child)
    assert_failure_stops_later_executors(run, first, case)


# --- controls: the checks fail on pipelines broken on purpose ------------------------------


def _edited(case: Case, edit: Any) -> dict[str, bytes]:
    """The case's files with the child pipeline changed by `edit(job_mapping)` per job."""
    yaml = YAML()
    files = dict(case.files)
    data = yaml.load(files[case.child].decode("utf-8"))
    for key, job in data.items():
        if isinstance(job, dict) and "script" in job:
            edit(key, job)
    out = StringIO()
    yaml.dump(data, out)
    files[case.child] = out.getvalue().encode("utf-8")
    return files


def _without_env_u(words: Iterable[str]) -> list[str]:
    words = list(words)
    if words and words[0] == "env":
        index = 1
        while index + 1 < len(words) and words[index] == "-u":
            index += 2
        words = words[index:]
    return words


@pytest.mark.parametrize("case", ["step-kubernetes-first"], indirect=True)
def test_control_dropping_env_u_is_caught(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    def drop(_: str, job: Any) -> None:
        job["script"] = [shlex.join(_without_env_u(shlex.split(line))) for line in job["script"]]

    files = _edited(case, drop)
    assert b"env -u" not in files[case.child]
    run = Workspace(tmp_path, files, gitlab_ci_local).pipeline(case.child)
    assert run.code == 0, run.explain()
    with pytest.raises(AssertionError, match="sees AUTO_DEPLOY='true'"):
        assert_trigger_variables_never_reach_the_tools(run)


@pytest.mark.parametrize(
    "case", ["step-kubernetes-first", "step-kubernetes-after-vm"], indirect=True
)
def test_control_dropping_needs_is_caught(
    case: Case, gitlab_ci_local: Path, tmp_path: Path
) -> None:
    def drop(_: str, job: Any) -> None:
        job.pop("needs", None)

    files = _edited(case, drop)
    workspace = Workspace(tmp_path, files, gitlab_ci_local)
    listing = workspace.list_json(case.child)
    with pytest.raises(AssertionError, match="waits for"):
        assert_listing_agrees(listing, workspace.preview(case.child).get("stages"), case)
    first = case.expected_executors[0][1]
    failing = Workspace(tmp_path / "failing", files, gitlab_ci_local, fail_jobs=[first])
    with pytest.raises(AssertionError, match="ran after"):
        assert_failure_stops_later_executors(failing.pipeline(case.child), first, case)
    run = Workspace(tmp_path / "passing", files, gitlab_ci_local).pipeline(case.child)
    with pytest.raises(AssertionError, match=r"executors ran as|started"):
        assert_executors_in_policy_order(run, case)
