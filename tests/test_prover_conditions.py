"""Correlated `rules:` (prover/conditions.py): jobs whose rules test the same pipeline
variables are decided only in the combinations some assignment of the variables gives.
Checked against the explorer run on exactly those combinations, on generated pipelines
with correlated rules; and on the case that motivates it, a gstg and a gprd executor in
one stage that never share a pipeline."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import ClassVar

from hypothesis import assume, event, given, note
from hypothesis import strategies as st

from pdmpolicy.gitlab.pipeline import Choice, CiJob, Pipeline, RuleCase, Variable
from pdmpolicy.prover.conditions import Conditions
from pdmpolicy.prover.explorer import explore_model
from pdmpolicy.prover.model import ExecutionModel, Instance
from pdmpolicy.prover.prover import prove, prove_model
from tests.strategies import ci_job, job_loc, pipeline_of

STATE_CAP = 20_000


def ruled(job: CiJob, *cases: tuple[str | None, str, bool], fallthrough: bool = True) -> CiJob:
    """`job` with `rules:` entries (if, when, allow_failure), as the loader reads them."""
    choices: list[Choice] = []
    rule_cases: list[RuleCase] = []
    for number, (condition, when, allow) in enumerate(cases):
        key = Choice(when, allow if when != "never" else False, job_loc(number, "when"))
        match = next(
            (
                i
                for i, c in enumerate(choices)
                if (c.when, c.allow_failure) == (key.when, key.allow_failure)
            ),
            None,
        )
        if match is None:
            choices.append(key)
            match = len(choices) - 1
        rule_cases.append(RuleCase(condition, False, match))
    if fallthrough and not any(c.when == "never" for c in choices):
        choices.append(Choice("never", False, job.loc))
    return dataclasses.replace(job, choices=tuple(choices), rule_cases=tuple(rule_cases))


def feasible(pipeline: Pipeline) -> set[tuple[int, ...]]:
    """Every variant vector an assignment of the variables gives (unreadable jobs: any)."""
    model = ExecutionModel(pipeline, set())
    conditions = Conditions(pipeline)
    read = sorted(conditions.rules)
    assignments = conditions.combinations(read)
    assert assignments is not None
    vectors: set[tuple[int, ...]] = set()
    for values in assignments:
        full = conditions.complete(values)
        options = []
        for job in model.jobs:
            if job.index in conditions.rules:
                choice = conditions.rules[job.index].choice(full)
                assert choice is not None
                options.append((model.choice_variants[job.index][choice],))
            else:
                options.append(tuple(range(len(job.variants))))
        vectors.update(itertools.product(*options))
    return vectors


class _Feasible(ExecutionModel):
    """The model restricted to the pipelines the variables can create."""

    allowed: ClassVar[set[tuple[int, ...]]] = set()

    def instances(self) -> Iterator[Instance]:
        for vector in sorted(self.allowed):
            inst = self.instance(vector)
            if inst.creatable:
                yield inst


def explore_feasible(pipeline: Pipeline, executors: frozenset[str]) -> tuple[bool, bool]:
    """(safe, truncated): the explorer over the pipelines the variables can create."""
    model = _Feasible(pipeline, executors)
    model.allowed = feasible(pipeline)
    model.MAX_INSTANCES = 10**9
    found = explore_model(model, max_states=STATE_CAP)
    return found.safe, found.truncated


EXPRESSIONS = (
    '$ENVIRONMENT == "gstg"',
    '$ENVIRONMENT == "gprd"',
    '$ENVIRONMENT != "gprd"',
    '$DRY_RUN == "true"',
    '$DRY_RUN == "true" || $AUTO_DEPLOY == "true"',
    '$ENVIRONMENT == "gstg" && $DRY_RUN != "true"',
    '($ENVIRONMENT == "gprd" || $ENVIRONMENT == "gstg") && $AUTO_DEPLOY == null',
    "$AUTO_DEPLOY",
    "$CI_COMMIT_REF_NAME =~ /^release/",
    '$CI_PIPELINE_SOURCE == "web"',
)
OUTCOMES = (("on_success", False), ("manual", False), ("manual", True), ("never", False))


@st.composite
def correlated_pipelines(draw: st.DrawFn) -> tuple[Pipeline, frozenset[str]]:
    count = draw(st.integers(2, 5))
    jobs: list[CiJob] = []
    executors: set[str] = set()
    for index in range(count):
        executor = index < 2 or draw(st.booleans())
        name = f"{'pdm' if executor else 'job'}-{index}"
        stage = draw(st.sampled_from(("build", "test", "deploy")))
        order = ("build", "test", "deploy")
        # GitLab refuses a need on a job of a later stage.
        earlier = [j.name for j in jobs if order.index(j.stage) <= order.index(stage)]
        needs = None
        if earlier and draw(st.booleans()):
            needs = [
                (n, draw(st.booleans()))
                for n in draw(st.lists(st.sampled_from(earlier), unique=True))
            ]
        job = ci_job(
            name,
            index=index,
            executor=executor,
            stage=stage,
            needs=needs,
            retry=draw(st.sampled_from((0, 0, 0, 1))),
            allow_failure=draw(st.integers(0, 5)) == 0,
            resource_group=draw(st.sampled_from((None, None, "db"))),
        )
        if draw(st.integers(0, 3)) > 0:
            cases = draw(
                st.lists(
                    st.tuples(st.sampled_from(EXPRESSIONS), st.sampled_from(OUTCOMES)),
                    min_size=1,
                    max_size=3,
                )
            )
            job = ruled(job, *((c, w, a) for c, (w, a) in cases))
        jobs.append(job)
        if executor:
            executors.add(name)
    return pipeline_of(*jobs), frozenset(executors)


@given(correlated_pipelines())
def test_correlated_proof_agrees_with_the_explorer_on_creatable_pipelines(
    generated: tuple[Pipeline, frozenset[str]],
) -> None:
    pipeline, executors = generated
    note(
        "\n".join(
            f"{j.name}: {j.stage} needs={j.needs} {j.rule_cases} {j.choices}" for j in pipeline.jobs
        )
    )
    safe, truncated = explore_feasible(pipeline, executors)
    assume(not truncated)
    model = ExecutionModel(pipeline, executors)
    proof = prove_model(model)
    assert proof.complete
    assert proof.safe == safe, proof.violations
    allowed = feasible(pipeline)
    for found in proof.violations:
        # Every counterexample is a run of a pipeline the variables can create.
        assert found.variant in allowed
        breaches = model.replay(found.variant, found.steps)
        assert breaches[-1] == found.breach
    event("safe" if safe else "unsafe")


def _pdm(name: str, index: int, environment: str) -> CiJob:
    return ruled(
        ci_job(name, index=index, executor=True, stage="deploy", resource_group=environment),
        ('$DRY_RUN == "true"', "never", False),
        (
            f'$POST_DEPLOY_MIGRATIONS == "true" && $ENVIRONMENT == "{environment}"',
            "on_success",
            False,
        ),
        (f'$CI_PIPELINE_SOURCE == "web" && $ENVIRONMENT == "{environment}"', "manual", False),
    )


def test_executors_of_two_environments_never_share_a_pipeline() -> None:
    pipeline = pipeline_of(_pdm("gstg:pdm", 0, "gstg"), _pdm("gprd:pdm", 1, "gprd"))
    assert prove(pipeline, executors={"gstg:pdm", "gprd:pdm"}).safe
    # Read as independent (rules not known to the prover), they overlap.
    independent = pipeline_of(*(dataclasses.replace(job, rule_cases=()) for job in pipeline.jobs))
    assert not prove(independent, executors={"gstg:pdm", "gprd:pdm"}).safe


def test_a_variable_the_yaml_sets_is_not_read_as_a_pipeline_variable() -> None:
    """`ENVIRONMENT` in a job's `variables:`: whether `$ENVIRONMENT == "gstg"` holds there
    depends on the YAML's value and on a pipeline variable overriding it, so the two jobs
    are not taken as exclusive."""
    gstg = _pdm("gstg:pdm", 0, "gstg")
    yaml_set = dataclasses.replace(gstg, variables=(Variable("ENVIRONMENT", "gstg", gstg.loc),))
    pipeline = pipeline_of(yaml_set, _pdm("gprd:pdm", 1, "gprd"))
    assert not prove(pipeline, executors={"gstg:pdm", "gprd:pdm"}).safe
