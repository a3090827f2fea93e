"""Splitting `rules:` outcomes into parts (prover/parts.py): the split proof agrees with the
brute-force explorer, and with the proof that enumerates every combination, on generated
pipelines with many jobs that have rules; a deploy pipeline with dozens of rules is proved
completely."""

from __future__ import annotations

from hypothesis import assume, event, given, note
from hypothesis import strategies as st

from pdmpolicy.gitlab.pipeline import Choice, CiJob
from pdmpolicy.prover.explorer import explore
from pdmpolicy.prover.model import ExecutionModel
from pdmpolicy.prover.parts import cone, extend, parts, rows
from pdmpolicy.prover.prover import prove_model
from tests.strategies import (
    Generated,
    ci_job,
    job_loc,
    ordered_pipelines,
    pipeline_of,
    small_pipelines,
)

STATE_CAP = 20_000


def _replays(model: ExecutionModel, proof_violations: tuple[object, ...]) -> None:
    for found in proof_violations:
        breaches = model.replay(found.variant, found.steps)  # type: ignore[attr-defined]
        assert breaches[-1] == found.breach, found.describe()  # type: ignore[attr-defined]
        assert all(b is None for b in breaches[:-1])


@given(
    st.one_of(
        small_pipelines(min_jobs=3, max_jobs=6, max_with_rules=5),
        ordered_pipelines(),
    )
)
def test_split_proof_agrees_with_explorer_and_with_enumeration(generated: Generated) -> None:
    note(generated.describe())
    pipeline, executors = generated.pipeline, generated.executors
    explored = explore(pipeline, executors=executors, max_states=STATE_CAP)
    assume(not explored.truncated)
    model = ExecutionModel(pipeline, executors)
    split = prove_model(model, split=True)
    whole = prove_model(ExecutionModel(pipeline, executors), split=False)
    assert split.complete
    assert split.safe == explored.safe, (split.violations, explored.counterexample)
    assert whole.safe == split.safe
    _replays(model, split.violations)
    event("safe" if split.safe else "unsafe")


def _ruled(index: int, *outcomes: tuple[str, bool]) -> tuple[Choice, ...]:
    return tuple(Choice(when, af, job_loc(index, "when")) for when, af in outcomes)


ON_OR_NEVER = (("on_success", False), ("never", False))


def _deploy_pipeline(clusters: int, *, ordered: bool) -> tuple[list[CiJob], frozenset[str]]:
    """Per cluster: a dry run and an upgrade with rules; two executors with rules after them
    (the second `needs` the first when `ordered`)."""
    jobs: list[CiJob] = []
    index = 0
    for c in range(clusters):
        for kind, stage in (("dryrun", "build"), ("upgrade", "test")):
            jobs.append(
                ci_job(
                    f"c{c}:{kind}",
                    index=index,
                    stage=stage,
                    resource_group=f"c{c}",
                    choices=_ruled(index, *ON_OR_NEVER),
                )
            )
            index += 1
    jobs.append(
        ci_job(
            "gstg:pdm",
            index=index,
            executor=True,
            stage="deploy",
            needs=[("c0:upgrade", False)],
            choices=_ruled(index, *ON_OR_NEVER),
        )
    )
    index += 1
    jobs.append(
        ci_job(
            "gprd:pdm",
            index=index,
            executor=True,
            stage="deploy",
            needs=[("gstg:pdm", False)] if ordered else [("c1:upgrade", False)],
            choices=_ruled(index, ("on_success", False), ("manual", False), ("never", False)),
        )
    )
    return jobs, frozenset({"gstg:pdm", "gprd:pdm"})


def test_dozens_of_rules_outside_the_executors_cones_are_not_multiplied() -> None:
    jobs, executors = _deploy_pipeline(30, ordered=True)
    pipeline = pipeline_of(*jobs)
    model = ExecutionModel(pipeline, executors)
    assert model.combinations > 2**60
    (part,) = parts(model)
    # Only the executors and the jobs they need have their outcomes enumerated.
    assert {model.jobs[j].name for j in part.varied} == {"gstg:pdm", "gprd:pdm", "c0:upgrade"}
    proof = prove_model(model)
    assert proof.complete and proof.safe, proof.notes
    # The proof that enumerates every job the executors wait for gives up.
    whole = prove_model(ExecutionModel(pipeline, executors), split=False)
    assert not whole.complete


def test_an_unordered_pair_among_dozens_of_rules_is_found_completely() -> None:
    jobs, executors = _deploy_pipeline(30, ordered=False)
    pipeline = pipeline_of(*jobs)
    model = ExecutionModel(pipeline, executors)
    proof = prove_model(model)
    assert proof.complete and not proof.safe
    _replays(model, proof.violations)
    # On a pipeline this large a pair with a counterexample is not asked again.
    assert [{v.breach.starter, v.breach.other} for v in proof.violations] == [
        {"gstg:pdm", "gprd:pdm"}
    ]


def test_an_on_failure_job_without_needs_brings_the_earlier_stages_into_the_cone() -> None:
    jobs = [
        ci_job("check", index=0, stage="build", choices=_ruled(0, *ON_OR_NEVER)),
        ci_job("pdm", index=1, executor=True, stage="test"),
        ci_job("fallback", index=2, executor=True, stage="deploy", when="on_failure"),
    ]
    model = ExecutionModel(pipeline_of(*jobs), frozenset({"pdm", "fallback"}))
    assert cone(model, 2) == frozenset({0, 1, 2})
    assert cone(model, 1) == frozenset({1})


def test_the_other_jobs_take_the_fewest_outcomes_that_keep_the_pipeline_creatable() -> None:
    jobs = [
        ci_job("a", index=0, choices=_ruled(0, *ON_OR_NEVER)),
        ci_job("b", index=1, needs=[("a", False)]),  # no rules: always there, needs a
        ci_job("c", index=2, choices=_ruled(2, *ON_OR_NEVER)),
        ci_job("d", index=3, needs=[("c", False)], choices=_ruled(3, *ON_OR_NEVER)),
    ]
    model = ExecutionModel(pipeline_of(*jobs), frozenset())
    # a must be there for b; c and d are left out.
    assert extend(model, {}) == (0, 0, 1, 1)
    # d there makes c be there.
    assert extend(model, {3: 0}) == (0, 0, 0, 0)
    # c left out while d is there: GitLab refuses the pipeline.
    assert extend(model, {3: 0, 2: 1}) is None
    # a left out: b needs it and cannot be left out.
    assert extend(model, {0: 1}) is None


def test_a_part_with_too_many_combinations_is_said_to_be_incomplete() -> None:
    """An executor that needs five jobs with three outcomes each: 243 combinations of its
    cone's outcomes; past the limit, the part is reported, with how many it has."""
    outcomes = (("on_success", False), ("manual", False), ("never", False))
    jobs = [
        ci_job(f"check-{i}", index=i, stage="build", choices=_ruled(i, *outcomes)) for i in range(5)
    ]
    jobs.append(ci_job("pdm", index=5, executor=True, needs=[(job.name, True) for job in jobs]))
    model = ExecutionModel(pipeline_of(*jobs), frozenset({"pdm"}))
    found = parts(model)
    decided, truncated = rows(model, found, 10)
    assert [(part.varied, count) for part, count in truncated] == [((0, 1, 2, 3, 4), 243)]
    assert len(decided) == 10
    assert prove_model(model).complete  # within the prover's own limit
