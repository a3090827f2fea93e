"""Effect analysis: what each job does to PDMs, and which jobs are ordered after which.

Shared by every policy and by `explain`. A job's effect is the most dangerous effect of the
commands its script runs (`effects.py`, read against the team's `Toolchain`): an executor
(Kubernetes, VM, Rails), unknown (conditional included), a dry run, or none. A `runner:
generic` job's declared `effect:` stands where the analysis sees less; where it sees an
executor the declaration cannot lower it (docs/effects.md).

Ordering: `after_success[b]` is the set of jobs that b can start only after they succeeded
(or never started). The rules, with their GitLab sources, are in docs/model.md.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.effects import (
    DECLARED,
    DRY_RUN,
    EXECUTOR_KINDS,
    KUBERNETES,
    NONE,
    RAILS,
    UNKNOWN,
    VM,
    Classifier,
    CommandEffect,
    KctlCall,
    ScriptReader,
    file_reader,
    is_wait_command,
    parse_kctl,
    reaching,
    script_functions,
    worst,
)
from pdmpolicy.gitlab.pipeline import CiJob, Pipeline, Variable
from pdmpolicy.gitlab.shell import Command, read_script
from pdmpolicy.policyset.toolchain import DEFAULT, Toolchain

__all__ = [
    "DECLARED",
    "DRY_RUN",
    "KUBERNETES",
    "NONE",
    "RAILS",
    "UNKNOWN",
    "VM",
    "Analysis",
    "JobEffect",
    "KctlCall",
    "analyse",
    "parse_kctl",
    "reaching_value",
]

_SHOWN = {KUBERNETES: "Kubernetes", VM: "VM", RAILS: "Rails", DECLARED: "declared"}


@dataclass(frozen=True)
class JobEffect:
    """What one job does, read from its script and variables."""

    job: CiJob
    commands: tuple[CommandEffect, ...]
    """Every command the script runs (script files followed), with its effect."""
    effective_variables: Mapping[str, Variable]
    """Job variables over inherited top-level ones: what the script's environment holds
    (before trigger/pipeline variables, which beat both)."""
    unparsable: tuple[tuple[Loc, str], ...]
    declared: str | None = None
    """The job's `effect:` (environment files only)."""
    incomplete: str | None = None
    """Why the job's definition could not be read whole (then its effect is unknown)."""

    @cached_property
    def strongest(self) -> CommandEffect | None:
        """The most dangerous command, first in script order among equals."""
        return worst(self.commands)

    @property
    def recognised(self) -> str:
        """The effect the analysis sees, declaration aside."""
        found = self.strongest.effect if self.strongest else NONE
        if (self.unparsable or self.incomplete) and found in (NONE, DRY_RUN):
            return UNKNOWN
        return found

    @property
    def effect(self) -> str:
        """The job's one effect: kubernetes, vm, rails, declared (an executor), dry-run,
        unknown or none. A declaration never makes it less dangerous than an executor seen."""
        seen = self.recognised
        if self.declared is None or seen in EXECUTOR_KINDS:
            return seen
        if self.declared == "executor":
            return DECLARED
        return DRY_RUN if self.declared == DRY_RUN else NONE

    @property
    def is_declared(self) -> bool:
        """The effect shown is the declaration, not what the analysis saw."""
        return self.declared is not None and self.recognised not in EXECUTOR_KINDS

    @property
    def contradiction(self) -> str | None:
        """Why the declaration is false: it says none or dry-run, the script runs PDMs."""
        if self.declared in ("none", DRY_RUN) and self.recognised in EXECUTOR_KINDS:
            strongest = self.strongest
            assert strongest is not None
            return (
                f"{self.job.name} is declared effect: {self.declared}, but it runs PDMs: "
                f"{strongest.why}: {strongest.shown()}"
            )
        return None

    @property
    def kind(self) -> str | None:
        """The executor kind ('kubernetes', 'vm', 'rails', 'declared'), else None."""
        effect = self.effect
        return effect if effect in EXECUTOR_KINDS else None

    @property
    def is_executor(self) -> bool:
        return self.kind is not None

    @property
    def is_dry_run(self) -> bool:
        return self.effect == DRY_RUN

    @property
    def is_unknown(self) -> bool:
        return self.effect == UNKNOWN

    @property
    def conditional(self) -> bool:
        """Unknown only because pipeline variables decide whether it runs PDMs."""
        return (
            self.is_unknown
            and bool(self.unknowns)
            and all(c.conditional for c in self.unknowns)
            and not (self.unparsable or self.incomplete)
        )

    @property
    def unknowns(self) -> tuple[CommandEffect, ...]:
        """The commands that make the job unknown."""
        return tuple(c for c in self.commands if c.effect == UNKNOWN)

    def unknown_reasons(self) -> tuple[tuple[Loc, str], ...]:
        """(where, why) for each thing that keeps the analysis from seeing the effect."""
        reasons = []
        if self.incomplete:
            reasons.append((self.job.loc, self.incomplete))
        for loc, problem in self.unparsable:
            reasons.append((loc, f"the shell cannot read this line: {problem}"))
        for command in self.unknowns:
            reasons.append((command.command.loc, f"{command.why}: {command.shown()}"))
        return tuple(reasons)

    @property
    def kctl_calls(self) -> tuple[KctlCall, ...]:
        return tuple(c.kctl for c in self.commands if c.kctl is not None)

    @property
    def executor_calls(self) -> tuple[KctlCall, ...]:
        """The k-ctl calls that run PDMs."""
        return tuple(c.kctl for c in self.commands if c.kctl is not None and c.effect == KUBERNETES)

    @property
    def vm_calls(self) -> tuple[Command, ...]:
        """The commands that run PDMs on the VMs (a switch reaches them)."""
        return tuple(c.command for c in self.commands if c.effect == VM)

    @property
    def runs_vm_pdms(self) -> bool:
        return bool(self.vm_calls)

    def label(self) -> str:
        """The effect in one or two words, `(declared)` where the declaration stands."""
        effect = self.effect
        text = f"{_SHOWN[effect]} executor" if effect in EXECUTOR_KINDS else effect
        if effect == DECLARED:
            text = "executor"
        if self.conditional:
            text = "unknown (conditional)"
        return f"{text} (declared)" if self.is_declared else text

    def describe(self) -> str:
        """What the job does to PDMs, in a few words."""
        strongest = self.strongest
        declared = " (declared)" if self.is_declared else ""
        if self.kind == KUBERNETES and self.executor_calls:
            call = self.executor_calls[0]
            return f"Kubernetes executor (runs PDMs, k-ctl -e {call.environment} {call.action})"
        if self.kind == VM:
            return "VM executor (runs PDMs on the deploy VMs)"
        if self.kind == RAILS and strongest is not None:
            return f"Rails executor ({strongest.why})"
        if self.kind == DECLARED:
            return "executor (declared; the script shows no known executor)"
        if self.is_dry_run:
            return f"dry run{declared} (shows the migrations Job, runs nothing)"
        if self.is_unknown:
            (_, why), *_ = self.unknown_reasons()
            return f"unknown{' (conditional)' if self.conditional else ''}: {why}"
        return f"does not run PDMs{declared}"


