"""pdm-at-most-once: each way GitLab can run PDMs twice is rejected with a counterexample that
names it and points at the responsible setting; the safe orderings of every rollout step are
accepted. The prover's verdicts and counterexample lengths are checked against the explorer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import parse_document
from pdmpolicy.environments.lower import lower
from pdmpolicy.environments.model import build_environment
from pdmpolicy.environments.schema import check_references, validate_shape
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import Choice, Pipeline
from pdmpolicy.policies.examples import GSTG, GSTG_CNY, GSTG_CNY_EXECUTOR, GSTG_FIRST, changed
from pdmpolicy.prover import counterexample as mechanisms
from pdmpolicy.prover.counterexample import Counterexample
from pdmpolicy.prover.explorer import explore
from pdmpolicy.prover.model import (
    RESULT_FAILED,
    RESULT_SKIPPED,
    RESULT_SUCCESS,
    SYM_FAILED,
    SYM_IGNORED,
    SYM_INCOMPLETE,
    SYM_SKIPPED,
    SYM_SUCCESS,
    SYM_WARNED,
    Event,
    ExecutionModel,
    InvalidRun,
    Kind,
    Status,
    composite,
    valid,
)
from pdmpolicy.prover.prover import Proof, prove
from tests.strategies import ci_job, job_loc, pipeline_of

REPO = Path(__file__).resolve().parent.parent
VM = "gstg-vm-post-deploy-migrations"
K8S = "gstg-kubernetes-post-deploy-migrations"


def lowered(text: str, name: str = "gstg") -> Pipeline:
    """The pipeline `check` would prove for this environment file."""
    path = f"environments/{name}.yml"
    doc = parse_document(path, text.encode())
    assert validate_shape(doc) == []
    assert check_references(doc, name) == []
    return lower(build_environment(doc))


def line_of(text: str, needle: str, after: str = "") -> int:
    """1-based line of the first `needle` after the line holding `after`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def rejected(pipeline: Pipeline, *, shortest: bool = True) -> Proof:
    """Prove, check the verdict against the explorer, that every counterexample replays, and
    that the first one is a shortest one."""
    proof = prove(pipeline)
    explored = explore(pipeline)
    assert not explored.truncated
    assert not proof.safe, "the prover accepted an unsafe pipeline"
    assert explored.counterexample is not None
    if shortest:
        assert len(proof.violations[0]) == len(explored.counterexample)
    model = ExecutionModel(pipeline)
    for found in proof.violations:
        breaches = model.replay(found.variant, found.steps)
        assert breaches[-1] == found.breach
    return proof


def accepted(pipeline: Pipeline) -> None:
    proof = prove(pipeline)
    assert proof.safe, "\n".join(v.describe() for v in proof.violations)
    assert proof.complete
    assert explore(pipeline).safe


def only(proof: Proof, mechanism: str) -> Counterexample:
    found = [v for v in proof.violations if v.mechanism == mechanism]
    assert found, [v.mechanism for v in proof.violations]
    return found[0]


# -- each way of running PDMs twice ---------------------------------------------------------


def test_auto_retry_on_an_executor() -> None:
    text = changed(
        GSTG,
        "    timeout: 10h\n  gstg-kubernetes",
        "    timeout: 10h\n    retry: 1\n  gstg-kubernetes",
    )
    proof = rejected(lowered(text))
    found = only(proof, mechanisms.RETRY)
    assert found.loc.line == line_of(text, "retry: 1")
    assert found.jobs == (VM,)
    assert [(e.kind, e.job, e.attempt) for e in found.steps] == [
        (Kind.START, VM, 1),
        (Kind.FAIL_RETRIED, VM, 1),
        (Kind.RETRY, VM, 2),
    ]
    assert found.summary() == (
        f"1. {VM} attempt 1 starts and fails (GitLab retries it automatically); "
        f"2. retry: {VM} attempt 2 starts: PDMs run a second time after a failure"
    )
    assert "retried automatically (retry: 1)" in found.describe()


