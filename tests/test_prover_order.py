"""`prover.order`: can a job start before another one has succeeded, on some execution?
Checked against a brute-force walk over every run of the execution model, and on the two
cases where the static `after_success` ordering gets it wrong (docs/execution-model.md)."""

from __future__ import annotations

from hypothesis import assume, given, note
from hypothesis import strategies as st

from pdmpolicy.prover.model import ExecutionModel, Kind, RunState, Status
from pdmpolicy.prover.prover import ORDER_FAILURE, ORDER_MANUAL, order
from tests.strategies import Generated, ci_job, pipeline_of, small_pipelines

STATE_CAP = 20_000


def starts_before_success(generated: Generated, first: str, second: str) -> bool | None:
    """Every run, breadth first: does `second` ever start while `first` has not succeeded?
    None when the walk is too long."""
    model = ExecutionModel(generated.pipeline, {first, second})
    a = model.index[first]
    seen: set[RunState] = set()
    frontier = [model.initial(inst) for inst in model.instances()]
    while frontier:
        following = []
        for state in frontier:
            for event in model.enabled(state):
                starts = event.kind in (Kind.START, Kind.PLAY) and event.attempt == 1
                if starts and event.job == second and state.status[a] != Status.SUCCESS:
                    return True
                after, _ = model.step(state, event)
                if after not in seen:
                    if len(seen) >= STATE_CAP:
                        return None
                    seen.add(after)
                    following.append(after)
        frontier = following
    return False


@given(small_pipelines(min_jobs=2, max_jobs=5), st.data())
def test_order_agrees_with_every_run(generated: Generated, data: st.DataObject) -> None:
    names = [job.name for job in generated.pipeline.jobs]
    first, second = data.draw(st.permutations(names))[:2]
    note(generated.describe())
    note(f"{second} after {first}?")
    truth = starts_before_success(generated, first, second)
    assume(truth is not None)
    found = order(generated.pipeline, first, second)
    assert found.complete
    assert found.ordered == (not truth), found


VM = "vm"
K8S = "k8s"


def test_an_allow_failure_job_between_the_two_keeps_the_order() -> None:
    """A failed `vm` skips `check`, and a skipped need skips `k8s`: `k8s` starts only after
    `vm` succeeded, although `check` may fail."""
    pipeline = pipeline_of(
        ci_job(VM, index=0, executor=True),
        ci_job("check", index=1, needs=[(VM, False)], allow_failure=True),
        ci_job(K8S, index=2, executor=True, needs=[("check", False)]),
    )
    assert order(pipeline, VM, K8S).ordered
    assert starts_before_success(Generated(pipeline, frozenset()), VM, K8S) is False
    # Without the failure stopping it (when: always), the order is gone.
    unordered = pipeline_of(
        ci_job(VM, index=0, executor=True),
        ci_job("check", index=1, needs=[(VM, False)], when="always"),
        ci_job(K8S, index=2, executor=True, needs=[("check", False)]),
    )
    assert order(unordered, VM, K8S).how == ORDER_FAILURE


def test_a_job_that_needs_an_unplayed_manual_job_does_not_order_the_next_stage() -> None:
    """`vm` needs an optional manual `approve`: while it is not played, `vm` shows as
    skipped and `k8s`, in a later stage, runs first."""
    pipeline = pipeline_of(
        ci_job("approve", index=0, stage="build", when="manual", allow_failure=True),
        ci_job(VM, index=1, executor=True, stage="test", needs=[("approve", False)]),
        ci_job(K8S, index=2, executor=True, stage="deploy"),
    )
    found = order(pipeline, VM, K8S)
    assert found.how == ORDER_MANUAL and found.via == "approve"
    assert starts_before_success(Generated(pipeline, frozenset()), VM, K8S) is True
    # A blocking gate (allow_failure: false) keeps the order.
    gated = pipeline_of(
        ci_job("approve", index=0, stage="build", when="manual", allow_failure=False),
        ci_job(VM, index=1, executor=True, stage="test", needs=[("approve", False)]),
        ci_job(K8S, index=2, executor=True, stage="deploy"),
    )
    assert order(gated, VM, K8S).ordered
