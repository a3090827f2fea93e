"""kubernetes-waits-for-migrations: a Kubernetes executor with successors waits for its Job."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator, Sequence

from pdmpolicy.gitlab.analysis import KUBERNETES, JobEffect, KctlCall
from pdmpolicy.gitlab.pipeline import ScriptLine
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    PipelineView,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG_FIRST, changed


class KubernetesWaitsForMigrations(Policy):
    name = "kubernetes-waits-for-migrations"
    layers = BOTH_LAYERS
    summary = "a Kubernetes executor with anything after it waits for the migrations Job"
    documentation = Documentation(
        what="A job that runs PDMs through k-ctl and has other jobs waiting for it sets "
        "`kctl.wait_for_jobs: true`, so the CI job ends only when the migrations Job has. "
        "How the wait is spelled comes from the toolchain: an input to k-ctl "
        "(`WAIT_FOR_JOBS=true`) or a command after the k-ctl call in the same job "
        "(`kubectl wait ...`). Under `verify`, the last executor of a child pipeline must "
        "wait too when the parent starts, after the trigger job that waits for the child "
        "(`strategy: depend`), a job that may run PDMs (an executor, an unknown job, or a "
        "trigger of a pipeline with either).",
        why="`helm upgrade --wait` does not wait for Jobs. Without waiting, the CI job "
        "succeeds as soon as the release is applied, and the job after it (the VM "
        "executor at step kubernetes-first) starts while the migrations Job still runs: "
        "two concurrent `db:migrate`, one failing with ConcurrentMigrationError at best.",
        failing_example={
            "gstg.yml": changed(
                GSTG_FIRST, "      wait_for_jobs: true\n", "      wait_for_jobs: false\n"
            )
        },
        fix="Set `wait_for_jobs: true` under the job's `kctl`.",
        fixed_example={"gstg.yml": GSTG_FIRST},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            for effect in executors(view):
                if effect.kind != KUBERNETES:
                    continue
                job = effect.job
                after = view.analysis.successors(job.name)
                where = "" if after else _after_in_parents(view, context.pipelines)
                if not after and not where:
                    continue
                if after:
                    plural = "s" if len(after) == 1 else ""
                    what = f"{', '.join(after)} start{plural} when it ends"
                else:
                    what = f"it is the last executor of its pipeline, and {where}"
                wait = context.toolchain.kubernetes.wait
                for call in effect.executor_calls:
                    if wait.waits(call.command.assigned, _lines_after(job.script, call)):
                        continue
                    yield Violation(
                        job.locs.get("script:wait_for_jobs", call.command.loc),
                        f"{job.name} does not wait for the migrations Job, but {what}: they "
                        "would overlap the running migrations",
                        view.environment,
                        job.name,
                        hint="set wait_for_jobs: true under kctl (or the toolchain's wait "
                        "after the k-ctl call)",
                        subject=job.name,
                    )


def _same_file(include: str, path: str) -> bool:
    return posixpath.normpath(include.lstrip("/")) == posixpath.normpath(path)


def _matters(effect: JobEffect, pipelines: Sequence[PipelineView]) -> bool:
    """A job whose start during the migrations matters: one that may run PDMs itself, or
    a trigger of a pipeline that may."""
    if effect.is_executor or effect.is_unknown:
        return True
    trigger = effect.job.trigger
    if trigger is None:
        return False
    return any(
        _same_file(trigger.include, child.pipeline.path)
        and (child.analysis.executors or child.analysis.unknown)
        for child in pipelines
    )


def _after_in_parents(view: PipelineView, pipelines: Sequence[PipelineView]) -> str:
    """What starts in a parent pipeline when this (child) pipeline ends: the jobs after
    the trigger job that waits for it (`strategy: depend`) which matter; "" for none."""
    found = []
    for parent in pipelines:
        for trigger_job in parent.pipeline.jobs:
            trigger = trigger_job.trigger
            if trigger is None or trigger.strategy != "depend":
                continue
            if not _same_file(trigger.include, view.pipeline.path):
                continue
            for name in parent.analysis.successors(trigger_job.name):
                if _matters(parent.analysis.effect(name), pipelines):
                    found.append(f"{name} in {parent.pipeline.path}")
    if not found:
        return ""
    return f"{', '.join(found)} start{'s' if len(found) == 1 else ''} when it ends"


def _lines_after(script: Sequence[ScriptLine], call: KctlCall) -> list[list[str]]:
    """The words of each script line after the one holding `call`, for the toolchain's wait
    step (docs/toolchain.md: a wait is a command run after k-ctl in the same job).

    Only a line that is one plain command counts: its words as a POSIX shell splits them,
    operators and all. `kubectl wait ... || true` or `... &` would let the job succeed while
    the migrations still run, and in `k-ctl ... && kubectl wait ...` a failing k-ctl skips the
    wait without stopping a `set -e` shell (only the last command of an `&&` list does), so
    none of them is a wait. A line the shell cannot split is none either.
    """
    index = next(
        (
            i
            for i, line in enumerate(script)
            if line.text == call.command.text and line.loc == call.command.loc
        ),
        None,
    )
    if index is None:  # the call is not on a line of its own script: nothing waits for it
        return []
    found = []
    for line in script[index + 1 :]:
        try:
            found.append(shlex.split(line.text))
        except ValueError:
            continue
    return found
