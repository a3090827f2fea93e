"""The fast decision procedure for `pdm-at-most-once`: no enumeration of runs.

The prover reasons about a handful of *canonical runs* instead of every interleaving. Each
canonical run is computed in one pass over the jobs in processing order (linear in the size
of the pipeline): every job that GitLab enqueues succeeds, every manual job is played at
once, except for the few jobs the question is about. Why this decides the invariant, for
executors e and d (docs/execution-model.md, "How the prover decides", has the argument):

- *Retry.* e with an effective `retry` > 0 breaks the invariant as soon as it can start.
- *After a failure.* Some run breaks the invariant between e and d iff d can be ready to
  start in a run where e has failed (d not before e). Any other way d could overlap e
  (e running, not played yet, not started) gives a run where e fails instead and d still
  becomes ready, because a failure never makes a job wait: it completes e. And a failure
  or a skipped job elsewhere never helps d, except by triggering an `on_failure` job: the
  prover tries the failures of the jobs those wait for.
- *Revival.* A job that needs an unplayed manual job (with `allow_failure: true`) shows as
  skipped, so later stages go on; playing the manual job later brings it back
  (`Ci::ResetSkippedJobsService`). So u can still start after d started, if u is skipped
  while the manual job waits and runs once it is played.

Every counterexample comes from a canonical run and is played out in the execution model
(`witness.py`), so it is a real run; the tests replay each one.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from pdmpolicy.gitlab.pipeline import Pipeline
from pdmpolicy.prover.conditions import Conditions
from pdmpolicy.prover.counterexample import Counterexample, Graph, counterexample
from pdmpolicy.prover.model import (
    AFTER_FAILURE,
    COMPOSITE,
    MANUAL,
    ON_FAILURE,
    OVERLAP,
    RETRIED,
    SYMBOLS,
    Breach,
    Event,
    ExecutionModel,
    Instance,
    Kind,
    Status,
    valid,
)
from pdmpolicy.prover.parts import parts, rows
from pdmpolicy.prover.witness import REVIVAL, Plan, play

MAX_INSTANCES = 256
INSTANCE_BUDGET = 200_000
"""Combinations of `rules:` outcomes the prover decides one by one: at least MAX_INSTANCES,
more on small pipelines (INSTANCE_BUDGET job-steps)."""
FAILURE_BUDGET = 100_000
"""Job-steps spent per question on sets of failing jobs that trigger `on_failure` jobs (at
least 16 sets, at most 4096): every set on small pipelines, the smallest sets on large
ones."""
MAX_DRIVEN_JOBS = 200
"""Counterexamples of pipelines up to this size are played out in the execution model (valid
by construction); larger ones are the canonical run's events, which can miss a job GitLab
enqueues while a manual job with allow_failure waits to be played."""
MAX_MINIMISE_JOBS = 60
"""Counterexamples of pipelines up to this size are shortened greedily (a canonical run per
try); larger ones keep the canonical run's events."""

_RAN = (Status.SUCCESS, Status.FAILED)

ORDER_ABSENT = "absent"
"""`rules:` can leave the first job out while the second is there."""
ORDER_BEFORE = "before"
"""The second job is one the first waits for."""
ORDER_FAILURE = "failure"
"""The second job starts after the first failed (or was skipped)."""
ORDER_MANUAL = "manual"
"""The first job shows as skipped while an optional manual job it needs is not played,
and the second job runs meanwhile (R7)."""
_ENQUEUED = (Status.SUCCESS, Status.FAILED, Status.RUNNING, Status.MANUAL)


@dataclass(frozen=True)
class Proof:
    """The verdict on one pipeline: no violation, or a counterexample for each one found."""

    pipeline: Pipeline
    executors: tuple[str, ...]
    violations: tuple[Counterexample, ...]
    """Shortest first; one per executor that starts and what it breaks against."""
    complete: bool = True
    """False when a limit was reached (too many `rules:` combinations or failure sets):
    the violations found are real, but others may exist."""
    notes: tuple[str, ...] = field(default=())

    @property
    def safe(self) -> bool:
        return not self.violations


def prove(pipeline: Pipeline, *, executors: Collection[str] | None = None) -> Proof:
    """Decide `pdm-at-most-once` for `pipeline` (executors: default from the analysis)."""
    model = ExecutionModel(pipeline, executors)
    return prove_model(model)


