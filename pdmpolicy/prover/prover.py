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

Every counterexample is built from a canonical run: the jobs it depends on, in processing
order, then the breaching events; the explorer's model replays it (tests check this).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

from pdmpolicy.pipeline import Pipeline
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

MAX_INSTANCES = 256
"""Combinations of `rules:` outcomes the prover decides one by one."""
MAX_FAILURE_SETS = 64
"""Sets of failing jobs tried to trigger `on_failure` jobs, per question."""
MAX_MINIMISE_JOBS = 60
"""Counterexamples of pipelines up to this size are shortened greedily (a canonical run per
try); larger ones keep the canonical run's events."""

_RAN = (Status.SUCCESS, Status.FAILED)
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


def prove_model(model: ExecutionModel) -> Proof:
    found: dict[tuple[str, str, str], Counterexample] = {}
    complete = True
    notes: list[str] = []
    executors = [job.index for job in model.jobs if job.executor]
    if executors:
        count = model.combinations
        vectors: Iterable[tuple[int, ...]] = model.variant_vectors()
        if count > MAX_INSTANCES:
            complete = False
            notes.append(
                f"{count} combinations of rules outcomes; decided the first {MAX_INSTANCES}"
            )
            vectors = itertools.islice(vectors, MAX_INSTANCES)
        for vector in vectors:
            inst = model.instance(vector)
            if not inst.creatable:
                continue
            search = _Search(model, inst)
            for example in search.run():
                if example is None:
                    continue
                key = (example.breach.kind, example.breach.starter, example.breach.other)
                known = found.get(key)
                if known is None or len(example) < len(known):
                    found[key] = example
            complete = complete and search.complete
    violations = sorted(found.values(), key=lambda c: (len(c), c.breach.starter, c.breach.other))
    return Proof(
        pipeline=model.pipeline,
        executors=tuple(sorted(model.executor_names)),
        violations=tuple(violations),
        complete=complete,
        notes=tuple(notes),
    )


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

    def __init__(self, model: ExecutionModel, inst: Instance) -> None:
        self.model = model
        self.inst = inst
        self.graph = Graph(model, inst)
        self.complete = True
        jobs = model.jobs
        self.executors = [j.index for j in jobs if j.executor and inst.present[j.index]]
        # An `on_failure` job that is skipped matters only to an executor that needs it
        # through `needs` (a skipped need skips a `needs` job; a later stage takes a skipped
        # job as passed), or when it is an executor itself. The jobs whose failure would
        # make such a job run are the only extra failures worth trying.
        triggers: set[int] = set()
        for job in jobs:
            i = job.index
            if inst.present[i] and inst.when[i] == ON_FAILURE and self._matters(i):
                triggers.update(self.graph.preds(i))
        self.triggers = sorted(
            t for t in triggers if not inst.allow_failure[t] and not jobs[t].executor
        )

    def _matters(self, index: int) -> bool:
        """An executor is `index` or waits for it through `needs` alone."""
        jobs = self.model.jobs
        children = self.graph.needed_by()
        seen = {index}
        stack = [index]
        while stack:
            current = stack.pop()
            if jobs[current].executor:
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
        inst = self.inst
        ranks = inst.ranks
        present = inst.present
        preds = inst.preds
        when = inst.when
        af = inst.allow_failure
        table = COMPOSITE
        symbols = SYMBOLS
        status: list[int]
        if start is None:
            status = [Status.CREATED if p else Status.ABSENT for p in present]
        else:
            status = list(start)
        lower = 0
        current = 0
        rank = -1
        for i in inst.order:
            if ranks[i] != rank:
                lower |= current
                current = 0
                rank = ranks[i]
            if present[i] and (start is None or i in redo):
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
        return _Flow(status)

    def failure_sets(self, base: Iterable[int]) -> Iterable[tuple[frozenset[int], frozenset[int]]]:
        """(failing, flaky) job sets: `base` alone, then with jobs that fail, or fail once
        and succeed on their retry, to trigger `on_failure` jobs."""
        base = frozenset(base)
        yield base, frozenset()
        triggers = [t for t in self.triggers if t not in base]
        jobs = self.model.jobs
        count = 1
        for size in range(1, len(triggers) + 1):
            for extra in itertools.combinations(triggers, size):
                options = [("fail", "flaky") if jobs[t].retry > 0 else ("fail",) for t in extra]
                for outcome in itertools.product(*options):
                    if count >= MAX_FAILURE_SETS:
                        self.complete = False
                        return
                    count += 1
                    fail = base | {t for t, o in zip(extra, outcome, strict=True) if o == "fail"}
                    flaky = {t for t, o in zip(extra, outcome, strict=True) if o == "flaky"}
                    yield fail, frozenset(flaky)

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

    def _after_failure(self, e: int) -> list[Counterexample | None]:
        """e fails; which executors can then be ready? (Also: can e start at all?)"""
        examples: list[Counterexample | None] = []
        retried = False
        seen: set[int] = set()
        for fail, flaky in self.failure_sets([e]):
            _, flow = self.settle(fail, flaky)
            if flow.status[e] != Status.FAILED:
                continue
            if self.model.jobs[e].retry > 0 and not retried:
                retried = True
                examples.append(self._shortest(_Spec(RETRIED, e, None, fail, flaky)))
            for d in self.executors:
                if d == e or d in seen or flow.status[d] not in _ENQUEUED:
                    continue
                if d in self.graph.ancestors(e):
                    continue
                seen.add(d)
                examples.append(self._shortest(_Spec(AFTER_FAILURE, e, d, fail, flaky)))
        return examples

    def _overlap(self, e: int) -> list[Counterexample | None]:
        """e starts and keeps running; which executors can start meanwhile? Only for a
        shorter counterexample: the failure case already decides the verdict."""
        jobs = self.model.jobs
        examples: list[Counterexample | None] = []
        group = jobs[e].resource_group
        seen: set[int] = set()
        for fail, flaky in self.failure_sets([]):
            _, flow = self.settle(fail, flaky, hold=e)
            if flow.status[e] != Status.RUNNING:
                continue
            for d in self.executors:
                if d == e or d in seen or flow.status[d] not in _ENQUEUED:
                    continue
                if d in self.graph.ancestors(e):
                    continue
                if group is not None and group == jobs[d].resource_group:
                    continue
                seen.add(d)
                examples.append(self._shortest(_Spec(OVERLAP, e, d, fail, flaky)))
        return examples

    def _revival(self, manual: int) -> list[Counterexample | None]:
        """`manual` is left unplayed: jobs that need it show as skipped and later stages go
        on; played later, it brings them back."""
        inst = self.inst
        jobs = self.model.jobs
        examples: list[Counterexample | None] = []
        if not self._matters(manual):
            return []  # no executor shows as skipped because of it
        for fail, flaky in self.failure_sets([]):
            if flaky:
                continue  # a retried failure changes nothing for a manual job left unplayed
            first = self.flow(fail, unplayed=frozenset([manual]))
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
                    if d != u and d not in self.graph.ancestors(u):
                        examples.append(self._revival_witness(first, second, manual, u, d))
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
        if d is None:
            name = self.model.jobs[e].name
            tail = [Event(Kind.RETRY, name, 2)] if e in done else _retry_events(self, e)
            return self._finish(prefix + self._events(flow, needed) + tail)
        after = needed & self.graph.descendants(e)
        if hold is not None:
            group = self.model.jobs[e].resource_group
            if group is not None and any(
                self.model.jobs[i].resource_group == group and flow.status[i] in _RAN for i in after
            ):
                return None  # they would wait for the held job's resource group
            pivot = [_start(self, e)]
        else:
            pivot = [] if e in done else _run_events(self, e, failed=True)
        before = self._events(flow, needed - after)
        return self._finish(prefix + before + pivot + self._events(flow, after) + [_start(self, d)])

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
                if inst.when[j] == MANUAL and inst.allow_failure[j] and j not in spec.unplayed:
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
        self, first: _Flow, second: _Flow, manual: int, u: int, d: int
    ) -> Counterexample | None:
        jobs = self.model.jobs
        before = self.needed(first, [d, manual]) - {d, manual, u}
        head = self._events(first, before)
        ran = {i for i in before if first.status[i] in _RAN}
        later = self.needed(second, [u]) - ran - {d, manual, u}
        rest = self._events(second, later)
        play = [] if manual == u else _run_events(self, manual, failed=False)
        group = jobs[d].resource_group
        clash = group is not None and (
            group in {jobs[manual].resource_group, jobs[u].resource_group}
            or any(jobs[self.model.index[ev.job]].resource_group == group for ev in rest)
        )
        start_d = [_start(self, d)]
        if clash:
            # d holds the resource group: it has to end (fail) before the others start.
            start_d.append(Event(Kind.FAIL, jobs[d].name, 1))
        return self._finish(head + start_d + play + rest + [_start(self, u)])

    def _finish(self, events: list[Event]) -> Counterexample | None:
        """Cut the run at its first breach and explain it."""
        cut = first_breach(self.model, events)
        if cut is None:
            return None
        end, breach = cut
        return counterexample(self.model, self.inst.variant, events[: end + 1], breach)


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
