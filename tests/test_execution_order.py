"""The display order of a pipeline's jobs (`Analysis.execution_order`), held to its definition.

A job waits for its `needs`, or without `needs` for every job of an earlier stage; the
order is Kahn's with the smallest ready name first, and a cycle is broken at its smallest
name. The analysis computes it with one barrier per stage instead of those edges (which
are quadratic); `_reference_order` is the definition written out as edges.
"""

from __future__ import annotations

import heapq

from hypothesis import given
from hypothesis import strategies as st

from pdmpolicy.environments.lower import PIPELINE_STAGES
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import Pipeline
from tests.builders import ci_job, ci_pipeline


def _reference_order(pipeline: Pipeline) -> tuple[str, ...]:
    rank = {s: i for i, s in enumerate(pipeline.stages)}
    present = {job.name for job in pipeline.jobs}
    waits: dict[str, set[str]] = {}
    for job in pipeline.jobs:
        if job.needs is not None:
            waits[job.name] = {n.job for n in job.needs if n.job in present} - {job.name}
        else:
            mine = rank.get(job.stage, 0)
            waits[job.name] = {o.name for o in pipeline.jobs if rank.get(o.stage, 0) < mine}
    waiters: dict[str, list[str]] = {name: [] for name in waits}
    for name, before in waits.items():
        for other in before:
            waiters[other].append(name)
    pending = {name: len(before) for name, before in waits.items()}
    ready = [name for name, count in pending.items() if count == 0]
    heapq.heapify(ready)
    remaining, done = set(waits), []
    while remaining:
        name = heapq.heappop(ready) if ready else min(remaining)
        remaining.discard(name)
        done.append(name)
        for job in waiters[name]:
            pending[job] -= 1
            if pending[job] == 0 and job in remaining:
                heapq.heappush(ready, job)
    return tuple(done)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    names = draw(st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True))
    stages = [*PIPELINE_STAGES, "not-a-stage"]  # an unknown stage ranks as the first
    jobs = []
    for name in names:
        needs = draw(st.none() | st.lists(st.sampled_from([*names, "gone"]), max_size=3))
        jobs.append(ci_job(name, needs=needs, stage=draw(st.sampled_from(stages))))
    return ci_pipeline(*jobs)


@given(pipelines())
def test_the_order_is_kahns_over_needs_and_stages(pipeline: Pipeline) -> None:
    # needs may name missing jobs, the job itself, or form cycles: all are loaded files
    assert analyse(pipeline).execution_order() == _reference_order(pipeline)


def test_thousands_of_jobs_in_two_stages_keep_the_stage_order() -> None:
    # 3,000 jobs behind 3,000 others: nine million edges as the definition has them.
    first = [ci_job(f"a{i:04}", stage=PIPELINE_STAGES[0]) for i in range(3000)]
    second = [ci_job(f"b{i:04}", stage=PIPELINE_STAGES[-1]) for i in range(3000)]
    order = analyse(ci_pipeline(*second, *first)).execution_order()
    assert order == tuple(j.name for j in [*first, *second])
