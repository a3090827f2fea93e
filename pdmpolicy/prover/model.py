"""The execution model of one pipeline run: what GitLab can do, one job event at a time.

A run is a sequence of job events: an attempt starts (or a manual job is played), succeeds
or fails, a failed attempt is retried. After every event GitLab *processes* the pipeline:
each job still waiting is enqueued, made playable, or skipped, from the statuses of the jobs
it waits for. The processing rules are GitLab's own (`Gitlab::Ci::Status::Composite`,
`Ci::ProcessBuildService`, `Ci::ResetSkippedJobsService`); docs/execution-model.md lists
every rule with its source and the conservative readings taken where GitLab is unclear.

The brute-force explorer walks these runs, and the prover's counterexamples are replayed
here, so there is exactly one definition of what a run of a pipeline is.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import cached_property

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import CiJob, Pipeline

ON_SUCCESS = "on_success"
ON_FAILURE = "on_failure"
ALWAYS = "always"
MANUAL = "manual"
DELAYED = "delayed"
NEVER = "never"
_LIKE_ON_SUCCESS = (ON_SUCCESS, MANUAL, DELAYED)


class Status(IntEnum):
    """Where a job is in a run (GitLab's statuses, merged where nothing tells them apart)."""

    CREATED = 0
    """Waiting for the jobs before it."""
    PENDING = 1
    """Enqueued (also: delayed, waiting for a runner or its resource group): starts at any
    moment."""
    MANUAL = 2
    """Playable: starts when someone plays it, or never."""
    RUNNING = 3
    RETRYING = 4
    """An attempt failed and GitLab replaced it with its automatic retry before anything
    saw the failure; the retry starts at any moment."""
    SUCCESS = 5
    FAILED = 6
    SKIPPED = 7
    ABSENT = 8
    """Not in this run: `rules` (or `when: never`) left it out."""


# What one job contributes to the status its successors see (Composite's input).
SYM_SUCCESS = 1
SYM_FAILED = 2
SYM_WARNED = 4
"""Failed with `allow_failure`: GitLab's success_with_warnings."""
SYM_SKIPPED = 8
SYM_IGNORED = 16
"""A manual job with `allow_failure: true` not played yet."""
SYM_INCOMPLETE = 32

# Composite results.
RESULT_SUCCESS = "success"
RESULT_FAILED = "failed"
RESULT_SKIPPED = "skipped"


def symbol(status: int, allow_failure: bool) -> int:
    """The symbol a job in `status` contributes to its successors' composite (0: absent)."""
    if status == Status.SUCCESS:
        return SYM_SUCCESS
    if status == Status.FAILED:
        return SYM_WARNED if allow_failure else SYM_FAILED
    if status == Status.SKIPPED:
        return SYM_SKIPPED
    if status == Status.MANUAL and allow_failure:
        return SYM_IGNORED
    if status == Status.ABSENT:
        return 0
    return SYM_INCOMPLETE


def _symbols() -> tuple[tuple[int, ...], tuple[int, ...]]:
    plain = tuple(symbol(s, False) for s in Status)
    allowed = tuple(symbol(s, True) for s in Status)
    return plain, allowed


def composite(mask: int, dag: bool) -> str | None:
    """GitLab's composite status of the jobs a job waits for; None while it must wait.

    `mask` is the union of the jobs' symbols; `dag` is true for a job with `needs`.
    Mirrors `Gitlab::Ci::Status::Composite#status` restricted to the statuses modelled.
    """
    if mask == 0:
        return RESULT_SUCCESS
    if dag and mask & (SYM_SKIPPED | SYM_IGNORED):
        return RESULT_SKIPPED  # "The DAG job is skipped if one of the needs does not run at all."
    if mask & ~(SYM_SKIPPED | SYM_IGNORED) == 0:
        return RESULT_SKIPPED
    if mask & ~(SYM_SUCCESS | SYM_SKIPPED | SYM_WARNED | SYM_IGNORED) == 0:
        return RESULT_SUCCESS
    if mask & SYM_INCOMPLETE:
        return None
    return RESULT_FAILED


COMPOSITE: dict[tuple[int, bool], str | None] = {}
"""`composite` for every mask, filled below: processing looks it up."""
SYMBOLS: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
"""`symbol` by allow_failure then status, filled below."""


def valid(when: str, dag: bool, result: str) -> bool:
    """Whether a job runs (or becomes playable) for this composite, per ProcessBuildService."""
    if when in _LIKE_ON_SUCCESS:
        return result == RESULT_SUCCESS or (result == RESULT_SKIPPED and not dag)
    if when == ON_FAILURE:
        return result == RESULT_FAILED
    return when == ALWAYS


_ALL = SYM_SUCCESS | SYM_FAILED | SYM_WARNED | SYM_SKIPPED | SYM_IGNORED | SYM_INCOMPLETE
COMPOSITE.update({(m, d): composite(m, d) for m in range(_ALL + 1) for d in (False, True)})
SYMBOLS = _symbols()


@dataclass(frozen=True)
class Variant:
    """One way a job can be in a run: its own settings, or one outcome of its `rules:`."""

    when: str
    allow_failure: bool
    loc: Loc | None
    """The rule that gives this outcome; None for a job without rules."""

    @property
    def present(self) -> bool:
        return self.when != NEVER


@dataclass(frozen=True)
class ModelJob:
    """A job as the model sees it; `variants` are fixed when the pipeline is created."""

    index: int
    name: str
    job: CiJob
    rank: int
    """Position of the job's stage."""
    needs: tuple[tuple[int, bool], ...] | None
    """(index, optional) of the jobs named in `needs` that exist; None without `needs`."""
    retry: int
    """Effective `retry`. `retry:when` is not modelled: any failure may or may not be
    retried (docs/execution-model.md, R9)."""
    resource_group: str | None
    executor: bool
    variants: tuple[Variant, ...]

    @property
    def dag(self) -> bool:
        return self.needs is not None


class Kind(StrEnum):
    START = "start"
    PLAY = "play"
    SUCCEED = "succeed"
    FAIL = "fail"
    FAIL_RETRIED = "fail-retried"
    RETRY = "retry"


@dataclass(frozen=True)
class Event:
    """One step of a run: something happens to one attempt of one job."""

    kind: Kind
    job: str
    attempt: int

    @property
    def starts(self) -> bool:
        return self.kind in (Kind.START, Kind.PLAY, Kind.RETRY)

    def describe(self) -> str:
        who = f"{self.job} attempt {self.attempt}"
        if self.kind == Kind.START:
            return f"{who} starts"
        if self.kind == Kind.PLAY:
            return f"{self.job} is played: attempt {self.attempt} starts"
        if self.kind == Kind.SUCCEED:
            return f"{who} succeeds"
        if self.kind == Kind.FAIL:
            return f"{who} fails"
        if self.kind == Kind.FAIL_RETRIED:
            return f"{who} fails (GitLab retries it automatically)"
        return f"retry: {who} starts"


OVERLAP = "overlap"
AFTER_FAILURE = "after-failure"
RETRIED = "retry"


@dataclass(frozen=True)
class Breach:
    """An executor attempt that starts where `pdm-at-most-once` forbids it."""

    kind: str
    """RETRIED (its own earlier attempt failed), OVERLAP (`other` is running) or
    AFTER_FAILURE (an attempt of `other` failed before)."""
    starter: str
    other: str


class InvalidRun(Exception):
    """An event that cannot happen at that point of the run (a bad counterexample)."""


@dataclass(frozen=True)
class Instance:
    """The jobs of one run once `rules:` decided: which are there, with which settings."""

    variant: tuple[int, ...]
    present: tuple[bool, ...]
    when: tuple[str, ...]
    allow_failure: tuple[bool, ...]
    preds: tuple[tuple[int, ...] | None, ...]
    """For a job with `needs`: the needed jobs in this run. None: every job of an earlier
    stage."""
    creatable: bool
    """False when a job needs (not optionally) a job `rules:` left out: GitLab refuses to
    create such a pipeline, so it has no run."""
    order: tuple[int, ...]
    """Processing order: stage by stage, needed jobs first."""
    needed_by: tuple[tuple[int, ...], ...]
    """For each job, the present jobs that name it in `needs`."""
    ranks: tuple[int, ...]

    def reset_scope(self, index: int) -> frozenset[int]:
        """Jobs GitLab re-processes when `index` is played (ResetSkippedJobsService): its
        `needs` descendants and every job of a later stage."""
        rank = self.ranks[index]
        found = set(_reachable(index, self.needed_by))
        found.update(i for i, r in enumerate(self.ranks) if r > rank and self.present[i])
        found.discard(index)
        return frozenset(found)


@dataclass(frozen=True)
class RunState:
    """A point in a run. Hashable: the explorer keeps the states it has seen."""

    instance: int
    status: tuple[int, ...]
    attempts: tuple[int, ...]
    failed_executor: int
    """Index of the first executor that had a failed attempt, or -1."""


def _variant_key(when: str, allow_failure: bool) -> tuple[str, bool]:
    when = ON_SUCCESS if when == DELAYED else when
    return when, allow_failure if when != NEVER else False


def choice_variants(job: CiJob) -> tuple[int, ...]:
    """For each of the job's `choices`, the index of its variant (`_variants`)."""
    keys: list[tuple[str, bool]] = []
    for choice in job.choices:
        key = _variant_key(choice.when, choice.allow_failure)
        if key not in keys:
            keys.append(key)
    return tuple(keys.index(_variant_key(c.when, c.allow_failure)) for c in job.choices)


def _variants(job: CiJob) -> tuple[Variant, ...]:
    """The job's ways of being in a run, one per distinct behaviour (`delayed` behaves as
    `on_success`; `allow_failure` does not matter for a job that is not there)."""
    if not job.choices:
        return (Variant(job.when, job.allow_failure, None),)
    seen: dict[tuple[str, bool], Variant] = {}
    for choice in job.choices:
        key = _variant_key(choice.when, choice.allow_failure)
        seen.setdefault(key, Variant(choice.when, key[1], choice.loc))
    return tuple(seen.values())


class ExecutionModel:
    """Runs of one pipeline. `executors`: the jobs that execute PDMs (default: analysis)."""

    MAX_INSTANCES = 4096
    """Combinations of `rules:` outcomes enumerated; more are reported as unsupported."""

    def __init__(self, pipeline: Pipeline, executors: Collection[str] | None = None) -> None:
        self.pipeline = pipeline
        if executors is None:
            effects = analyse(pipeline).effects
            executors = {name for name, effect in effects.items() if effect.is_executor}
        self.executor_names = frozenset(executors)
        ranks = {stage: i for i, stage in enumerate(pipeline.stages)}
        names = {job.name: i for i, job in enumerate(pipeline.jobs)}
        jobs = []
        for index, job in enumerate(pipeline.jobs):
            needs = None
            if job.needs is not None:
                needs = tuple((names[n.job], n.optional) for n in job.needs if n.job in names)
            jobs.append(
                ModelJob(
                    index=index,
                    name=job.name,
                    job=job,
                    rank=ranks.get(job.stage, 0),
                    needs=needs,
                    retry=job.retry,
                    resource_group=job.resource_group,
                    executor=job.name in self.executor_names,
                    variants=_variants(job),
                )
            )
        self.jobs: tuple[ModelJob, ...] = tuple(jobs)
        self.choice_variants = tuple(choice_variants(job) for job in pipeline.jobs)
        """For each job, the variant each of its `choices` gives."""
        self.index = names
        self.order = _order(self.jobs)
        self.forward_needs = any(
            self.jobs[n].rank > job.rank for job in self.jobs for n, _ in job.needs or ()
        )
        """A job needs a job of a later stage (GitLab refuses that; processed to a fixpoint)."""
        self._instances: dict[tuple[int, ...], Instance] = {}
        self._vector_ids: dict[tuple[int, ...], int] = {}
        self._vector_list: list[tuple[int, ...]] = []

    # -- structure -------------------------------------------------------------------

    @property
    def combinations(self) -> int:
        count = 1
        for job in self.jobs:
            count *= len(job.variants)
        return count

    def variant_vectors(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(len(job.variants)) for job in self.jobs))

    def instance(self, variant: tuple[int, ...]) -> Instance:
        found = self._instances.get(variant)
        if found is None:
            found = self._build(variant)
            self._instances[variant] = found
        return found

    def _build(self, variant: tuple[int, ...]) -> Instance:
        jobs = self.jobs
        chosen = [job.variants[v] for job, v in zip(jobs, variant, strict=True)]
        present = tuple(v.present for v in chosen)
        creatable = True
        preds: list[tuple[int, ...] | None] = []
        for job in jobs:
            if job.needs is None:
                preds.append(None)
                continue
            kept = []
            for need, optional in job.needs:
                if present[need]:
                    kept.append(need)
                elif not optional and present[job.index]:
                    creatable = False
            preds.append(tuple(kept))
        children: list[list[int]] = [[] for _ in jobs]
        for job in jobs:
            needed = preds[job.index]
            if present[job.index] and needed is not None:
                for need in needed:
                    children[need].append(job.index)
        return Instance(
            variant=variant,
            present=present,
            when=tuple(v.when for v in chosen),
            allow_failure=tuple(v.allow_failure for v in chosen),
            preds=tuple(preds),
            creatable=creatable,
            order=self.order,
            needed_by=tuple(tuple(c) for c in children),
            ranks=tuple(job.rank for job in jobs),
        )

    def instances(self) -> Iterator[Instance]:
        """Every creatable combination of `rules:` outcomes (at most MAX_INSTANCES)."""
        for vector in itertools.islice(self.variant_vectors(), self.MAX_INSTANCES):
            inst = self.instance(vector)
            if inst.creatable:
                yield inst

    @cached_property
    def has_rules(self) -> bool:
        return any(len(job.variants) > 1 for job in self.jobs)

    # -- runs ------------------------------------------------------------------------

    def initial(self, inst: Instance) -> RunState:
        status: list[int] = [Status.CREATED if p else Status.ABSENT for p in inst.present]
        process(self, inst, status)
        vectors = self._vector_ids
        if inst.variant not in vectors:
            vectors[inst.variant] = len(self._vector_list)
            self._vector_list.append(inst.variant)
        return RunState(vectors[inst.variant], tuple(status), (0,) * len(self.jobs), -1)

    def instance_of(self, state: RunState) -> Instance:
        return self.instance(self._vector_list[state.instance])

    def enabled(self, state: RunState) -> list[Event]:
        """The events that can happen next, in a fixed order."""
        status = state.status
        jobs = self.jobs
        live = [i for i, s in enumerate(status) if Status.PENDING <= s <= Status.FAILED]
        busy = {
            jobs[i].resource_group
            for i in live
            if status[i] == Status.RUNNING and jobs[i].resource_group is not None
        }
        events = []
        for i in live:
            job = jobs[i]
            s = status[i]
            free = job.resource_group is None or job.resource_group not in busy
            attempt = state.attempts[i]
            if s == Status.PENDING and free:
                events.append(Event(Kind.START, job.name, attempt + 1))
            elif s == Status.MANUAL and free:
                events.append(Event(Kind.PLAY, job.name, attempt + 1))
            elif s in (Status.RETRYING, Status.FAILED) and attempt <= job.retry and free:
                events.append(Event(Kind.RETRY, job.name, attempt + 1))
            elif s == Status.RUNNING:
                events.append(Event(Kind.SUCCEED, job.name, attempt))
                if attempt <= job.retry:
                    events.append(Event(Kind.FAIL_RETRIED, job.name, attempt))
                events.append(Event(Kind.FAIL, job.name, attempt))
        return events

    def step(
        self, state: RunState, event: Event, *, checked: bool = False
    ) -> tuple[RunState, Breach | None]:
        """The state after `event`, and the breach it commits, if any. `checked`: the
        caller took `event` from `enabled(state)` itself."""
        if not checked and event not in self.enabled(state):
            raise InvalidRun(f"{event.describe()}: not possible at this point of the run")
        inst = self.instance_of(state)
        i = self.index[event.job]
        job = self.jobs[i]
        status = list(state.status)
        attempts = list(state.attempts)
        failed = state.failed_executor
        breach = None
        if event.starts:
            if job.executor:
                breach = self._breach(state, job, event)
            status[i] = Status.RUNNING
            attempts[i] = event.attempt
            if event.kind in (Kind.PLAY, Kind.RETRY):
                for other in inst.reset_scope(i):
                    if status[other] == Status.SKIPPED:
                        status[other] = Status.CREATED
        elif event.kind == Kind.SUCCEED:
            status[i] = Status.SUCCESS
        else:
            status[i] = Status.RETRYING if event.kind == Kind.FAIL_RETRIED else Status.FAILED
            if job.executor and failed < 0:
                failed = i
        process(self, inst, status)
        return RunState(state.instance, tuple(status), tuple(attempts), failed), breach

    def _breach(self, state: RunState, job: ModelJob, event: Event) -> Breach | None:
        if event.kind == Kind.RETRY:
            return Breach(RETRIED, job.name, job.name)
        for other in self.jobs:
            if other.executor and state.status[other.index] == Status.RUNNING:
                return Breach(OVERLAP, job.name, other.name)
        if state.failed_executor >= 0:
            return Breach(AFTER_FAILURE, job.name, self.jobs[state.failed_executor].name)
        return None

    def replay(self, variant: tuple[int, ...], events: Sequence[Event]) -> list[Breach | None]:
        """Play `events` from the start of the run with these `rules:` outcomes; the breach
        of each event. Raises InvalidRun when an event cannot happen where it is."""
        inst = self.instance(variant)
        if not inst.creatable:
            raise InvalidRun("GitLab does not create this pipeline (a needed job is left out)")
        state = self.initial(inst)
        found = []
        for event in events:
            state, breach = self.step(state, event)
            found.append(breach)
        return found


