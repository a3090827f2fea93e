"""Effect analysis: what each job does to PDMs, and which jobs are ordered after which.

Shared by every policy and by `explain`. A job *executes PDMs* because of what it runs,
never because of its name (docs/environment-files.md):
- a k-ctl call whose action is `upgrade`/`install` without `-D` is a Kubernetes executor
  (whether it really runs PDMs then depends on SKIP_POST_DEPLOYMENT_MIGRATIONS, which
  `skip-flag-false` checks; for the safety invariants every such call counts);
- a call of the VM tooling with RUN_POST_DEPLOY_MIGRATIONS "true" is a VM executor;
- a k-ctl call with `-D` or action `template` is a dry run.

Ordering: `after_success[b]` is the set of jobs that b can start only after they succeeded
(or never started). The rules, with their GitLab sources, are in docs/model.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from pdmpolicy import names
from pdmpolicy.location import Loc
from pdmpolicy.pipeline import CiJob, Pipeline, Variable
from pdmpolicy.shell import Command, read_script

KUBERNETES = "kubernetes"
VM = "vm"


@dataclass(frozen=True)
class KctlCall:
    """A k-ctl command line, read back from a script."""

    environment: str | None
    stage: str
    action: str | None
    dry_run: bool
    command: Command

    @property
    def runs_for_real(self) -> bool:
        return self.action in ("upgrade", "install") and not self.dry_run


def parse_kctl(command: Command) -> KctlCall:
    environment = None
    stage = "main"
    action = None
    dry_run = False
    args = list(command.args)
    index = 0
    while index < len(args):
        word = args[index]
        if word in ("-e", "-s") and index + 1 < len(args):
            if word == "-e":
                environment = args[index + 1]
            else:
                stage = args[index + 1]
            index += 1
        elif word.startswith("-e") and len(word) > 2:
            environment = word[2:]
        elif word.startswith("-s") and len(word) > 2:
            stage = word[2:]
        elif word == "-D":
            dry_run = True
        elif not word.startswith("-") and action is None:
            action = word
        index += 1
    return KctlCall(environment, stage, action, dry_run, command)


@dataclass(frozen=True)
class JobEffect:
    """What one job does, read from its script and variables."""

    job: CiJob
    kctl_calls: tuple[KctlCall, ...]
    vm_calls: tuple[Command, ...]
    effective_variables: Mapping[str, Variable]
    """Job variables over inherited top-level ones: what the script's environment holds
    (before trigger/pipeline variables, which beat both)."""
    unparsable: tuple[tuple[Loc, str], ...]

    @property
    def executor_calls(self) -> tuple[KctlCall, ...]:
        return tuple(call for call in self.kctl_calls if call.runs_for_real)

    @property
    def runs_vm_pdms(self) -> bool:
        return any(_reaching(self, call, names.VM_RUN_VARIABLE) == "true" for call in self.vm_calls)

    @property
    def kind(self) -> str | None:
        """'kubernetes' or 'vm' for an executor, else None."""
        if self.executor_calls:
            return KUBERNETES
        if self.runs_vm_pdms:
            return VM
        return None

    @property
    def is_executor(self) -> bool:
        return self.kind is not None

    @property
    def is_dry_run(self) -> bool:
        return (
            any(call.dry_run or call.action == "template" for call in self.kctl_calls)
            and not self.is_executor
        )

    def describe(self) -> str:
        """What the job does to PDMs, in a few words."""
        if self.kind == KUBERNETES:
            call = self.executor_calls[0]
            skip = reaching_value(self, call.command, names.SKIP_VARIABLE)
            state = "runs PDMs" if skip == "false" else "would skip PDMs"
            return f"Kubernetes executor ({state}, k-ctl -e {call.environment} {call.action})"
        if self.kind == VM:
            return "VM executor (runs PDMs on the deploy VMs)"
        if self.is_dry_run:
            return "dry run (shows the migrations Job, runs nothing)"
        return "does not run PDMs"


def reaching_value(effect: JobEffect, command: Command, name: str) -> str | None:
    """The value of `name` in the environment of `command`, as far as the YAML decides.

    Trigger and pipeline variables beat YAML variables (not the script), so a value from
    the job's `variables:` is only what holds when no such variable is passed.
    """
    return _reaching(effect, command, name)


def _reaching(effect: JobEffect, command: Command, name: str) -> str | None:
    if name in command.assigned:
        return command.assigned[name]
    if name in command.stripped or command.clean_environment:
        return None
    variable = effect.effective_variables.get(name)
    return variable.value if variable else None


def _effect(pipeline: Pipeline, job: CiJob) -> JobEffect:
    variables = {v.name: v for v in pipeline.inherited_variables(job)}
    variables.update({v.name: v for v in job.variables})
    # A line the shell rejects must not hide the k-ctl call on the line before it.
    found, errors = read_script([(line.text, line.loc) for line in job.script])
    unparsable = tuple(errors)
    kctl = tuple(parse_kctl(c) for c in found if c.program == names.KCTL)
    vm = tuple(c for c in found if c.program == names.VM_TOOL)
    return JobEffect(job, kctl, vm, variables, unparsable)


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

    @property
    def executors(self) -> tuple[JobEffect, ...]:
        return tuple(e for e in self.effects.values() if e.is_executor)

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

    def successors(self, name: str) -> tuple[str, ...]:
        """Jobs that wait for `name` to finish, directly or not (any edge, not only success)."""
        waits = {job: set(before) for job, before in self.direct_predecessors.items()}
        found: list[str] = []
        frontier = [name]
        seen = {name}
        while frontier:
            current = frontier.pop()
            for job, before in waits.items():
                if current in before and job not in seen:
                    seen.add(job)
                    found.append(job)
                    frontier.append(job)
        return tuple(sorted(found))

    def execution_order(self) -> tuple[str, ...]:
        """Jobs in an order consistent with their waits, ties by name: for display."""
        waits = self.direct_predecessors
        done: list[str] = []
        remaining = sorted(waits)
        while remaining:
            ready = [n for n in remaining if all(b in done for b in waits[n] if b != n)]
            if not ready:  # a cycle in a loaded file: show the rest in name order
                ready = remaining[:1]
            done.append(ready[0])
            remaining.remove(ready[0])
        return tuple(done)


def analyse(pipeline: Pipeline) -> Analysis:
    return Analysis(pipeline, {job.name: _effect(pipeline, job) for job in pipeline.jobs})