@pytest.mark.parametrize(
    ("where", "loc"),
    [
        ("default: retry", Loc(".gitlab-ci.yml", 3, 10)),
        ("extends: .pdm-template", Loc(".gitlab-ci.yml", 8, 10)),
        ("an anchor", Loc(".gitlab-ci.yml", 12, 3)),
    ],
)
def test_inherited_retry_points_at_where_it_comes_from(where: str, loc: Loc) -> None:
    # The loader resolves default:, extends and anchors: the job's effective retry is 2 and
    # its `retry` loc points at the text that gave it.
    locs = {"retry": loc}
    pipeline = pipeline_of(
        ci_job("vm-pdm", executor=True, retry=2, locs=locs),
        ci_job("k8s-pdm", index=1, executor=True, needs=["vm-pdm"]),
    )
    found = only(rejected(pipeline), mechanisms.RETRY)
    assert found.loc == loc, where
    assert "retry: 2" in found.message


@pytest.mark.parametrize("when", ["always", "on_failure"])
def test_an_executor_that_runs_after_a_failed_executor(when: str) -> None:
    text = changed(
        GSTG,
        "    needs: [gstg-vm-post-deploy-migrations]\n",
        f"    needs: [gstg-vm-post-deploy-migrations]\n    when: {when}\n",
    )
    proof = rejected(lowered(text))
    found = only(proof, mechanisms.WHEN)
    assert found.loc.line == line_of(text, f"when: {when}")
    assert f"when: {when}" in found.message
    assert found.summary() == (
        f"1. {VM} attempt 1 starts and fails; "
        f"2. {K8S} attempt 1 starts: PDMs start again after {VM} failed"
    )


def test_allow_failure_on_the_first_executor() -> None:
    text = changed(
        GSTG,
        "    timeout: 10h\n  gstg-kubernetes",
        "    timeout: 10h\n    allow_failure: true\n  gstg-kubernetes",
    )
    found = only(rejected(lowered(text)), mechanisms.ALLOW_FAILURE)
    assert found.loc.line == line_of(text, "allow_failure: true")
    assert found.breach.other == VM
    assert "allow_failure: true" in found.message


