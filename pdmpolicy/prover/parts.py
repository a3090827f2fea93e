"""The parts of a proof: which `rules:` outcomes each pair of executors depends on.

A pipeline's `rules:` outcomes multiply (53 jobs with two outcomes each are 2**53 pipelines),
but the questions the prover asks are about one or two executors at a time (docs/
execution-model.md, "How the prover decides"). The answer for executors x and y depends on
the outcomes of the jobs in their *cones* only, so each pair of executors is decided over the
product of its cone's outcomes, and the pairs are decided one after the other: the costs add
up instead of multiplying.

The cone of an executor x: x, every job it names in `needs` (optional or not, in any outcome),
and so on backwards; and where a job of the cone can be `when: on_failure` without `needs`,
every job of the earlier stages (a failure of any of them triggers it) with its own cone.

Why the outcomes of a job j outside the cones of x and y do not change the answer (there is
no need on a later stage: `ExecutionModel.forward_needs` makes the prover enumerate instead).
The questions read the statuses of the cone's jobs in canonical runs; a cone job depends on j
only through the composite status of the stages before it (its `needs` are in the cone). In a
canonical run j does not fail: failures are only chosen among the cone (the executors asked
about, and the jobs an `on_failure` job of the cone waits for). So j ends absent, succeeded,
skipped, failed with `allow_failure`, or unplayed with `allow_failure`, all of which a job
without `needs` takes as passed (R4), whatever j's outcome; or j still waits, and then it
waits (transitively) for the executor that keeps running, which is in an earlier stage than
the cone job and makes it wait anyway. Playing an optional manual job outside the cones
re-processes only jobs whose inputs it does not change.

So the jobs outside the cones take, in each combination, the outcome that keeps the pipeline
creatable with the fewest jobs in it (GitLab refuses a pipeline where a job needs a job that
is not there): the counterexample is then as short as it can be, and it is played out in the
whole pipeline, so it is a run of the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from pdmpolicy.prover.model import ON_FAILURE, ExecutionModel


@dataclass(frozen=True)
class Part:
    """Pairs of executors decided together over the outcomes of the same jobs."""

    pairs: frozenset[frozenset[int]]
    """The questions: each a pair of executors (one executor alone: the retry question)."""
    varied: tuple[int, ...]
    """Jobs whose `rules:` outcomes are enumerated (the cones' jobs with several)."""
    focus: frozenset[int]
    """The union of the pairs' cones."""

    @property
    def executors(self) -> frozenset[int]:
        return frozenset(e for pair in self.pairs for e in pair)

    def combinations(self, model: ExecutionModel) -> int:
        count = 1
        for index in self.varied:
            count *= len(model.jobs[index].variants)
        return count


def cone(model: ExecutionModel, index: int) -> frozenset[int]:
    """The jobs whose `rules:` outcomes can change what `index` does (module docstring)."""
    jobs = model.jobs
    seen = {index}
    stack = [index]
    covered = -1  # every job of a stage below this rank is in `seen`
    while stack:
        job = jobs[stack.pop()]
        found: list[int] = [n for n, _ in job.needs or ()]
        if (
            job.needs is None
            and job.rank > covered
            and any(v.when == ON_FAILURE for v in job.variants)
        ):
            found += [other.index for other in jobs if other.rank < job.rank]
            covered = job.rank
        for other in found:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return frozenset(seen)


def parts(model: ExecutionModel) -> list[Part]:
    """Every pair of executors, grouped by the jobs whose outcomes they depend on."""
    executors = [job.index for job in model.jobs if job.executor]
    cones = {e: cone(model, e) for e in executors}
    groups: dict[tuple[int, ...], tuple[set[frozenset[int]], set[int]]] = {}
    if len(executors) == 1:
        pairs: Iterator[tuple[int, ...]] = iter([(executors[0],)])
    else:
        pairs = itertools.combinations(executors, 2)
    for pair in pairs:
        focus: set[int] = set()
        for e in pair:
            focus |= cones[e]
        varied = tuple(sorted(j for j in focus if len(model.jobs[j].variants) > 1))
        members, union = groups.setdefault(varied, (set(), set()))
        members.add(frozenset(pair))
        union |= focus
    return [
        Part(frozenset(members), varied, frozenset(union))
        for varied, (members, union) in sorted(groups.items())
    ]


def assignments(model: ExecutionModel, part: Part) -> Iterator[tuple[int, ...]]:
    """The variant vectors of the part's combinations that GitLab creates: the varied jobs
    take every combination, every other job the outcome that keeps the pipeline creatable
    with the fewest jobs (a combination no outcome of the others makes creatable is left
    out: GitLab refuses that pipeline)."""
    ranges = [range(len(model.jobs[j].variants)) for j in part.varied]
    for chosen in itertools.product(*ranges):
        vector = extend(model, dict(zip(part.varied, chosen, strict=True)))
        if vector is not None:
            yield vector


def extend(model: ExecutionModel, fixed: dict[int, int]) -> tuple[int, ...] | None:
    """A creatable variant vector keeping `fixed`, with as few other jobs present as
    possible; None when there is none. Exact: the jobs that must be present are those
    without a `never` outcome and, transitively, the jobs they need (not optionally)."""
    jobs = model.jobs
    present: set[int] = set()
    stack: list[int] = []
    for job in jobs:
        if job.index in fixed:
            is_present = job.variants[fixed[job.index]].present
        else:
            is_present = all(v.present for v in job.variants)
        if is_present:
            present.add(job.index)
            stack.append(job.index)
    while stack:
        job = jobs[stack.pop()]
        for need, optional in job.needs or ():
            if optional or need in present:
                continue
            if need in fixed or not any(v.present for v in jobs[need].variants):
                return None  # a job that is there needs one that is not
            present.add(need)
            stack.append(need)
    vector: list[int] = []
    for job in jobs:
        if job.index in fixed:
            vector.append(fixed[job.index])
            continue
        wanted = job.index in present
        vector.append(next(i for i, v in enumerate(job.variants) if v.present == wanted))
    return tuple(vector)
