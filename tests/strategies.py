"""Hypothesis strategies shared by the test suite, one titled section per subject."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from hypothesis import strategies as st

from pdmpolicy.location import Loc
from pdmpolicy.pipeline import Choice, CiJob, Need, Pipeline, ScriptLine

# ---------------------------------------------------------------------------------------
# Pipelines for the prover: small GitLab CI pipelines built directly as Pipeline objects
# (stages, needs, when, allow_failure, retry, manual jobs, resource groups, rules choices),
# some jobs executing PDMs. Small enough for the brute-force explorer.
# ---------------------------------------------------------------------------------------

STAGES = (".pre", "build", "test", "deploy", ".post")
PATH = "ci/generated.yml"
EXECUTOR_SCRIPT = "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG k-ctl -e gstg upgrade"
OTHER_SCRIPT = "echo checking"
LOC_KEYS = ("stage", "needs", "when", "allow_failure", "retry", "resource_group", "script")


def job_loc(index: int, key: str | None = None) -> Loc:
    """Where job `index` (and each of its keys) is "written": distinct lines, so a test can
    tell which setting a finding points at."""
    line = 1 + index * 10
    if key is None:
        return Loc(PATH, line, 1)
    return Loc(PATH, line + 1 + LOC_KEYS.index(key), 5)


def ci_job(
    name: str,
    *,
    index: int = 0,
    executor: bool = False,
    stage: str = "deploy",
    needs: Sequence[str | tuple[str, bool]] | None = None,
    when: str = "on_success",
    allow_failure: bool = False,
    retry: int = 0,
    retry_when: tuple[str, ...] = (),
    resource_group: str | None = None,
    choices: tuple[Choice, ...] = (),
    locs: dict[str, Loc] | None = None,
) -> CiJob:
    """A job with the given effective settings; `locs` default to `job_loc(index, key)`."""
    script = EXECUTOR_SCRIPT if executor else OTHER_SCRIPT
    if locs is None:
        locs = {key: job_loc(index, key) for key in LOC_KEYS}
    return CiJob(
        name=name,
        stage=stage,
        needs=(
            None
            if needs is None
            else tuple(
                Need(n, False, job_loc(index, "needs"))
                if isinstance(n, str)
                else Need(n[0], n[1], job_loc(index, "needs"))
                for n in needs
            )
        ),
        when=when,
        allow_failure=allow_failure,
        retry=retry,
        interruptible=False,
        resource_group=resource_group,
        timeout=None,
        variables=(),
        inherit_default=True,
        inherit_variables=True,
        script=(ScriptLine(script, locs.get("script", job_loc(index))),),
        trigger=None,
        rules=(),
        loc=job_loc(index),
        locs=MappingProxyType(locs),
        retry_when=retry_when,
        choices=choices,
    )


def pipeline_of(*jobs: CiJob, path: str = PATH) -> Pipeline:
    return Pipeline(path=path, source=path, stages=STAGES, variables=(), jobs=tuple(jobs))


@dataclass(frozen=True)
class Generated:
    """A generated pipeline and the names of the jobs that execute PDMs in it."""

    pipeline: Pipeline
    executors: frozenset[str]

    def describe(self) -> str:
        """The pipeline in a few lines, for a failing example's report."""
        lines = [f"executors: {sorted(self.executors)}"]
        for job in self.pipeline.jobs:
            needs = None if job.needs is None else [(n.job, n.optional) for n in job.needs]
            lines.append(
                f"  {job.name}: stage={job.stage} needs={needs} when={job.when} "
                f"allow_failure={job.allow_failure} retry={job.retry}"
                f"{' retry_when=' + str(job.retry_when) if job.retry_when else ''} "
                f"resource_group={job.resource_group} "
                f"choices={[(c.when, c.allow_failure) for c in job.choices]}"
            )
        return "\n".join(lines)


_WHENS = ("on_success", "on_success", "on_success", "manual", "always", "on_failure", "delayed")


@st.composite
def _choices(draw: st.DrawFn, index: int) -> tuple[Choice, ...]:
    outcomes = draw(
        st.lists(
            st.tuples(st.sampled_from((*_WHENS, "never")), st.booleans()),
            min_size=2,
            max_size=3,
            unique=True,
        )
    )
    return tuple(Choice(when, af, job_loc(index, "when")) for when, af in outcomes)


