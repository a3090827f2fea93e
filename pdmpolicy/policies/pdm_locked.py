"""pdm-locked: executors hold a resource group keyed by the database."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.environments.lower import RESOURCE_GROUP
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Option,
    PipelineView,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, changed


class PdmLocked(Policy):
    name = "pdm-locked"
    layers = BOTH_LAYERS
    summary = "executors hold a resource group keyed by the database"
    options = (
        Option(
            "resource_group",
            "text",
            RESOURCE_GROUP,
            "the lock every executor of a database must hold; {database} is replaced",
        ),
    )
    documentation = Documentation(
        what="Every job that executes PDMs holds the resource group of its database "
        f"(by default `{RESOURCE_GROUP}`), so every environment that shares the database "
        "waits for the same lock.",
        why="Only `resource_group` makes jobs of different pipelines mutually exclusive. "
        "Without it a second PDM pipeline started while the first runs (a retried "
        "ChatOps command, a second environment on the same database) runs `db:migrate` "
        "concurrently; a lock keyed by the environment instead of the database lets "
        "gstg and gstg-cny run together.",
        failing_example={
            "gstg.yml": changed(
                GSTG,
                "    timeout: 10h\n  gstg-kubernetes",
                "    timeout: 10h\n    resource_group: gstg-vm\n  gstg-kubernetes",
            )
        },
        fix="Remove `resource_group` from the job: pdmpolicy renders the database's group.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        template = str(context.options["resource_group"])
        for view in context.pipelines:
            groups: dict[str, set[str]] = {}
            expected = (
                template.replace("{database}", view.database) if view.database is not None else None
            )
            for effect in executors(view):
                job = effect.job
                if job.resource_group is None:
                    yield Violation(
                        job.loc,
                        f"PDM job {job.name} holds no resource group: a second pipeline could "
                        "run PDMs at the same time",
                        view.environment,
                        job.name,
                        hint=f"use resource_group: {expected or 'one group per database'}",
                        subject=job.name,
                    )
                elif expected is not None and job.resource_group != expected:
                    yield Violation(
                        job.loc_of("resource_group"),
                        f"PDM job {job.name} holds resource group '{job.resource_group}', not "
                        f"the database's '{expected}': other environments on database "
                        f"{view.database} would not wait for it",
                        view.environment,
                        job.name,
                        hint=(
                            "remove resource_group to get the database's lock"
                            if "resource_group" in job.locs and template == RESOURCE_GROUP
                            else f"use resource_group: {expected}"
                        ),
                        subject=job.name,
                    )
                elif expected is None:
                    groups.setdefault(job.resource_group, set()).add(job.name)
            yield from _mixed_groups(view, groups)
        yield from _deadlocks(context)


def _mixed_groups(view: PipelineView, groups: dict[str, set[str]]) -> Iterator[Violation]:
    """A loaded pipeline names no database, but its executors share one: with different
    groups, one pipeline's VM executor can run while another pipeline's Kubernetes
    executor does."""
    if len(groups) < 2:
        return
    described = "; ".join(f"{g}: {', '.join(sorted(jobs))}" for g, jobs in sorted(groups.items()))
    for effect in executors(view):
        job = effect.job
        if job.resource_group in groups:
            yield Violation(
                job.loc_of("resource_group"),
                f"the PDM jobs of {view.pipeline.path} hold different resource groups "
                f"({described}): two pipelines could run them at the same time",
                view.environment,
                job.name,
                hint="give every PDM job of the pipeline the database's resource group",
                subject=f"{job.name}:mixed",
            )


def _deadlocks(context: Context) -> Iterator[Violation]:
    """A trigger job holding the group a job of its child pipeline needs waits forever:
    the trigger keeps its lock until the child finishes (docs/gitlab-ci-semantics.md, §8)."""
    by_path = {view.pipeline.path: view for view in context.pipelines}
    for view in context.pipelines:
        for trigger_job in view.pipeline.jobs:
            trigger = trigger_job.trigger
            if trigger is None or trigger_job.resource_group is None:
                continue
            child = by_path.get(trigger.include)
            if child is None:
                continue
            for job in child.pipeline.jobs:
                if job.resource_group == trigger_job.resource_group:
                    yield Violation(
                        trigger_job.loc_of("resource_group"),
                        f"trigger job {trigger_job.name} holds resource group "
                        f"'{trigger_job.resource_group}', which {job.name} in its child "
                        f"pipeline {child.pipeline.path} needs: a deadlock",
                        view.environment,
                        trigger_job.name,
                        hint="remove resource_group from the trigger job; the child's jobs "
                        "hold the lock",
                        subject=f"{trigger_job.name}:deadlock:{job.name}",
                    )
