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
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pdmpolicy.prover.conditions import Conditions
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


@dataclass(frozen=True)
class Row:
    """One combination of `rules:` outcomes to decide, and the pairs it decides."""

    vector: tuple[int, ...]
    pairs: frozenset[frozenset[int]]
    focus: frozenset[int]


class Extender:
    """Creatable variant vectors that keep some jobs' outcomes fixed (`extend`)."""

    def __init__(self, model: ExecutionModel) -> None:
        jobs = model.jobs
        self.count = len(jobs)
        self.can_be_absent = [any(not v.present for v in job.variants) for job in jobs]
        self.can_be_present = [any(v.present for v in job.variants) for job in jobs]
        self.absent = [
            next((i for i, v in enumerate(job.variants) if not v.present), 0) for job in jobs
        ]
        self.present = [
            next((i for i, v in enumerate(job.variants) if v.present), 0) for job in jobs
        ]
        self.variants = [job.variants for job in jobs]
        self.hard_needs = [
            tuple(need for need, optional in job.needs or () if not optional) for job in jobs
        ]
        # The jobs that are there whatever the choices: no `never` outcome, and what they
        # need. None: no pipeline is ever creatable.
        stack = [j for j in range(self.count) if not self.can_be_absent[j]]
        base = set(stack)
        creatable = True
        while stack and creatable:
            for need in self.hard_needs[stack.pop()]:
                if need in base:
                    continue
                if not self.can_be_present[need]:
                    creatable = False
                    break
                base.add(need)
                stack.append(need)
        self.base: set[int] | None = base if creatable else None

    def extend(self, fixed: dict[int, int]) -> tuple[int, ...] | None:
        """A creatable variant vector keeping `fixed`, with as few other jobs present as
        possible; None when there is none. Exact: the jobs that must be present are those
        without a `never` outcome and, transitively, the jobs they need (not optionally)."""
        if self.base is None:
            return None
        present = set(self.base)
        stack: list[int] = []
        for job, variant in fixed.items():
            if self.variants[job][variant].present:
                if job not in present:
                    present.add(job)
                    stack.append(job)
            elif job in present:
                return None
        while stack:
            for need in self.hard_needs[stack.pop()]:
                if need in present:
                    continue
                if need in fixed or not self.can_be_present[need]:
                    return None  # a job that is there needs one that is not
                present.add(need)
                stack.append(need)
        vector = list(self.absent)
        for job in present:
            vector[job] = self.present[job]
        for job, variant in fixed.items():
            vector[job] = variant
        return tuple(vector)


def extend(model: ExecutionModel, fixed: dict[int, int]) -> tuple[int, ...] | None:
    """`Extender.extend` for one use."""
    return Extender(model).extend(fixed)


def rows(
    model: ExecutionModel,
    found: list[Part],
    limit: int,
    conditions: Conditions | None = None,
) -> tuple[list[Row], list[tuple[Part, int]]]:
    """Combinations of outcomes that, together, give every part every combination of its
    varied jobs' outcomes that GitLab creates: a combination decides each part it agrees
    with (the others' outcomes do not matter to that part), so one combination serves many
    parts at once. Greedy: start from the first combination not yet covered, add the next
    ones that agree with it while the pipeline stays creatable.

    With `conditions`, a part's combinations are only those some assignment of the
    pipeline variables gives (conditions.py), and a combination serving several parts
    follows one assignment for every job whose rules are read, so it is a pipeline the
    variables can create.

    Also returns the parts with more than `limit` combinations (only the first `limit` are
    decided) and how many they have."""
    extender = Extender(model)
    truncated: list[tuple[Part, int]] = []
    targets: list[_Target] = []
    for number, part in enumerate(found):
        count, made = _targets(model, number, part, conditions)
        if count > limit:
            truncated.append((part, count))
        targets += itertools.islice(made, limit)
    result: list[Row] = []
    while targets:
        first = targets[0]
        fixed = dict(first.fixed())
        values = first.values_of_variables
        for other in targets[1:]:
            if all(fixed.get(j, c) == c for j, c in other.fixed()) and (
                values is None
                or other.values_of_variables is None
                or all(values.get(k, v) == v for k, v in other.values_of_variables.items())
            ):
                fixed.update(other.fixed())
                if values is not None and other.values_of_variables is not None:
                    values = {**values, **other.values_of_variables}
        vector = _vector(model, extender, conditions, fixed, values)
        if vector is None and len(fixed) > len(first.jobs):
            fixed = dict(first.fixed())
            values = first.values_of_variables
            vector = _vector(model, extender, conditions, fixed, values)
        if vector is None and first.values_of_variables is not None:
            vector, known = _creatable(model, extender, conditions, first)
            if vector is None and known:
                targets.pop(0)  # no assignment of the variables makes it creatable
                continue
        if vector is None:
            # Taken as possible, the outcomes of the other jobs as the fewest that keep the
            # pipeline creatable: perhaps a pipeline no assignment gives (conservative).
            vector = extender.extend(dict(first.fixed()))
        if vector is None:  # GitLab refuses every pipeline with these outcomes
            targets.pop(0)
            continue
        decided = {t.part for t in targets if t.agrees(vector)}
        targets = [t for t in targets if not t.agrees(vector)]
        pairs = frozenset(pair for n in sorted(decided) for pair in found[n].pairs)
        focus = frozenset(j for n in decided for j in found[n].focus)
        result.append(Row(vector, pairs, focus))
    return result, truncated