def reaching_value(effect: JobEffect, command: Command, name: str) -> str | None:
    """The value of `name` in the environment of `command`, as far as the YAML decides.

    Trigger and pipeline variables beat YAML variables (not the script), so a value from
    the job's `variables:` is only what holds when no such variable is passed.
    """
    return reaching(command, effect.effective_variables, name)[0]


GENERIC_RAILS = frozenset({"bundle", "rake", "rails"})
"""Programs every Rails application migrates with (GitLab's own are `gitlab-*`)."""


def _marks_a_pdm_pipeline(effect: JobEffect) -> bool:
    if effect.kind != RAILS:
        return True
    for command in effect.commands:
        if command.effect != RAILS:
            continue
        if command.command.program not in GENERIC_RAILS:
            return True
        value, _ = reaching(command.command, effect.effective_variables, "RAILS_ENV")
        if value == "production":
            return True
    return False


def _with_waits(found: list[CommandEffect], toolchain: Toolchain) -> tuple[CommandEffect, ...]:
    """Each k-ctl call marked with whether it is made to wait for the migrations Job."""
    wait = toolchain.kubernetes.wait
    result = []
    for index, effect in enumerate(found):
        call = effect.kctl
        if call is not None:
            if wait.style == "input":
                waits = call.command.assigned.get(wait.variable) == wait.value
            else:
                waits = any(
                    is_wait_command(later.command, toolchain) for later in found[index + 1 :]
                )
            effect = replace(effect, kctl=replace(call, waits=waits))
        result.append(effect)
    return tuple(result)


_Classified = tuple[tuple[CommandEffect, ...], tuple[tuple[Loc, str], ...]]
_ScriptKey = tuple[tuple[tuple[str, Loc], ...], tuple[tuple[str, str], ...]]