def test_two_executors_in_one_stage_without_needs() -> None:
    text = changed(GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", "")
    proof = rejected(lowered(text))
    found = only(proof, mechanisms.SAME_STAGE)
    assert "same stage (deploy)" in found.message
    assert set(found.jobs) == {VM, K8S}
    # Both jobs hold the database's resource group, so they cannot overlap: the run goes
    # through a failure instead.
    assert [e.kind for e in found.steps] == [Kind.START, Kind.FAIL, Kind.START]


def test_a_manual_executor_left_unordered() -> None:
    text = changed(GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", "    when: manual\n")
    found = only(rejected(lowered(text)), mechanisms.MANUAL_JOB)
    assert found.loc.line == line_of(text, "when: manual")
    assert "manual job" in found.message and "played at any moment" in found.message


def test_a_missing_needs() -> None:
    text = changed(
        GSTG,
        "    needs: [gstg-vm-post-deploy-migrations]\n",
        "    stage: .post\n    needs: []\n",
    )
    found = only(rejected(lowered(text)), mechanisms.MISSING_NEEDS)
    assert found.loc.line == line_of(text, "needs: []")
    assert f"does not wait for {VM}" in found.message


def test_needs_that_skip_the_first_executor() -> None:
    # The Kubernetes job waits only for the dry run, which does not wait for the VM job.
    text = changed(
        GSTG,
        "    needs: [gstg-vm-post-deploy-migrations]\n",
        "    stage: .post\n    needs: [gstg-dry-run]\n",
    ) + (
        "  gstg-dry-run:\n    runner: kubernetes\n    needs: []\n    kctl:\n"
        "      environment: gstg\n      action: upgrade\n      dry_run: true\n"
    )
    found = only(rejected(lowered(text)), mechanisms.MISSING_NEEDS)
    assert "its needs (gstg-dry-run)" in found.message


GATED = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: kubernetes-after-vm
  since: 2026-11-16
jobs:
  gstg-approve:
    runner: generic
    stage: build
    when: manual
    allow_failure: true
    script: ["echo approved"]
  gstg-vm-post-deploy-migrations:
    runner: vm
    needs: [gstg-approve]
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
  gstg-kubernetes-post-deploy-migrations:
    runner: kubernetes
    stage: .post
    kctl:
      environment: gstg
      action: upgrade
      wait_for_jobs: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
    timeout: 10h
"""


def test_a_job_that_needs_an_unplayed_manual_job_runs_after_the_next_stage() -> None:
    # While gstg-approve is not played, GitLab shows the VM job as skipped, so the .post
    # stage starts; playing gstg-approve brings the VM job back.
    pipeline = lowered(GATED)
    found = only(rejected(pipeline), mechanisms.NEEDS_MANUAL)
    assert found.loc.line == line_of(GATED, "needs: [gstg-approve]")
    assert "gstg-approve" in found.jobs
    assert "gstg-approve is played" in found.summary()
    assert {found.breach.starter, found.breach.other} == {VM, K8S}
    # analysis.after_success orders the Kubernetes job after the VM job: it misses this.
    assert analyse(pipeline).ordered_after_success(VM, K8S)


def test_a_blocking_manual_gate_keeps_the_order() -> None:
    accepted(lowered(changed(GATED, "    allow_failure: true\n", "")))


def test_when_always_with_a_skipped_need_does_not_wait_for_the_others() -> None:
    # A `needs` job whose needs include a skipped job is processed at once (Composite: "The
    # DAG job is skipped if one of the needs does not run at all."): `always` starts it.
    pipeline = pipeline_of(
        ci_job("never-runs", stage="build", when="on_failure"),
        ci_job("vm-pdm", index=1, executor=True, stage="build", resource_group="db"),
        ci_job("k8s-pdm", index=2, executor=True, needs=["vm-pdm", "never-runs"], when="always"),
    )
    proof = rejected(pipeline)
    first = proof.violations[0]
    assert first.mechanism == mechanisms.WHEN
    assert first.breach.kind == "overlap"
    assert first.loc == job_loc(2, "when")


def test_rules_that_make_the_first_executor_manual() -> None:
    # One rule makes vm-pdm a manual job, whose allow_failure defaults to true.
    rule = Loc(".gitlab-ci.yml", 20, 7)
    pipeline = pipeline_of(
        ci_job(
            "vm-pdm",
            executor=True,
            choices=(Choice("on_success", False, rule), Choice("manual", True, rule)),
        ),
        ci_job("k8s-pdm", index=1, executor=True, stage=".post"),
    )
    proof = rejected(pipeline)
    found = only(proof, mechanisms.MANUAL_JOB)
    assert found.loc == rule
    assert "(rules: vm-pdm is in the pipeline with when: manual (.gitlab-ci.yml:20:7))" in (
        found.describe()
    )


def test_rules_that_make_the_second_executor_manual_keep_the_order() -> None:
    rule = Loc(".gitlab-ci.yml", 20, 7)
    pipeline = pipeline_of(
        ci_job("vm-pdm", executor=True),
        ci_job(
            "k8s-pdm",
            index=1,
            executor=True,
            stage=".post",
            choices=(Choice("on_success", False, rule), Choice("manual", True, rule)),
        ),
    )
    accepted(pipeline)


def test_every_violation_is_reported() -> None:
    text = changed(
        GSTG,
        "    needs: [gstg-vm-post-deploy-migrations]\n",
        "    needs: [gstg-vm-post-deploy-migrations]\n    when: always\n    retry: 2\n",
    )
    proof = rejected(lowered(text))
    assert {v.mechanism for v in proof.violations} == {mechanisms.RETRY, mechanisms.WHEN}
    assert [len(v) for v in proof.violations] == sorted(len(v) for v in proof.violations)


# -- the safe orderings of each rollout step ------------------------------------------------

VM_ONLY = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: vm
  since: 2026-11-16
jobs:
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""

DRY_RUN = (
    VM_ONLY.replace("step: vm", "step: dry-run")
    + """\
  gstg-kubernetes-dry-run:
    runner: kubernetes
    needs: []
    kctl:
      environment: gstg
      action: upgrade
      dry_run: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
"""
)

KUBERNETES_ONLY = GSTG_CNY_EXECUTOR.replace("gstg-cny", "gstg").replace("stage: cny", "stage: main")

SMOKE_BETWEEN = changed(
    GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", "    needs: [gstg-smoke-test]\n"
) + (
    "  gstg-smoke-test:\n    runner: generic\n    needs: [gstg-vm-post-deploy-migrations]\n"
    '    retry: 2\n    script: ["curl -f https://staging.gitlab.com"]\n'
)


@pytest.mark.parametrize(
    ("name", "text", "environment"),
    [
        ("vm", VM_ONLY, "gstg"),
        ("dry-run", DRY_RUN, "gstg"),
        ("dry-run (example)", GSTG_CNY, "gstg-cny"),
        ("kubernetes-after-vm", GSTG, "gstg"),
        ("kubernetes-after-vm, a retried smoke test between", SMOKE_BETWEEN, "gstg"),
        ("kubernetes-first", GSTG_FIRST, "gstg"),
        ("kubernetes-only", KUBERNETES_ONLY, "gstg"),
        ("kubernetes-only (example)", GSTG_CNY_EXECUTOR, "gstg-cny"),
        (
            "allow_failure on the last executor",
            GSTG + "    allow_failure: true\n",
            "gstg",
        ),
    ],
)
def test_safe_orderings_are_accepted(name: str, text: str, environment: str) -> None:
    accepted(lowered(text, environment))


@pytest.mark.parametrize(
    "file", sorted((REPO / "environments").glob("*.yml")), ids=lambda p: p.name
)
def test_shipped_environments_are_accepted(file: Path) -> None:
    accepted(lowered(file.read_text(encoding="utf-8"), file.stem))


def test_a_failure_between_executors_that_skips_the_second_is_safe() -> None:
    # The check between the executors may fail (allow_failure): then the Kubernetes job
    # still runs, but only after the VM job succeeded, because a failed VM job skips the
    # check, and a skipped need skips the Kubernetes job.
    pipeline = pipeline_of(
        ci_job("vm-pdm", executor=True),
        ci_job("check", index=1, needs=["vm-pdm"], allow_failure=True),
        ci_job("k8s-pdm", index=2, executor=True, needs=["check"]),
    )
    accepted(pipeline)
    # analysis.after_success does not see the order (allow_failure on `check` cuts it).
    assert not analyse(pipeline).ordered_after_success("vm-pdm", "k8s-pdm")


def test_an_on_failure_fallback_is_exclusive() -> None:
    # GitLab runs exactly one of the two: the fallback only when the check failed.
    pipeline = pipeline_of(
        ci_job("check", stage="build"),
        ci_job("k8s-pdm", index=1, executor=True, needs=["check"]),
        ci_job("vm-pdm", index=2, executor=True, needs=["check"], when="on_failure"),
    )
    accepted(pipeline)


def test_an_on_failure_fallback_after_a_retried_check_is_not_exclusive() -> None:
    # GitLab may process the check's failed attempt before creating its automatic retry
    # (the processing worker is enqueued first): the fallback is enqueued, and the retried
    # check then succeeds and lets k8s-pdm run too.
    pipeline = pipeline_of(
        ci_job("check", stage="build", retry=1),
        ci_job("k8s-pdm", index=1, executor=True, needs=["check"]),
        ci_job("vm-pdm", index=2, executor=True, needs=["check"], when="on_failure"),
    )
    found = rejected(pipeline).violations[0]
    assert "check attempt 1 starts and fails" in found.summary()
    assert "retry: check attempt 2 starts and succeeds" in found.summary()
    assert "before creating its automatic retry" in found.message


def test_an_explicit_executor_list_overrides_the_analysis() -> None:
    pipeline = pipeline_of(ci_job("a", retry=1), ci_job("b", index=1, needs=["a"]))
    assert prove(pipeline).safe
    assert not prove(pipeline, executors={"a"}).safe


# -- the counterexample -------------------------------------------------------------------


def test_describe_numbers_the_steps_and_names_the_setting() -> None:
    text = changed(
        GSTG,
        "    needs: [gstg-vm-post-deploy-migrations]\n",
        "    needs: [gstg-vm-post-deploy-migrations]\n    when: always\n",
    )
    found = only(prove(lowered(text)), mechanisms.WHEN)
    lines = found.describe().splitlines()
    assert lines[0] == found.message
    assert lines[1] == f"  1. {VM} attempt 1 starts and fails"
    assert lines[2] == f"  2. {K8S} attempt 1 starts: PDMs start again after {VM} failed"
    assert (
        lines[3]
        == f"  setting responsible: environments/gstg.yml:{found.loc.line}:{found.loc.column}"
    )


def test_an_overlap_is_described_as_one() -> None:
    pipeline = pipeline_of(
        ci_job("vm-pdm", executor=True),
        ci_job("k8s-pdm", index=1, executor=True, needs=[]),
    )
    found = prove(pipeline).violations[0]
    assert found.summary() == (
        "1. vm-pdm attempt 1 starts; 2. k8s-pdm attempt 1 starts: vm-pdm is still running: "
        "two PDM runs overlap"
    )


# -- the model --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "dag", "result"),
    [
        (0, False, RESULT_SUCCESS),
        (0, True, RESULT_SUCCESS),
        (SYM_SUCCESS | SYM_WARNED, True, RESULT_SUCCESS),
        (SYM_SUCCESS | SYM_IGNORED, False, RESULT_SUCCESS),
        (SYM_SUCCESS | SYM_IGNORED, True, RESULT_SKIPPED),
        (SYM_IGNORED, False, RESULT_SKIPPED),
        (SYM_SKIPPED | SYM_INCOMPLETE, True, RESULT_SKIPPED),
        (SYM_SKIPPED | SYM_INCOMPLETE, False, None),
        (SYM_FAILED | SYM_INCOMPLETE, False, None),
        (SYM_FAILED | SYM_SKIPPED, False, RESULT_FAILED),
        (SYM_FAILED | SYM_IGNORED, False, RESULT_FAILED),
    ],
)
def test_composite_status(mask: int, dag: bool, result: str | None) -> None:
    assert composite(mask, dag) == result


def test_valid_statuses() -> None:
    assert valid("on_success", False, RESULT_SKIPPED)
    assert not valid("on_success", True, RESULT_SKIPPED)
    assert valid("always", True, RESULT_FAILED)
    assert valid("on_failure", False, RESULT_FAILED)
    assert not valid("on_failure", False, RESULT_SUCCESS)
    assert not valid("manual", False, RESULT_FAILED)


def test_playing_a_manual_job_brings_back_the_jobs_skipped_for_it() -> None:
    model = ExecutionModel(lowered(GATED))
    inst = next(model.instances())
    state = model.initial(inst)
    vm, k8s, gate = (model.index[n] for n in (VM, K8S, "gstg-approve"))
    assert state.status[gate] == Status.MANUAL
    assert state.status[vm] == Status.SKIPPED
    assert state.status[k8s] == Status.PENDING
    state, breach = model.step(state, Event(Kind.PLAY, "gstg-approve", 1))
    assert breach is None
    assert state.status[vm] == Status.CREATED
    state, _ = model.step(state, Event(Kind.SUCCEED, "gstg-approve", 1))
    assert state.status[vm] == Status.PENDING


def test_a_resource_group_serialises_its_jobs() -> None:
    model = ExecutionModel(
        lowered(changed(GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", ""))
    )
    state = model.initial(next(model.instances()))
    state, _ = model.step(state, Event(Kind.START, VM, 1))
    assert Event(Kind.START, K8S, 1) not in model.enabled(state)
    with pytest.raises(InvalidRun):
        model.step(state, Event(Kind.START, K8S, 1))


def test_replay_refuses_an_impossible_run() -> None:
    model = ExecutionModel(lowered(GSTG))
    with pytest.raises(InvalidRun):
        model.replay((0, 0), [Event(Kind.START, K8S, 1)])


def test_a_need_on_a_later_stage_is_settled_like_gitlab_would() -> None:
    # GitLab refuses such a file; a hand-written one still gets the same answer from the
    # prover and the explorer.
    def pipeline(when: str, vm_needs: list[str] | None) -> Pipeline:
        return pipeline_of(
            ci_job("k8s-pdm", executor=True, stage="build", needs=["vm-pdm"], when=when),
            ci_job("vm-pdm", index=1, executor=True, stage="deploy", needs=vm_needs),
        )

    accepted(pipeline("on_success", []))
    assert rejected(pipeline("always", [])).violations[0].mechanism == mechanisms.WHEN
    # Without needs, vm-pdm waits for the build stage, which waits for vm-pdm: nothing runs.
    accepted(pipeline("always", None))


# -- runs the fuzzer found hard to build (regressions) --------------------------------------

RULE = Loc(".gitlab-ci.yml", 1, 1)


def test_a_job_enqueued_while_a_manual_job_waits_has_to_run() -> None:
    # At creation job-3 needs an unplayed manual job (skipped), so the test stage looks
    # passed and job-4 is enqueued at once, before anyone can play pdm-0: it stays enqueued,
    # and pdm-5 waits for it to run.
    pipeline = pipeline_of(
        ci_job(
            "pdm-0",
            executor=True,
            stage="build",
            allow_failure=True,
            choices=(Choice("manual", True, RULE), Choice("on_success", False, RULE)),
        ),
        ci_job(
            "job-1",
            index=1,
            stage="build",
            allow_failure=True,
            choices=(Choice("on_success", False, RULE), Choice("manual", True, RULE)),
        ),
        ci_job("pdm-2", index=2, executor=True, stage="build", when="manual", allow_failure=True),
        ci_job("job-3", index=3, stage="build", needs=[("pdm-0", True)]),
        ci_job("job-4", index=4, stage="test", allow_failure=True),
        ci_job("pdm-5", index=5, executor=True, stage="deploy", when="always", allow_failure=True),
    )
    rejected(pipeline, shortest=False)


def test_an_optional_manual_job_is_played_before_the_jobs_after_it_are_decided() -> None:
    pipeline = pipeline_of(
        ci_job("job-0", stage="build", allow_failure=True),
        ci_job("job-1", index=1, stage="build", when="manual", allow_failure=True),
        ci_job("job-2", index=2, stage="test", allow_failure=True, retry=1),
        ci_job(
            "job-3",
            index=3,
            stage="build",
            allow_failure=True,
            choices=(Choice("on_success", False, RULE), Choice("on_failure", False, RULE)),
        ),
        ci_job(
            "pdm-4", index=4, executor=True, stage="build", needs=[("job-0", True), ("job-1", True)]
        ),
        ci_job(
            "pdm-5",
            index=5,
            executor=True,
            stage="deploy",
            allow_failure=True,
            choices=(Choice("on_success", False, RULE), Choice("always", False, RULE)),
        ),
    )
    rejected(pipeline, shortest=False)


def test_a_revived_job_brings_back_the_jobs_that_need_it() -> None:
    pipeline = pipeline_of(
        ci_job("job-0", stage="build", when="manual", allow_failure=True),
        ci_job("pdm-1", index=1, executor=True, stage="build"),
        ci_job("pdm-2", index=2, executor=True, stage="test", needs=["job-0", "pdm-1"]),
        ci_job("pdm-3", index=3, executor=True, stage="test", needs=["pdm-2"]),
        ci_job("pdm-4", index=4, executor=True, stage="deploy"),
    )
    proof = rejected(pipeline, shortest=False)
    assert any(v.mechanism == mechanisms.NEEDS_MANUAL for v in proof.violations)


def test_a_flaky_job_that_needs_the_first_executor_to_fail_first() -> None:
    # job-1 (on_failure) waits for the whole build stage, pdm-0 included: pdm-0 has to fail
    # inside the window in which GitLab sees job-4's failure.
    pipeline = pipeline_of(
        ci_job("pdm-0", executor=True, stage="build", allow_failure=True),
        ci_job("job-1", index=1, stage="deploy", when="on_failure", allow_failure=True),
        ci_job("job-2", index=2, stage="build", allow_failure=True),
        ci_job("job-4", index=4, stage="build", needs=[], retry=1),
        ci_job(
            "pdm-5",
            index=5,
            executor=True,
            stage="deploy",
            needs=[("pdm-0", True), ("job-1", True), ("job-2", True), ("job-4", True)],
            allow_failure=True,
        ),
    )
    rejected(pipeline, shortest=False)


def test_a_rule_on_a_job_no_executor_waits_for_still_decides_if_there_is_a_pipeline() -> None:
    # job-1 may be left out by its rule, but job-2 needs it: the prover must not pick the
    # combination GitLab refuses to create and conclude there is no run at all.
    pipeline = pipeline_of(
        ci_job("pdm-0", executor=True, stage="test", needs=[], retry=1),
        ci_job(
            "job-1",
            index=1,
            stage="build",
            choices=(Choice("on_success", False, RULE), Choice("never", False, RULE)),
        ),
        ci_job("job-2", index=2, stage="build", needs=["job-1"]),
    )
    assert only(rejected(pipeline), mechanisms.RETRY).jobs == ("pdm-0",)


def test_an_on_failure_executor_triggered_by_a_flaky_job() -> None:
    # job-0 cannot fail (it is an on_failure job nothing triggers); job-2 can, once, before
    # its retry: that is enough for pdm-1 to run, and pdm-1 is retried.
    pipeline = pipeline_of(
        ci_job("job-0", stage="build", when="on_failure", retry=1),
        ci_job("pdm-1", index=1, executor=True, stage="test", when="on_failure", retry=1),
        ci_job("job-2", index=2, stage="build", retry=1),
    )
    assert only(rejected(pipeline), mechanisms.RETRY).jobs == ("pdm-1",)
