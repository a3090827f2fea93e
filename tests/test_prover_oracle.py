"""The fast prover agrees with the brute-force explorer on generated small pipelines."""

from __future__ import annotations

from hypothesis import assume, event, given, note
from hypothesis import strategies as st

from pdmpolicy.prover.explorer import explore
from pdmpolicy.prover.model import ExecutionModel
from pdmpolicy.prover.prover import prove
from tests.strategies import Generated, ordered_pipelines, small_pipelines

STATE_CAP = 20_000
"""The explorer gives up beyond this many states (the example is then discarded)."""


@given(st.one_of(small_pipelines(), ordered_pipelines()))
def test_prover_agrees_with_explorer(generated: Generated) -> None:
    note(generated.describe())
    pipeline, executors = generated.pipeline, generated.executors
    explored = explore(pipeline, executors=executors, max_states=STATE_CAP)
    assume(not explored.truncated)
    proof = prove(pipeline, executors=executors)
    assert proof.complete
    assert proof.safe == explored.safe, (proof.violations, explored.counterexample)
    if explored.counterexample is None:
        event("safe")
        return
    # Every counterexample is a run of the model, and breaks the invariant at its last step.
    model = ExecutionModel(pipeline, executors)
    for found in proof.violations:
        breaches = model.replay(found.variant, found.steps)
        assert breaches[-1] == found.breach, found.describe()
        assert all(b is None for b in breaches[:-1]), found.describe()
    shortest = len(explored.counterexample)
    assert len(proof.violations[0]) >= shortest
    event("unsafe: prover shortest" if len(proof.violations[0]) == shortest else "unsafe: longer")
