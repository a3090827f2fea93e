"""Counterexamples: a run that breaks `pdm-at-most-once`, and why the pipeline allows it.

A counterexample is a sequence of job events (replayable in the execution model), the
breach its last event commits, the mechanism that lets it happen in words a release
engineer recognises, and the file:line of the setting responsible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdmpolicy.core.location import Loc
from pdmpolicy.prover.model import (
    AFTER_FAILURE,
    ALWAYS,
    MANUAL,
    ON_FAILURE,
    OVERLAP,
    RETRIED,
    Breach,
    Event,
    ExecutionModel,
    Instance,
    Kind,
    Variant,
)

# Mechanisms, the keys findings and tests use.
RETRY = "retry"
UNORDERED = "unordered"
SAME_STAGE = "same-stage"
MISSING_NEEDS = "missing-needs"
WHEN = "when"
ALLOW_FAILURE = "allow-failure"
MANUAL_JOB = "manual"
NEEDS_MANUAL = "needs-manual"

GROUP = 4
"""This many jobs in a row that only run and succeed are shown on one line."""

_CONSEQUENCE = {
    RETRIED: "PDMs run a second time after a failure",
    OVERLAP: "two PDM runs overlap",
    AFTER_FAILURE: "PDMs start again after a failed run",
}


@dataclass(frozen=True)
class Counterexample:
    """A run that breaks the invariant, shortest first when there are several."""

    steps: tuple[Event, ...]
    breach: Breach
    mechanism: str
    message: str
    """What allows it, naming the mechanism and the jobs."""
    loc: Loc
    """The setting responsible (a retry, when, allow_failure or needs line...)."""
    jobs: tuple[str, ...]
    """The jobs involved: the executor that starts, the other one, then any job whose
    setting is responsible."""
    variant: tuple[int, ...]
    """The `rules:` outcome of every job in this run (for replay)."""
    rules: tuple[tuple[str, Variant], ...] = ()
    """The `rules:` outcomes the run depends on, for the reader."""

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def consequence(self) -> str:
        if self.breach.kind == OVERLAP:
            return f"{self.breach.other} is still running: two PDM runs overlap"
        if self.breach.kind == AFTER_FAILURE:
            return f"PDMs start again after {self.breach.other} failed"
        return _CONSEQUENCE[self.breach.kind]

    def lines(self) -> list[str]:
        """The steps, an attempt's start and end on one line when nothing happens between,
        and a row of other jobs that just run and succeed as one line."""
        lines: list[str] = []
        quiet: list[Event] = []  # starts of jobs not involved that then succeeded, in a row

        def flush() -> None:
            if len(quiet) >= GROUP:
                names = [e.job for e in quiet]
                shown = ", ".join(names) if len(names) <= 4 else ", ".join(names[:3])
                if len(names) > 4:
                    shown += f", ..., {names[-1]}"
                played = sum(1 for e in quiet if e.kind == Kind.PLAY)
                how = f" ({played} of them manual, played)" if played else ""
                lines.append(f"{len(quiet)} jobs run and succeed{how}: {shown}")
            else:
                lines.extend(f"{e.describe()} and succeeds" for e in quiet)
            quiet.clear()

        steps = self.steps
        index = 0
        while index < len(steps):
            event = steps[index]
            after = steps[index + 1] if index + 1 < len(steps) else None
            if (
                event.starts
                and after is not None
                and after.job == event.job
                and after.attempt == event.attempt
                and index + 1 < len(steps) - 1
            ):
                if (
                    event.kind in (Kind.START, Kind.PLAY)
                    and after.kind == Kind.SUCCEED
                    and event.attempt == 1
                    and event.job not in self.jobs
                ):
                    quiet.append(event)
                else:
                    flush()
                    lines.append(f"{event.describe()} and {_ending(after)}")
                index += 2
                continue
            flush()
            lines.append(event.describe())
            index += 1
        flush()
        lines[-1] = f"{lines[-1]}: {self.consequence}"
        return lines

    def summary(self) -> str:
        """The numbered steps on one line: '1. a fails; 2. retry: a attempt 2 starts: ...'."""
        return "; ".join(f"{n}. {line}" for n, line in enumerate(self.lines(), start=1))

    def describe(self) -> str:
        """The message, the numbered steps, and where the responsible setting is."""
        out = [self.message]
        for job, variant in self.rules:
            where = f" ({variant.loc})" if variant.loc else ""
            if variant.present:
                out.append(f"  (rules: {job} is in the pipeline with when: {variant.when}{where})")
            else:
                out.append(f"  (rules: {job} is not in the pipeline{where})")
        out += [f"  {n}. {line}" for n, line in enumerate(self.lines(), start=1)]
        out.append(f"  setting responsible: {self.loc}")
        return "\n".join(out)


def _ending(event: Event) -> str:
    if event.kind == Kind.SUCCEED:
        return "succeeds"
    if event.kind == Kind.FAIL:
        return "fails"
    return "fails (GitLab retries it automatically)"


class Graph:
    """Who waits for whom in one instance of the pipeline.

    A job without `needs` waits for every job of the earlier stages; those edges are kept
    implicit (by stage) so that a pipeline of a thousand jobs costs linear time, not square.
    """

    def __init__(self, model: ExecutionModel, inst: Instance) -> None:
        self.model = model
        self.inst = inst
        by_rank: dict[int, list[int]] = {}
        for job in model.jobs:
            if inst.present[job.index]:
                by_rank.setdefault(job.rank, []).append(job.index)
        self.ranks = sorted(by_rank)
        self.by_rank = by_rank
        self._ancestors: dict[int, frozenset[int]] = {}

    def below(self, rank: int) -> list[int]:
        """Present jobs of the stages before `rank`."""
        return [i for r in self.ranks if r < rank for i in self.by_rank[r]]

    def preds(self, index: int) -> tuple[int, ...]:
        needed = self.inst.preds[index]
        if needed is not None:
            return needed
        return tuple(self.below(self.model.jobs[index].rank))

    def ancestors(self, index: int) -> frozenset[int]:
        found = self._ancestors.get(index)
        if found is not None:
            return found
        jobs = self.model.jobs
        preds = self.inst.preds
        seen: set[int] = set()
        stack = [index]
        bound = min(self.ranks, default=0)  # every job of a stage below `bound` is in
        while stack:
            current = stack.pop()
            needed = preds[current]
            if needed is None:
                rank = jobs[current].rank
                if rank > bound:
                    for r in self.ranks:
                        if bound <= r < rank:
                            for other in self.by_rank[r]:
                                if other not in seen:
                                    seen.add(other)
                                    stack.append(other)
                    bound = rank
                continue
            for need in needed:
                if need not in seen:
                    seen.add(need)
                    stack.append(need)
        found = frozenset(seen)
        self._ancestors[index] = found
        return found

    def needed_by(self) -> tuple[tuple[int, ...], ...]:
        """For each job, the present jobs that name it in `needs`."""
        return self.inst.needed_by

    def descendants(self, index: int) -> frozenset[int]:
        """Jobs that wait for `index`, directly or not."""
        jobs = self.model.jobs
        inst = self.inst
        children = self.needed_by()
        staged = {r: [i for i in self.by_rank[r] if inst.preds[i] is None] for r in self.ranks}
        seen: set[int] = set()
        stack = [index]
        low = max(self.ranks, default=0)  # stage-based jobs of stages above `low` are in
        while stack:
            current = stack.pop()
            for child in children[current]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
            rank = jobs[current].rank
            if rank < low:
                for r in self.ranks:
                    if rank < r <= low:
                        for other in staged[r]:
                            if other not in seen:
                                seen.add(other)
                                stack.append(other)
                low = rank
        seen.discard(index)
        return frozenset(seen)

    def manual_gate(self, index: int) -> int | None:
        """An optional manual job that `index` needs through a chain of `needs`: while it is
        not played, GitLab shows `index` as skipped (and revives it when it is played)."""
        inst = self.inst
        seen = {index}
        stack = [index]
        while stack:
            current = stack.pop()
            needed = inst.preds[current]
            if needed is None:
                continue
            for need in needed:
                if inst.when[need] == MANUAL and inst.allow_failure[need]:
                    return need
                if need not in seen and inst.preds[need] is not None:
                    seen.add(need)
                    stack.append(need)
        return None


def _variant_loc(model: ExecutionModel, inst: Instance, index: int, key: str) -> Loc:
    job = model.jobs[index]
    variant = job.variants[inst.variant[index]]
    if variant.loc is not None and key in ("when", "allow_failure"):
        return variant.loc
    return job.job.loc_of(key)


def explain(
    model: ExecutionModel, inst: Instance, breach: Breach
) -> tuple[str, str, Loc, tuple[str, ...]]:
    """(mechanism, message, responsible loc, jobs involved) for a breach in this instance."""
    jobs = model.jobs
    x = model.index[breach.starter]
    job_x = jobs[x].job
    if breach.kind == RETRIED:
        return (
            RETRY,
            f"{breach.starter} is retried automatically (retry: {jobs[x].retry}): a failed "
            "attempt is started again, PDMs included",
            job_x.loc_of("retry"),
            (breach.starter,),
        )
    y = model.index[breach.other]
    graph = Graph(model, inst)
    names = (breach.starter, breach.other)
    if y in graph.ancestors(x):
        return _waits(model, inst, graph, x, y, breach)
    if x in graph.ancestors(y):
        return _reversed(model, inst, graph, x, y, breach)
    for manual in (x, y):
        if inst.when[manual] == MANUAL:
            other = y if manual == x else x
            return (
                MANUAL_JOB,
                f"{jobs[manual].name} is a manual job that nothing orders against "
                f"{jobs[other].name} (when: manual, no needs between them): it can be played "
                "at any moment, also while or after the other one runs",
                _variant_loc(model, inst, manual, "when"),
                (*names,),
            )
    if inst.preds[x] is None and jobs[x].rank == jobs[y].rank:
        stage = job_x.stage
        return (
            SAME_STAGE,
            f"{breach.starter} and {breach.other} are in the same stage ({stage}) and "
            f"{breach.starter} has no needs: jobs of one stage run at the same time, so "
            "nothing makes one wait for the other",
            job_x.loc_of("needs") if "needs" in job_x.locs else job_x.loc_of("stage"),
            names,
        )
    if inst.preds[x] is not None:
        listed = ", ".join(jobs[n].name for n in inst.preds[x] or ()) or "nothing"
        return (
            MISSING_NEEDS,
            f"{breach.starter} does not wait for {breach.other}: its needs ({listed}) do not "
            f"lead to {breach.other}, so it can start before {breach.other} succeeded",
            job_x.loc_of("needs"),
            names,
        )
    return (
        UNORDERED,
        f"nothing orders {breach.starter} after {breach.other}: {breach.other} is in a later "
        f"stage and {breach.starter} does not need it",
        job_x.loc_of("needs") if "needs" in job_x.locs else job_x.loc_of("stage"),
        names,
    )


def _accepts_failure(inst: Instance, index: int) -> bool:
    return inst.when[index] in (ALWAYS, ON_FAILURE)


def _waits(
    model: ExecutionModel, inst: Instance, graph: Graph, x: int, y: int, breach: Breach
) -> tuple[str, str, Loc, tuple[str, ...]]:
    """x is ordered after y, yet starts while y runs or after y failed."""
    jobs = model.jobs
    names = (breach.starter, breach.other)
    if breach.kind == AFTER_FAILURE and inst.allow_failure[y]:
        why = (
            "a manual job defaults to allow_failure: true"
            if inst.when[y] == MANUAL and "allow_failure" not in jobs[y].job.locs
            else "allow_failure: true"
        )
        return (
            ALLOW_FAILURE,
            f"{breach.other} has {why}: GitLab counts its failure as a success, so the jobs "
            f"after it, {breach.starter} included, still run",
            _variant_loc(model, inst, y, "allow_failure"),
            names,
        )
    between = [x] + [z for z in inst.order if z in graph.ancestors(x) and y in graph.ancestors(z)]
    for z in between:
        if _accepts_failure(inst, z):
            what = (
                "runs even when a job before it failed"
                if inst.when[z] == ALWAYS
                else "runs when a job before it failed"
            )
            waits = "" if z == x else f", and {breach.starter} runs after it"
            return (
                WHEN,
                f"{jobs[z].name} has when: {inst.when[z]}: it {what}, so it does not wait for "
                f"{breach.other} to succeed{waits}",
                _variant_loc(model, inst, z, "when"),
                (*names, jobs[z].name) if z != x else names,
            )
    return _reversed(model, inst, graph, y, x, breach)


def _reversed(
    model: ExecutionModel, inst: Instance, graph: Graph, late: int, early: int, breach: Breach
) -> tuple[str, str, Loc, tuple[str, ...]]:
    """`early` started although it comes after `late`, and `late` ran afterwards."""
    jobs = model.jobs
    names = (breach.starter, breach.other)
    if inst.when[late] == MANUAL and inst.allow_failure[late]:
        return (
            MANUAL_JOB,
            f"{jobs[late].name} is a manual job with allow_failure: true: until it is played "
            f"the jobs after it do not wait for it, so {jobs[early].name} can start, and "
            f"{jobs[late].name} can still be played while or after {jobs[early].name} runs",
            _variant_loc(model, inst, late, "when"),
            names,
        )
    gate = graph.manual_gate(late)
    if gate is not None:
        return (
            NEEDS_MANUAL,
            f"{jobs[late].name} needs the manual job {jobs[gate].name}: until "
            f"{jobs[gate].name} is played GitLab shows {jobs[late].name} as skipped, so "
            f"{jobs[early].name} starts; playing {jobs[gate].name} brings "
            f"{jobs[late].name} back and it runs afterwards",
            jobs[late].job.loc_of("needs"),
            (*names, jobs[gate].name),
        )
    chain = [early] + [z for z in inst.order if z in graph.ancestors(early)]
    for z in chain:
        if inst.when[z] == ALWAYS and inst.preds[z] is not None:
            return (
                WHEN,
                f"{jobs[z].name} has when: always and needs a job that was skipped: GitLab "
                "starts it at once, without waiting for its other needs "
                f"({jobs[late].name} among them)",
                _variant_loc(model, inst, z, "when"),
                (*names, jobs[z].name) if z not in (late, early) else names,
            )
    return (
        UNORDERED,
        f"{breach.starter} does not reliably wait for {breach.other} to succeed",
        jobs[model.index[breach.starter]].job.loc_of("needs"),
        names,
    )


def rules_of(model: ExecutionModel, variant: tuple[int, ...]) -> tuple[tuple[str, Variant], ...]:
    return tuple(
        (job.name, job.variants[variant[job.index]]) for job in model.jobs if len(job.variants) > 1
    )


def counterexample(
    model: ExecutionModel, variant: tuple[int, ...], steps: Sequence[Event], breach: Breach
) -> Counterexample:
    inst = model.instance(variant)
    mechanism, message, loc, jobs = explain(model, inst, breach)
    failed = {e.job for e in steps if e.kind == Kind.FAIL}
    raced = [e.job for e in steps if e.kind == Kind.RETRY and e.job in failed]
    if raced:
        message += (
            f" (GitLab may process the failed attempt of {raced[0]} before creating its "
            "automatic retry: jobs that run on a failure are enqueued, and the retry then "
            "succeeds)"
        )
    return Counterexample(
        steps=tuple(steps),
        breach=breach,
        mechanism=mechanism,
        message=message,
        loc=loc,
        jobs=jobs,
        variant=variant,
        rules=rules_of(model, variant),
    )