def _effect(
    pipeline: Pipeline,
    job: CiJob,
    toolchain: Toolchain,
    read_file: ScriptReader,
    classified: dict[_ScriptKey, _Classified],
) -> JobEffect:
    variables = {v.name: v for v in pipeline.inherited_variables(job)}
    variables.update({v.name: v for v in job.variables})
    lines = tuple((line.text, line.loc) for line in job.script)
    # Jobs that share a script (extends, anchors, !reference) with the same variables share
    # its commands' effects: they depend on the lines (with their places), the variables'
    # values, and the toolchain and script files, which are the same for the whole analysis.
    key = (lines, tuple(sorted((name, v.value) for name, v in variables.items())))
    if key not in classified:
        # A line the shell rejects must not hide the k-ctl call on the line before it.
        found, errors = read_script(lines)
        functions = script_functions([text for text, _ in lines])
        classifier = Classifier(toolchain, variables, read_file, functions)
        classified[key] = (_with_waits(classifier.job(found), toolchain), tuple(errors))
    commands, unparsable = classified[key]
    incomplete = job.incomplete  # set by the loader for includes it could not read
    return JobEffect(job, commands, variables, unparsable, job.declared_effect, incomplete or None)


def _outcomes(job: CiJob) -> list[tuple[str, bool]]:
    """(when, allow_failure) of every way the job can be in the pipeline.

    A job with `rules:` has one outcome per rule that can match (`choices`); the ordering
    must hold for each of them, or the pipeline where that rule matches breaks it.
    """
    if not job.choices:
        return [(job.when, job.allow_failure)]
    return [(c.when, c.allow_failure) for c in job.choices if c.when != "never"]


def _runs_only_on_success(job: CiJob) -> bool:
    return all(when in ("on_success", "manual", "delayed") for when, _ in _outcomes(job))


def _failure_stops_later_jobs(job: CiJob) -> bool:
    return not any(allow_failure for _, allow_failure in _outcomes(job))