@st.composite
def small_pipelines(
    draw: st.DrawFn, min_jobs: int = 2, max_jobs: int = 6, max_with_rules: int = 2
) -> Generated:
    """Pipelines of `min_jobs`..`max_jobs` jobs; at least two executors or a retried one,
    so that there is something to prove."""
    count = draw(st.integers(min_jobs, max_jobs))
    stage_names = ("build", "test", "deploy")
    jobs: list[CiJob] = []
    executors: set[str] = set()
    stages: list[str] = []
    with_rules = 0
    for index in range(count):
        executor = draw(st.booleans())
        name = f"{'pdm' if executor else 'job'}-{index}"
        stage = draw(st.sampled_from(stage_names))
        earlier = [
            jobs[i].name
            for i in range(index)
            if stage_names.index(stages[i]) <= stage_names.index(stage)
        ]
        needs: list[tuple[str, bool]] | None = None
        if draw(st.booleans()):
            picked = draw(
                st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([])
            )
            needs = [(n, draw(st.integers(0, 5)) == 0) for n in picked]
        when = draw(st.sampled_from(_WHENS))
        allow_failure = draw(st.booleans()) if when == "manual" else draw(st.integers(0, 4)) == 0
        retry = draw(st.sampled_from((0, 0, 0, 1, 2)))
        retry_when: tuple[str, ...] = ()
        if retry and draw(st.integers(0, 3)) == 0:
            retry_when = ("script_failure",)
        group = draw(st.sampled_from((None, None, "db", "other")))
        choices: tuple[Choice, ...] = ()
        if with_rules < max_with_rules and draw(st.integers(0, 4)) == 0:
            choices = draw(_choices(index))
            with_rules += 1
        jobs.append(
            ci_job(
                name,
                index=index,
                executor=executor,
                stage=stage,
                needs=needs,
                when=when,
                allow_failure=allow_failure,
                retry=retry,
                retry_when=retry_when,
                resource_group=group,
                choices=choices,
            )
        )
        stages.append(stage)
        if executor:
            executors.add(name)
    return Generated(pipeline_of(*jobs), frozenset(executors))


@st.composite
def ordered_pipelines(draw: st.DrawFn, max_jobs: int = 6) -> Generated:
    """Pipelines whose executors are ordered on success (a `needs` on the previous executor
    or a later stage), with manual gates, `on_failure`/`always` helpers and retried helper
    jobs around them: mostly safe, so that what breaks them is the subtle mechanisms."""
    count = draw(st.integers(3, max_jobs))
    stage_names = ("build", "test", "deploy")
    jobs: list[CiJob] = []
    stages: list[int] = []
    executors: set[str] = set()
    previous: int | None = None
    with_rules = 0
    for index in range(count):
        executor = draw(st.booleans()) or (index == count - 1 and len(executors) < 2)
        name = f"{'pdm' if executor else 'job'}-{index}"
        low = stages[previous] if executor and previous is not None else 0
        rank = draw(st.integers(low, 2))
        earlier = [i for i in range(index) if stages[i] <= rank]
        needs: list[tuple[str, bool]] | None = None
        if executor and previous is not None:
            if rank == stages[previous] or draw(st.booleans()):
                others = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2))
                needs = [(jobs[i].name, False) for i in sorted({previous, *others})]
        elif draw(st.booleans()):
            picked = (
                draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
            )
            needs = [(jobs[i].name, draw(st.integers(0, 5)) == 0) for i in picked]
        if executor:
            when = draw(st.sampled_from(("on_success",) * 6 + ("manual", "delayed")))
            allow_failure = when == "manual" and draw(st.integers(0, 2)) == 0
            retry = 0
        else:
            when = draw(st.sampled_from(_WHENS))
            allow_failure = (
                draw(st.booleans()) if when == "manual" else draw(st.integers(0, 4)) == 0
            )
            retry = draw(st.sampled_from((0, 0, 1, 2)))
        choices: tuple[Choice, ...] = ()
        if not executor and with_rules < 2 and draw(st.integers(0, 4)) == 0:
            choices = draw(_choices(index))
            with_rules += 1
        jobs.append(
            ci_job(
                name,
                index=index,
                executor=executor,
                stage=stage_names[rank],
                needs=needs,
                when=when,
                allow_failure=allow_failure,
                retry=retry,
                resource_group=draw(st.sampled_from((None, "db"))),
                choices=choices,
            )
        )
        stages.append(rank)
        if executor:
            executors.add(name)
            previous = index
    return Generated(pipeline_of(*jobs), frozenset(executors))