def prove_model(model: ExecutionModel, *, split: bool = True) -> Proof:
    """Decide the invariant on `model`. With `split` (the default), each pair of executors
    is decided over the `rules:` outcomes of the jobs it depends on (`parts.py`); without
    it, over every combination of the outcomes of the jobs any executor waits for."""
    found: dict[tuple[str, str, str], Counterexample] = {}
    complete = True
    notes: list[str] = []
    executors = [job.index for job in model.jobs if job.executor]
    budget = max(MAX_INSTANCES, INSTANCE_BUDGET // max(1, len(model.jobs)))
    # On large pipelines a pair of executors with a counterexample is not asked again: the
    # verdict is known, and each counterexample costs a run played out in the model.
    settled: set[frozenset[int]] | None = set() if len(model.jobs) > MAX_MINIMISE_JOBS else None
    for pairs, vectors, count, focus in _plan(model, executors, split=split, budget=budget):
        if count > budget:
            complete = False
            names = sorted({model.jobs[e].name for pair in pairs for e in pair})
            about = f" for {', '.join(names)}" if split and len(names) <= 4 else ""
            notes.append(
                f"{count} combinations of rules outcomes{about}; decided the first {budget}"
            )
            vectors = itertools.islice(vectors, budget)
        for vector in vectors:
            inst = model.instance(vector)
            if not inst.creatable:
                continue
            search = _Search(model, inst, pairs, focus, settled)
            for example in search.run():
                if example is None:
                    continue
                key = (example.breach.kind, example.breach.starter, example.breach.other)
                known = found.get(key)
                if known is None or len(example) < len(known):
                    found[key] = example
            complete = complete and search.complete
            notes += sorted(search.notes - set(notes))
    violations = sorted(found.values(), key=lambda c: (len(c), c.breach.starter, c.breach.other))
    return Proof(
        pipeline=model.pipeline,
        executors=tuple(sorted(model.executor_names)),
        violations=tuple(violations),
        complete=complete,
        notes=tuple(notes),
    )


_Plan = tuple[frozenset[frozenset[int]], Iterator[tuple[int, ...]], int, frozenset[int] | None]


def _plan(
    model: ExecutionModel, executors: Sequence[int], *, split: bool, budget: int
) -> Iterator[_Plan]:
    """(questions, variant vectors, how many, the jobs the questions depend on) to decide:
    one entry per combination that decides some parts (parts.py), then one entry per part
    with more than `budget` combinations (no vectors: the note that it was cut short)."""
    if not executors:
        return
    if split and not model.forward_needs:
        found = parts(model)
        decided, truncated = rows(model, found, budget, Conditions(model.pipeline))
        for row in decided:
            yield row.pairs, iter([row.vector]), 1, row.focus
        for part, count in truncated:
            yield part.pairs, iter(()), count, part.focus
        return
    # A need on a later stage (GitLab refuses it) defeats the argument for splitting.
    pairs = frozenset(frozenset(p) for p in itertools.combinations(executors, 2))
    if len(executors) == 1:
        pairs = frozenset([frozenset(executors)])
    choices = _relevant_variants(model)
    conditions = Conditions(model.pipeline)
    allowed = conditions.outcomes(model.choice_variants) if conditions.rules else None
    vectors: Iterator[tuple[int, ...]]
    if allowed is None:
        count = 1
        for options in choices:
            count *= len(options)
        vectors = itertools.product(*choices)
    else:
        # The readable jobs take the outcomes an assignment of the variables gives (every
        # job's, not only those an executor waits for: the reduction above does not hold
        # once outcomes are correlated); the others as above.
        read = sorted(conditions.rules)
        free = [j for j in range(len(model.jobs)) if j not in conditions.rules]
        count = len(allowed)
        for j in free:
            count *= len(choices[j])
        vectors = (
            _merge(read, outcome, free, rest)
            for outcome in sorted(allowed)
            for rest in itertools.product(*(choices[j] for j in free))
        )
    yield pairs, vectors, count, None


def _merge(
    first: Sequence[int], values: Sequence[int], second: Sequence[int], more: Sequence[int]
) -> tuple[int, ...]:
    vector = [0] * (len(first) + len(second))
    for index, value in zip(first, values, strict=True):
        vector[index] = value
    for index, value in zip(second, more, strict=True):
        vector[index] = value
    return tuple(vector)


def _relevant_variants(model: ExecutionModel) -> list[tuple[int, ...]]:
    """The `rules:` outcomes worth enumerating, job by job. A job that no executor waits for,
    whatever the outcomes, cannot change what an executor does: one outcome stands for all,
    preferably "not in the pipeline". (Playing such a job re-processes the skipped jobs
    after it, which decide the same way.)"""
    jobs = model.jobs
    waits: set[int] = set()
    stack = [job.index for job in jobs if job.executor]
    seen = set(stack)
    covered = min((job.rank for job in jobs), default=0)  # every job below it is in
    while stack:
        current = jobs[stack.pop()]
        if current.needs is not None:
            found = [n for n, _ in current.needs]
        elif current.rank > covered:
            found = [j.index for j in jobs if j.rank < current.rank]
            covered = current.rank
        else:
            found = []
        for index in found:
            waits.add(index)
            if index not in seen:
                seen.add(index)
                stack.append(index)
    result: list[tuple[int, ...]] = [() for _ in jobs]
    needed: set[int] = set()  # jobs a present job needs (not optionally)
    for index in reversed(model.order):  # a job before the jobs it needs
        job = jobs[index]
        every = tuple(range(len(job.variants)))
        if job.executor or index in waits or len(every) == 1:
            result[index] = every
        else:
            # Left out when a rule allows it and no job left in needs it (GitLab refuses a
            # pipeline where a job needs a job that is not there).
            absent = [v for v in every if not job.variants[v].present]
            present = [v for v in every if job.variants[v].present]
            if absent and (index not in needed or not present):
                result[index] = (absent[0],)
            else:
                result[index] = (present[0],)
        if any(job.variants[v].present for v in result[index]):
            needed.update(n for n, optional in job.needs or () if not optional)
    return result


@dataclass(frozen=True)
class _Spec:
    """Which canonical run a counterexample comes from: `first` fails (or keeps running,
    for OVERLAP; or is retried, for RETRIED), then `second` starts."""

    kind: str
    first: int
    second: int | None
    fail: frozenset[int]
    flaky: frozenset[int] = frozenset()
    """Jobs whose failure GitLab processes before their retry, which then succeeds."""
    unplayed: frozenset[int] = frozenset()

    def with_failure(self, job: int) -> _Spec:
        return replace(self, fail=self.fail | {job})

    def with_unplayed(self, job: int) -> _Spec:
        return replace(self, unplayed=self.unplayed | {job})


@dataclass
class _Flow:
    """One canonical run, job by job: the status each job ends with."""

    status: list[int]


class _Search:
    """The questions the prover asks about one instance (one set of `rules:` outcomes)."""

    def __init__(
        self,
        model: ExecutionModel,
        inst: Instance,
        pairs: frozenset[frozenset[int]],
        focus: frozenset[int] | None,
        settled: set[frozenset[int]] | None = None,
    ) -> None:
        self.model = model
        self.inst = inst
        self.graph = Graph(model, inst)
        self.complete = True
        self.notes: set[str] = set()
        jobs = model.jobs
        self.pairs = pairs
        """The questions asked: about these pairs of executors (parts.py)."""
        self.settled = settled
        """Pairs (a lone executor: retried) with a counterexample already, not asked again;
        None: ask them all, for the shortest counterexamples."""
        chosen = {e for pair in pairs for e in pair}
        self.executors = [j.index for j in jobs if j.index in chosen and inst.present[j.index]]
        # An `on_failure` job that is skipped matters only to an executor that needs it
        # through `needs` (a skipped need skips a `needs` job; a later stage takes a skipped
        # job as passed), or when it is an executor itself. The failures that would make
        # such a job run are the only extra failures worth trying.
        self.useful = [
            job.index
            for job in jobs
            if inst.present[job.index]
            and inst.when[job.index] == ON_FAILURE
            and (focus is None or job.index in focus)
            and self._matters(job.index)
        ]
        self.max_sets = max(16, min(4096, FAILURE_BUDGET // max(1, len(jobs))))

    def asked(self, e: int, d: int) -> bool:
        """Whether the question about executors e and d is this search's."""
        pair = frozenset((e, d))
        return pair in self.pairs and (self.settled is None or pair not in self.settled)

    def _settle(self, example: Counterexample | None, *jobs: int) -> Counterexample | None:
        if example is not None and self.settled is not None:
            self.settled.add(frozenset(jobs))
        return example

    def _matters(self, index: int) -> bool:
        """An executor asked about is `index` or waits for it through `needs` alone."""
        jobs = self.model.jobs
        children = self.graph.needed_by()
        seen = {index}
        stack = [index]
        while stack:
            current = stack.pop()
            if jobs[current].executor and current in self.executors:
                return True
            for child in children[current]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return False

    # -- canonical runs --------------------------------------------------------------

    def flow(
        self,
        fail: frozenset[int],
        *,
        hold: int | None = None,
        unplayed: frozenset[int] = frozenset(),
        start: Sequence[int] | None = None,
        redo: frozenset[int] = frozenset(),
    ) -> _Flow:
        """The canonical run: jobs in `fail` fail, `hold` starts and keeps running, manual
        jobs in `unplayed` are never played, every other job GitLab enqueues succeeds.
        With `start`, continue from those statuses, re-processing the jobs in `redo`."""
        present = self.inst.present
        status: list[int]
        if start is None:
            status = [Status.CREATED if p else Status.ABSENT for p in present]
            redo = frozenset(i for i, p in enumerate(present) if p)
        else:
            status = list(start)
        while True:
            self._pass(status, redo, fail, hold, unplayed)
            if not self.model.forward_needs:
                return _Flow(status)
            # A job that needs a job of a later stage: settle what is still waiting.
            waiting = frozenset(i for i in redo if status[i] == Status.CREATED)
            before = list(status)
            self._pass(status, waiting, fail, hold, unplayed)
            if status == before:
                return _Flow(status)
            redo = waiting

    def _pass(
        self,
        status: list[int],
        redo: frozenset[int],
        fail: frozenset[int],
        hold: int | None,
        unplayed: frozenset[int],
    ) -> None:
        inst = self.inst
        ranks = inst.ranks
        preds = inst.preds
        when = inst.when
        af = inst.allow_failure
        table = COMPOSITE
        symbols = SYMBOLS
        lower = 0
        current = 0
        rank = -1
        for i in inst.order:
            if ranks[i] != rank:
                lower |= current
                current = 0
                rank = ranks[i]
            if i in redo:
                needed = preds[i]
                dag = needed is not None
                if needed is None:
                    mask = lower
                else:
                    mask = 0
                    for n in needed:
                        mask |= symbols[af[n]][status[n]]
                result = table[mask, dag]
                if result is None:
                    status[i] = Status.CREATED
                elif not valid(when[i], dag, result):
                    status[i] = Status.SKIPPED
                elif i == hold:
                    status[i] = Status.RUNNING
                elif i in unplayed and when[i] == MANUAL:
                    status[i] = Status.MANUAL
                elif i in fail:
                    status[i] = Status.FAILED
                else:
                    status[i] = Status.SUCCESS
            current |= symbols[af[i]][status[i]]

    def failure_sets(
        self, base: Iterable[int], first: _Flow, *, flaky_ok: bool = True
    ) -> Iterable[tuple[frozenset[int], frozenset[int]]]:
        """(failing, flaky) job sets: `base` alone, then with one more failing job for each
        of some of the `on_failure` jobs that `first` (the run with `base`) leaves skipped.
        A job with `retry` is flaky instead (fails once, seen by GitLab, then its retry
        succeeds): that triggers the same jobs and lets the jobs after it run too."""
        base = frozenset(base)
        yield base, frozenset()
        inst = self.inst
        jobs = self.model.jobs
        pending = [n for n in self.useful if first.status[n] not in _ENQUEUED]
        children = self.graph.needed_by()
        options: list[list[int]] = []
        for n in pending:
            # One failure among the jobs n waits for triggers it; more only skip more jobs.
            # The failures that skip the fewest other jobs first: jobs that run, the latest
            # stage, the fewest jobs that need them. Jobs without `needs` that no job needs
            # are interchangeable when they share stage, `when` and retries: they end the
            # same way in every canonical run and count the same in every composite.
            candidates = sorted(
                (
                    t
                    for t in self.graph.preds(n)
                    if t not in base and not inst.allow_failure[t] and not jobs[t].executor
                ),
                key=lambda t: (first.status[t] not in _RAN, -jobs[t].rank, len(children[t]), t),
            )
            picked: list[int] = []
            kinds: set[tuple[int, str, bool]] = set()
            for t in candidates:
                if not children[t] and inst.preds[t] is None:
                    kind = (jobs[t].rank, inst.when[t], jobs[t].retry > 0)
                    if kind in kinds:
                        continue
                    kinds.add(kind)
                picked.append(t)
            if picked:
                options.append(picked)
        count = 1
        tried: set[frozenset[int]] = set()
        for size in range(1, len(options) + 1):
            for chosen in itertools.combinations(options, size):
                for picks in itertools.product(*chosen):
                    extra = frozenset(picks)
                    if extra in tried:
                        continue
                    tried.add(extra)
                    if count >= self.max_sets:
                        self.complete = False
                        self.notes.add(
                            f"tried {count} sets of failing jobs to trigger on_failure jobs"
                        )
                        return
                    count += 1
                    flaky = frozenset(t for t in extra if flaky_ok and jobs[t].retry > 0)
                    yield base | (extra - flaky), flaky

    def settle(
        self,
        fail: frozenset[int],
        flaky: frozenset[int],
        *,
        hold: int | None = None,
        unplayed: frozenset[int] = frozenset(),
    ) -> tuple[_Flow | None, _Flow]:
        """The canonical run with flaky jobs: first the window in which GitLab has seen
        their failure, then the run after their retries succeeded (the retry re-processes
        the jobs skipped meanwhile, as ResetSkippedJobsService does)."""
        if not flaky:
            return None, self.flow(fail, hold=hold, unplayed=unplayed)
        window = self.flow(fail | flaky, hold=hold, unplayed=unplayed)
        scope: set[int] = set()
        for t in flaky:
            scope |= self.inst.reset_scope(t)
        redo = frozenset(
            i
            for i, status in enumerate(window.status)
            if (i in scope and status == Status.SKIPPED) or status == Status.CREATED
        )
        begin = list(window.status)
        for t in flaky:
            if begin[t] == Status.FAILED:
                begin[t] = Status.SUCCESS
        return window, self.flow(fail, hold=hold, unplayed=unplayed, start=begin, redo=redo)

    # -- the questions ---------------------------------------------------------------

    def run(self) -> list[Counterexample | None]:
        examples: list[Counterexample | None] = []
        for e in self.executors:
            examples += self._after_failure(e)
            examples += self._overlap(e)
        for manual in self._optional_manuals():
            examples += self._revival(manual)
        return examples

    def _optional_manuals(self) -> list[int]:
        inst = self.inst
        return [
            j.index
            for j in self.model.jobs
            if inst.present[j.index]
            and inst.when[j.index] == MANUAL
            and inst.allow_failure[j.index]
        ]

    def before_success(self, a: int, b: int) -> tuple[str, int | None] | None:
        """How `b` can start, in this instance, before `a` succeeded: (ORDER_*, the job
        responsible or None), or None when it cannot. By the same argument as the
        questions: a run where b starts before a succeeded gives a run where a fails at
        that point and b still starts, unless b could start because a showed as skipped
        while an optional manual job it needs was not played (R7)."""
        inst = self.inst
        if not inst.present[b]:
            return None
        if not inst.present[a]:
            how = ORDER_ABSENT
        elif b in self.graph.ancestors(a):
            how = ORDER_BEFORE
        else:
            how = ORDER_FAILURE
        for fail, flaky in self.failure_sets([a], self.flow(frozenset([a]))):
            _, flow = self.settle(fail, flaky)
            if flow.status[b] in _ENQUEUED and flow.status[a] != Status.SUCCESS:
                return how, None
        for manual in self._optional_manuals():
            unplayed = frozenset([manual])
            start = self.flow(frozenset(), unplayed=unplayed)
            for fail, _ in self.failure_sets([], start, flaky_ok=False):
                flow = self.flow(fail, unplayed=unplayed)
                if flow.status[b] in _RAN and flow.status[a] != Status.SUCCESS:
                    return (how, None) if how == ORDER_ABSENT else (ORDER_MANUAL, manual)
        return None

    def _after_failure(self, e: int) -> list[Counterexample | None]:
        """e fails; which executors can then be ready? (Also: can e start at all?)"""
        examples: list[Counterexample | None] = []
        retried = False
        seen: set[int] = set()
        first = self.flow(frozenset([e]))
        wanted = {
            d
            for d in self.executors
            if d != e and self.asked(e, d) and d not in self.graph.ancestors(e)
        }
        for fail, flaky in self.failure_sets([e], first):
            if wanted <= seen and (retried or self.model.jobs[e].retry == 0):
                break
            _, flow = self.settle(fail, flaky)
            if flow.status[e] != Status.FAILED:
                continue
            if self.model.jobs[e].retry > 0 and not retried:
                retried = True
                if self.settled is None or frozenset([e]) not in self.settled:
                    example = self._shortest(_Spec(RETRIED, e, None, fail, flaky))
                    examples.append(self._settle(example, e))
            for d in self.executors:
                if d == e or d in seen or flow.status[d] not in _ENQUEUED or not self.asked(e, d):
                    continue
                if d in self.graph.ancestors(e):
                    continue
                seen.add(d)
                example = self._shortest(_Spec(AFTER_FAILURE, e, d, fail, flaky))
                examples.append(self._settle(example, e, d))
        return examples

    def _overlap(self, e: int) -> list[Counterexample | None]:
        """e starts and keeps running; which executors can start meanwhile? Only for a
        shorter counterexample: the failure case already decides the verdict."""
        jobs = self.model.jobs
        examples: list[Counterexample | None] = []
        group = jobs[e].resource_group
        seen: set[int] = set()
        first = self.flow(frozenset(), hold=e)
        wanted = {
            d
            for d in self.executors
            if d != e and self.asked(e, d) and d not in self.graph.ancestors(e)
        }
        for fail, flaky in self.failure_sets([], first):
            if wanted <= seen:
                break
            _, flow = self.settle(fail, flaky, hold=e)
            if flow.status[e] != Status.RUNNING:
                continue
            for d in self.executors:
                if d == e or d in seen or flow.status[d] not in _ENQUEUED or not self.asked(e, d):
                    continue
                if d in self.graph.ancestors(e):
                    continue
                if group is not None and group == jobs[d].resource_group:
                    continue
                seen.add(d)
                example = self._shortest(_Spec(OVERLAP, e, d, fail, flaky))
                examples.append(self._settle(example, e, d))
        return examples

    def _revival(self, manual: int) -> list[Counterexample | None]:
        """`manual` is left unplayed: jobs that need it show as skipped and later stages go
        on; played later, it brings them back."""
        inst = self.inst
        jobs = self.model.jobs
        examples: list[Counterexample | None] = []
        if not self._matters(manual):
            return []  # no executor shows as skipped because of it
        unplayed = frozenset([manual])
        for fail, _ in self.failure_sets(
            [], self.flow(frozenset(), unplayed=unplayed), flaky_ok=False
        ):
            first = self.flow(fail, unplayed=unplayed)
            if first.status[manual] != Status.MANUAL:
                continue
            ready = [d for d in self.executors if first.status[d] in _RAN]
            if not ready:
                continue
            scope = inst.reset_scope(manual)
            redo = frozenset(
                i
                for i in range(len(jobs))
                if (i in scope and first.status[i] == Status.SKIPPED)
                or first.status[i] == Status.CREATED
            )
            if not jobs[manual].executor and not any(u in redo for u in self.executors):
                continue
            begin = list(first.status)
            begin[manual] = Status.SUCCESS
            second = self.flow(fail, start=begin, redo=redo)
            late = [u for u in self.executors if u in redo and second.status[u] in _RAN]
            if jobs[manual].executor:
                late.append(manual)
            for u in late:
                for d in ready:
                    if d != u and self.asked(u, d) and d not in self.graph.ancestors(u):
                        example = self._revival_witness(first, second, manual, u, d, fail)
                        examples.append(self._settle(example, u, d))
        return examples

    # -- counterexamples -------------------------------------------------------------

    def needed(self, flow: _Flow, targets: Iterable[int], stop: Collection[int] = ()) -> set[int]:
        """The jobs whose statuses the targets' processing depends on, transitively (not
        looking further back than the jobs in `stop`)."""
        inst = self.inst
        jobs = self.model.jobs
        status = flow.status
        needed: set[int] = set()
        stack = list(targets)
        done_below = -1  # stages below this rank are all in `needed` already
        while stack:
            j = stack.pop()
            if status[j] in (Status.CREATED, Status.ABSENT) or j in stop:
                continue
            preds = inst.preds[j]
            if preds is None:
                rank = jobs[j].rank
                if rank <= done_below:
                    continue
                for other in self.graph.below(rank):
                    if other not in needed:
                        needed.add(other)
                        stack.append(other)
                done_below = max(done_below, rank)
                continue
            decisive = [
                n
                for n in preds
                if status[n] == Status.SKIPPED
                or (status[n] == Status.MANUAL and inst.allow_failure[n])
            ]
            for n in decisive[:1] or preds:
                if n not in needed:
                    needed.add(n)
                    stack.append(n)
        return needed

    def _events(self, flow: _Flow, jobs: Iterable[int]) -> list[Event]:
        """The events of the jobs that ran, in processing order, except that a manual job
        with allow_failure is played as soon as it can be: until it is played GitLab
        counts it as passed, and the canonical run has it played at once."""
        inst = self.inst
        chosen = set(jobs)
        order = [i for i in inst.order if i in chosen and flow.status[i] in _RAN]
        eager = [i for i in order if inst.when[i] == MANUAL and inst.allow_failure[i]]
        if not eager:
            return [ev for i in order for ev in self._run(flow, i)]
        position = {job: n for n, job in enumerate(order)}
        waits: dict[int, set[int]] = {}
        for manual in eager:
            waits[manual] = {
                j for j in self.needed(flow, [manual]) if j in position and j != manual
            }
        waiting_on: dict[int, list[int]] = {}
        for manual, jobs_before in waits.items():
            for j in jobs_before:
                waiting_on.setdefault(j, []).append(manual)
        events: list[Event] = []
        emitted: set[int] = set()

        def emit(job: int) -> None:
            events.extend(self._run(flow, job))
            emitted.add(job)
            for manual in waiting_on.get(job, ()):
                waits[manual].discard(job)
            for manual in eager:
                if manual not in emitted and not waits[manual]:
                    emit(manual)

        for manual in eager:
            if manual not in emitted and not waits[manual]:
                emit(manual)
        for job in order:
            if job not in emitted:
                emit(job)
        return events

    def _run(self, flow: _Flow, job: int) -> list[Event]:
        return _run_events(self, job, failed=flow.status[job] == Status.FAILED)

    def build(self, spec: _Spec) -> Counterexample | None:
        """The counterexample of one canonical run, if that run still breaks the invariant
        the way `spec` says."""
        e, d = spec.first, spec.second
        hold = e if spec.kind == OVERLAP else None
        window, flow = self.settle(spec.fail, spec.flaky, hold=hold, unplayed=spec.unplayed)
        wanted = Status.RUNNING if hold is not None else Status.FAILED
        if flow.status[e] != wanted:
            return None
        if d is not None and flow.status[d] not in _ENQUEUED:
            return None
        targets = [e] if d is None else [e, d]
        prefix: list[Event] = []
        done: set[int] = set()
        if window is not None:
            prefix, done = self._window(window, flow, spec.flaky, targets)
        needed = self.needed(flow, targets, stop=done) - set(targets) - done
        plan = Plan(
            kind=spec.kind,
            first=e,
            second=d,
            fail=spec.fail,
            flaky=spec.flaky,
            unplayed=spec.unplayed,
            allowed=frozenset(needed | done | spec.flaky),
        )
        if d is None:
            name = self.model.jobs[e].name
            tail = [Event(Kind.RETRY, name, 2)] if e in done else _retry_events(self, e)
            return self._realise(plan, prefix + self._events(flow, needed) + tail)
        after = needed & self.graph.descendants(e)
        if hold is not None:
            pivot = [_start(self, e)]
        else:
            pivot = [] if e in done else _run_events(self, e, failed=True)
        before = self._events(flow, needed - after)
        return self._realise(
            plan, prefix + before + pivot + self._events(flow, after) + [_start(self, d)]
        )

    def _realise(self, plan: Plan, events: list[Event]) -> Counterexample | None:
        """The run `plan` describes, played out in the model (pipelines up to
        MAX_DRIVEN_JOBS jobs); else the events computed from the canonical run."""
        if len(self.model.jobs) <= MAX_DRIVEN_JOBS:
            targets = [plan.first] + [j for j in (plan.second, plan.manual) if j is not None]
            ancestors: set[int] = set()
            for t in targets:
                ancestors |= self.graph.ancestors(t)
            played = play(self.model, self.inst, plan, frozenset(ancestors))
            if played is not None:
                steps, breach = played
                return counterexample(self.model, self.inst.variant, steps, breach)
            if plan.kind == OVERLAP:
                return None  # only ever a shorter alternative to the failure's run
            # The verdict stands on the canonical run; keep its events rather than lose it.
        return self._finish(events)

    def _window(
        self, window: _Flow, flow: _Flow, flaky: frozenset[int], targets: Sequence[int]
    ) -> tuple[list[Event], set[int]]:
        """The events up to the retries of the flaky jobs: the `on_failure` jobs the run
        needs are enqueued while GitLab sees the flaky jobs failed."""
        inst = self.inst
        wanted = [
            j
            for j in self.needed(flow, targets) | set(targets)
            if inst.when[j] == ON_FAILURE and window.status[j] in _ENQUEUED
        ]
        # The first target (failing) may have to fail inside the window; the second one
        # only ever starts at the end.
        jobs = {
            j
            for j in self.needed(window, [*wanted, *flaky]) | set(wanted) | set(flaky)
            if window.status[j] in _RAN and j not in targets[1:]
        }
        events = self._events(window, jobs)
        for t in inst.order:
            if t in flaky and window.status[t] == Status.FAILED:
                name = self.model.jobs[t].name
                events += [Event(Kind.RETRY, name, 2), Event(Kind.SUCCEED, name, 2)]
        return events, jobs

    def _shortest(self, spec: _Spec) -> Counterexample | None:
        """`spec`'s counterexample, shortened greedily: leave optional manual jobs unplayed,
        or let a job fail so that the jobs after it are skipped, while the same breach
        remains."""
        best = self.build(spec)
        if best is None or len(self.model.jobs) > MAX_MINIMISE_JOBS:
            return best
        inst = self.inst
        jobs = self.model.jobs
        improved = True
        while improved:
            improved = False
            involved = [
                self.model.index[name] for name in dict.fromkeys(ev.job for ev in best.steps)
            ]
            for j in involved:
                if j in (spec.first, spec.second) or jobs[j].executor:
                    continue
                if j in spec.flaky:
                    trial = replace(spec, flaky=spec.flaky - {j}, fail=spec.fail | {j})
                elif inst.when[j] == MANUAL and inst.allow_failure[j] and j not in spec.unplayed:
                    trial = spec.with_unplayed(j)
                elif not inst.allow_failure[j] and j not in spec.fail:
                    trial = spec.with_failure(j)
                else:
                    continue
                found = self.build(trial)
                if found is not None and found.breach == best.breach and len(found) < len(best):
                    spec, best, improved = trial, found, True
                    break
        return best

    def _revival_witness(
        self, first: _Flow, second: _Flow, manual: int, u: int, d: int, fail: frozenset[int]
    ) -> Counterexample | None:
        jobs = self.model.jobs
        before = self.needed(first, [d, manual]) - {d, manual, u}
        head = self._events(first, before)
        ran = {i for i in before if first.status[i] in _RAN}
        later = self.needed(second, [u]) - ran - {d, manual, u}
        rest = self._events(second, later)
        play_manual = [] if manual == u else _run_events(self, manual, failed=False)
        group = jobs[d].resource_group
        clash = group is not None and (
            group in {jobs[manual].resource_group, jobs[u].resource_group}
            or any(jobs[self.model.index[ev.job]].resource_group == group for ev in rest)
        )
        start_d = [_start(self, d)]
        if clash:
            # d holds the resource group: it has to end (fail) before the others start.
            start_d.append(Event(Kind.FAIL, jobs[d].name, 1))
        plan = Plan(
            kind=REVIVAL,
            first=d,
            second=u,
            fail=fail,
            flaky=frozenset(),
            unplayed=frozenset(),
            allowed=frozenset(before | later),
            manual=manual,
        )
        return self._realise(plan, head + start_d + play_manual + rest + [_start(self, u)])

    def _finish(self, events: list[Event]) -> Counterexample | None:
        """Cut the run at its first breach and explain it."""
        cut = first_breach(self.model, events)
        if cut is None:
            return None
        end, breach = cut
        return counterexample(self.model, self.inst.variant, events[: end + 1], breach)


@dataclass(frozen=True)
class Order:
    """Whether `second` starts only after `first` succeeded, on every run of a pipeline."""

    first: str
    second: str
    how: str | None
    """None: ordered. Else how `second` can start before `first` succeeded (ORDER_*)."""
    via: str | None = None
    """For ORDER_MANUAL: the manual job."""
    complete: bool = True
    """False when a limit was reached: `how` is None only if no way was found."""

    @property
    def ordered(self) -> bool:
        return self.how is None and self.complete


def order(pipeline: Pipeline, first: str, second: str) -> Order:
    """Can `second` start before `first` has succeeded, on some execution of `pipeline`
    (docs/execution-model.md)? Decided on canonical runs, like `prove`, with the two jobs
    as the only jobs asked about."""
    model = ExecutionModel(pipeline, {first, second})
    a, b = model.index[first], model.index[second]
    budget = max(MAX_INSTANCES, INSTANCE_BUDGET // max(1, len(model.jobs)))
    complete = True
    for _, vectors, count, focus in _plan(model, [a, b], split=True, budget=budget):
        if count > budget:
            complete = False
            vectors = itertools.islice(vectors, budget)
        for vector in vectors:
            inst = model.instance(vector)
            if not inst.creatable:
                continue
            search = _Search(model, inst, frozenset([frozenset((a, b))]), focus)
            found = search.before_success(a, b)
            complete = complete and search.complete
            if found is not None:
                how, via = found
                name = None if via is None else model.jobs[via].name
                return Order(first, second, how, name, complete)
    return Order(first, second, None, None, complete)


def _start(search: _Search, index: int) -> Event:
    job = search.model.jobs[index]
    kind = Kind.PLAY if search.inst.when[index] == MANUAL else Kind.START
    return Event(kind, job.name, 1)


def _run_events(search: _Search, index: int, *, failed: bool) -> list[Event]:
    """Start to end of a job that succeeds, or fails (a failure GitLab does not retry)."""
    job = search.model.jobs[index]
    end = Kind.FAIL if failed else Kind.SUCCEED
    return [_start(search, index), Event(end, job.name, 1)]


def _retry_events(search: _Search, index: int) -> list[Event]:
    job = search.model.jobs[index]
    return [
        _start(search, index),
        Event(Kind.FAIL_RETRIED, job.name, 1),
        Event(Kind.RETRY, job.name, 2),
    ]


def first_breach(model: ExecutionModel, events: Sequence[Event]) -> tuple[int, Breach] | None:
    """Where a sequence of events first breaks the invariant (the model's rule, on the
    events alone: which executor attempts run and which failed)."""
    running: list[str] = []
    failed: str | None = None
    executors = model.executor_names
    for position, event in enumerate(events):
        if event.job not in executors:
            continue
        if event.starts:
            if event.kind == Kind.RETRY:
                return position, Breach(RETRIED, event.job, event.job)
            if running:
                other = min(running, key=model.index.__getitem__)
                return position, Breach(OVERLAP, event.job, other)
            if failed is not None:
                return position, Breach(AFTER_FAILURE, event.job, failed)
            running.append(event.job)
        else:
            running.remove(event.job)
            if event.kind in (Kind.FAIL, Kind.FAIL_RETRIED) and failed is None:
                failed = event.job
    return None