def _targets(
    model: ExecutionModel, number: int, part: Part, conditions: Conditions | None
) -> tuple[int, Iterable[_Target]]:
    """How many combinations of outcomes the part has, and each, with an assignment of the
    variables that gives it when its jobs' rules are read."""
    ranges = [range(len(model.jobs[j].variants)) for j in part.varied]
    read = [j for j in part.varied if conditions is not None and j in conditions.rules]
    assignments = conditions.combinations(read) if conditions is not None else None
    if conditions is None or not conditions.rules or assignments is None:
        return part.combinations(model), (
            _Target(number, part.varied, chosen, None) for chosen in itertools.product(*ranges)
        )
    # Readable jobs follow the assignment; the others take every outcome.
    given: dict[tuple[int, ...], dict[object, object]] = {}
    for values in assignments:
        outcome = tuple(_variant(model, conditions, j, values) for j in read)
        given.setdefault(outcome, values)
    free = [j for j in part.varied if j not in read]
    found: list[_Target] = []
    for outcome, values in given.items():
        of = dict(zip(read, outcome, strict=True))
        for chosen in itertools.product(*(range(len(model.jobs[j].variants)) for j in free)):
            of.update(zip(free, chosen, strict=True))
            found.append(_Target(number, part.varied, tuple(of[j] for j in part.varied), values))
    return len(found), found


def _creatable(
    model: ExecutionModel, extender: Extender, conditions: Conditions | None, target: _Target
) -> tuple[tuple[int, ...] | None, bool]:
    """A creatable row for `target` under some assignment of every variable the readable
    rules test that agrees with the target's; and whether every assignment was tried."""
    if conditions is None or target.values_of_variables is None:
        return None, False
    assignments = conditions.combinations(sorted(conditions.rules))
    if assignments is None:
        return None, False
    wanted = target.values_of_variables
    fixed = dict(target.fixed())
    for values in assignments:
        if all(values.get(k, v) == v for k, v in wanted.items()):
            vector = _vector(model, extender, conditions, fixed, values)
            if vector is not None:
                return vector, True
    return None, True


def _variant(
    model: ExecutionModel, conditions: Conditions, job: int, values: dict[object, object]
) -> int:
    choice = conditions.rules[job].choice(values)
    assert choice is not None  # conditions.py keeps only rules with an outcome for all
    return model.choice_variants[job][choice]


def _vector(
    model: ExecutionModel,
    extender: Extender,
    conditions: Conditions | None,
    fixed: dict[int, int],
    values: dict[object, object] | None,
) -> tuple[int, ...] | None:
    """The row: `fixed`, every readable job as the assignment says (variables not in it
    unset; None: no assignment, outcomes independent), the others as few as keep the
    pipeline creatable."""
    if conditions is not None and values is not None:
        full = conditions.complete(values)
        fixed = dict(fixed)
        for job in conditions.rules:
            fixed.setdefault(job, _variant(model, conditions, job, full))
    return extender.extend(fixed)


class _Target:
    """One combination of one part's varied jobs' outcomes."""

    __slots__ = ("_get", "jobs", "part", "values", "values_of_variables")

    def __init__(
        self,
        part: int,
        jobs: tuple[int, ...],
        values: tuple[int, ...],
        values_of_variables: dict[object, object] | None,
    ) -> None:
        self.part = part
        self.jobs = jobs
        self.values = values
        self.values_of_variables = values_of_variables
        self._get = operator.itemgetter(*jobs) if len(jobs) > 1 else None

    def fixed(self) -> Iterator[tuple[int, int]]:
        return zip(self.jobs, self.values, strict=True)

    def agrees(self, vector: tuple[int, ...]) -> bool:
        if self._get is None:
            return not self.jobs or vector[self.jobs[0]] == self.values[0]
        return bool(self._get(vector) == self.values)