@dataclass(frozen=True)
class Analysis:
    """Effects and ordering of one pipeline."""

    pipeline: Pipeline
    effects: Mapping[str, JobEffect]
    toolchain: Toolchain = DEFAULT

    @property
    def executors(self) -> tuple[JobEffect, ...]:
        """Jobs that run PDMs (recognised or declared), in file order. The safety policies
        prove over these; unknown and conditional jobs are reported by `effects-known`."""
        return tuple(e for e in self.effects.values() if e.is_executor)

    @property
    def unknown(self) -> tuple[JobEffect, ...]:
        return tuple(e for e in self.effects.values() if e.is_unknown)

    @cached_property
    def concerns_pdms(self) -> bool:
        """The pipeline has an executor, or sets a variable that decides whether PDMs run
        (the toolchain's skip variables and VM switches), anywhere: at the top, in a job,
        or in a script. Only such a pipeline has something to prove (`verify`).

        Any Rails application's CI migrates its test database (`bundle exec rake
        db:migrate`); only GitLab has post-deployment migrations. So a generic Rails
        migrate marks a PDM pipeline only with RAILS_ENV=production; GitLab's own commands
        (`gitlab-rake`, `gitlab-rails`, `gitlab-ctl`) always do."""
        if any(_marks_a_pdm_pipeline(e) for e in self.executors):
            return True
        tool = self.toolchain
        watched = {tool.kubernetes.skip_variable, tool.rails.skip_variable, *tool.vm.switches}
        if any(v.name in watched for v in self.pipeline.variables):
            return True
        for effect in self.effects.values():
            if any(v.name in watched for v in effect.job.variables):
                return True
            if any(watched & c.command.assigned.keys() for c in effect.commands):
                return True
            # A script the shell reader cannot read may still set one: its text is all
            # there is to go by.
            if effect.unparsable and any(
                name in line.text for line in effect.job.script for name in watched
            ):
                return True
        return False

    def effect(self, name: str) -> JobEffect:
        return self.effects[name]

    @cached_property
    def direct_predecessors(self) -> Mapping[str, tuple[str, ...]]:
        """Jobs each job waits for: its `needs`, or every job of an earlier stage."""
        jobs = self.pipeline.jobs
        stage_rank = {s: i for i, s in enumerate(self.pipeline.stages)}
        names_present = {job.name for job in jobs}
        result = {}
        for job in jobs:
            if job.needs is not None:
                result[job.name] = tuple(n.job for n in job.needs if n.job in names_present)
            else:
                rank = stage_rank.get(job.stage, 0)
                result[job.name] = tuple(
                    other.name for other in jobs if stage_rank.get(other.stage, 0) < rank
                )
        return result

    @cached_property
    def after_success(self) -> Mapping[str, frozenset[str]]:
        """For each job b: the jobs a such that b can start only after a succeeded.

        An edge a -> b counts when a failure of a stops b: a has `allow_failure: false`
        (a failed job with allow_failure true lets later jobs run, and an unplayed manual
        job with allow_failure true counts as passed), and b runs `on_success` (or is a
        manual/delayed job, which becomes playable only on success). `when: always` and
        `when: on_failure` jobs run after failures, so nothing is ordered before them.
        """
        jobs = {job.name: job for job in self.pipeline.jobs}
        edges: dict[str, set[str]] = {}
        for name, job in jobs.items():
            edges[name] = set()
            if not _runs_only_on_success(job):
                continue
            for before in self.direct_predecessors[name]:
                if _failure_stops_later_jobs(jobs[before]):
                    edges[name].add(before)
        closure: dict[str, frozenset[str]] = {}

        def visit(name: str, trail: frozenset[str]) -> frozenset[str]:
            if name in closure:
                return closure[name]
            found: set[str] = set()
            for before in edges[name]:
                if before in trail:
                    continue  # cycles are refused by the schema; a loaded file may have one
                found.add(before)
                found |= visit(before, trail | {name})
            closure[name] = frozenset(found)
            return closure[name]

        for name in jobs:
            visit(name, frozenset())
        return closure

    def ordered_after_success(self, first: str, second: str) -> bool:
        """True when `second` can start only after `first` succeeded."""
        return first in self.after_success[second]

    @cached_property
    def _waiters(self) -> Mapping[str, tuple[str, ...]]:
        """For each job, the jobs that wait for it directly (the reverse of the waits)."""
        found: dict[str, list[str]] = {name: [] for name in self.direct_predecessors}
        for job, before in self.direct_predecessors.items():
            for name in sorted(set(before)):
                if name != job and name in found:
                    found[name].append(job)
        return {name: tuple(jobs) for name, jobs in found.items()}

    def successors(self, name: str) -> tuple[str, ...]:
        """Jobs that wait for `name` to finish, directly or not (any edge, not only success)."""
        found: list[str] = []
        frontier = [name]
        seen = {name}
        while frontier:
            for job in self._waiters.get(frontier.pop(), ()):
                if job not in seen:
                    seen.add(job)
                    found.append(job)
                    frontier.append(job)
        return tuple(sorted(found))

    @cached_property
    def _order(self) -> tuple[str, ...]:
        # Kahn's algorithm, the smallest ready name first. A job without `needs` waits for
        # every job of an earlier stage: as edges that is quadratic (thousands of jobs in two
        # stages took seconds, and any file can have them), so such a job waits on a
        # barrier instead, which opens when no job of an earlier stage is left. Same order.
        jobs = self.pipeline.jobs
        present = {job.name for job in jobs}
        stage_rank = {s: i for i, s in enumerate(self.pipeline.stages)}
        rank = {job.name: stage_rank.get(job.stage, 0) for job in jobs}
        pending: dict[str, int] = {}
        waiters: dict[str, list[str]] = {name: [] for name in present}
        at_barrier: dict[int, list[str]] = {}
        left = [0] * (max(rank.values(), default=0) + 1)  # jobs not yet done, per rank
        for job in jobs:
            left[rank[job.name]] += 1
            if job.needs is not None:
                before = {n.job for n in job.needs if n.job in present and n.job != job.name}
                pending[job.name] = len(before)
                for name in before:
                    waiters[name].append(job.name)
            else:
                pending[job.name] = 1  # the barrier of its stage
                at_barrier.setdefault(rank[job.name], []).append(job.name)
        ready = [n for n, count in pending.items() if count == 0]
        heapq.heapify(ready)
        barriers = sorted(at_barrier)
        opened = 0  # barriers[:opened] are open
        lowest = 0  # the lowest rank with a job left

        def open_barriers() -> None:
            nonlocal opened, lowest
            while lowest < len(left) and left[lowest] == 0:
                lowest += 1
            while opened < len(barriers) and barriers[opened] <= lowest:
                for name in at_barrier[barriers[opened]]:
                    pending[name] -= 1
                    if pending[name] == 0 and name in remaining:
                        heapq.heappush(ready, name)
                opened += 1

        remaining = set(present)
        open_barriers()
        done: list[str] = []
        while remaining:
            # Nothing ready: a cycle in a loaded file, shown from its smallest name on.
            name = heapq.heappop(ready) if ready else min(remaining)
            remaining.discard(name)
            done.append(name)
            for waiter in waiters[name]:
                pending[waiter] -= 1
                if pending[waiter] == 0 and waiter in remaining:
                    heapq.heappush(ready, waiter)
            left[rank[name]] -= 1
            open_barriers()
        return tuple(done)

    def execution_order(self) -> tuple[str, ...]:
        """Jobs in an order consistent with their waits, ties by name: for display."""
        return self._order


def analyse(
    pipeline: Pipeline, toolchain: Toolchain = DEFAULT, *, root: Path | None = None
) -> Analysis:
    """Effects and ordering of `pipeline`, recognising the tools `toolchain` describes.

    `root`: the repository, for script files a job calls (`./scripts/deploy.sh`); without
    it such a call is unknown.
    """
    read_file = file_reader(root)
    classified: dict[_ScriptKey, _Classified] = {}
    effects = {
        job.name: _effect(pipeline, job, toolchain, read_file, classified) for job in pipeline.jobs
    }
    return Analysis(pipeline, effects, toolchain)