def _reachable(start: int, children: Sequence[Sequence[int]]) -> Iterator[int]:
    seen = {start}
    stack = [start]
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
                yield child


def _order(jobs: Sequence[ModelJob]) -> tuple[int, ...]:
    """Stage by stage; within a stage, a job after the jobs of that stage it needs."""
    result: list[int] = []
    for rank in sorted({job.rank for job in jobs}):
        members = [job for job in jobs if job.rank == rank]
        inside = {job.index for job in members}
        placed: set[int] = set()
        remaining = list(members)
        while remaining:
            ready = [
                job
                for job in remaining
                if all(n in placed or n not in inside for n, _ in job.needs or ())
            ]
            if not ready:  # a cycle of needs: GitLab refuses it; keep file order
                ready = remaining[:1]
            for job in ready:
                placed.add(job.index)
                result.append(job.index)
                remaining.remove(job)
    return tuple(result)


def process(model: ExecutionModel, inst: Instance, status: list[int]) -> None:
    """GitLab's pipeline processing, to a fixpoint: every CREATED job whose predecessors are
    complete is enqueued, made playable, or skipped (Ci::ProcessBuildService)."""
    jobs = model.jobs
    table = COMPOSITE
    symbols = SYMBOLS
    af = inst.allow_failure
    changed = True
    while changed:
        # One pass in stage order settles every job, unless a job needs a later one.
        changed = False
        lower = 0  # symbols of the jobs of earlier stages
        current = 0  # symbols of the jobs of the stage being processed
        rank = -1
        for i in inst.order:
            job = jobs[i]
            if job.rank != rank:
                lower |= current
                current = 0
                rank = job.rank
            if status[i] == Status.CREATED:
                needed = inst.preds[i]
                if needed is None:
                    mask = lower
                else:
                    mask = 0
                    for n in needed:
                        mask |= symbols[af[n]][status[n]]
                result = table[mask, needed is not None]
                if result is not None:
                    when = inst.when[i]
                    if valid(when, needed is not None, result):
                        status[i] = Status.MANUAL if when == MANUAL else Status.PENDING
                    else:
                        status[i] = Status.SKIPPED
                    changed = model.forward_needs
            current |= symbols[af[i]][status[i]]
