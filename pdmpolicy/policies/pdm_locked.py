"""pdm-locked: executors hold a resource group keyed by the database."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.lower import RESOURCE_GROUP
from pdmpolicy.policies.base import Context, Documentation, Option, Policy, Violation, executors
from pdmpolicy.policies.examples import GSTG, changed


class PdmLocked(Policy):
    name = "pdm-locked"
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
        for view in context.environments:
            expected = template.replace("{database}", view.environment.database)
            for effect in executors(view):
                job = effect.job
                if job.resource_group is None:
                    yield Violation(
                        job.loc,
                        f"PDM job {job.name} holds no resource group: a second pipeline could "
                        "run PDMs at the same time",
                        view.name,
                        job.name,
                        hint=f"use resource_group: {expected}",
                        subject=job.name,
                    )
                elif job.resource_group != expected:
                    yield Violation(
                        job.loc_of("resource_group"),
                        f"PDM job {job.name} holds resource group '{job.resource_group}', not "
                        f"the database's '{expected}': other environments on database "
                        f"{view.environment.database} would not wait for it",
                        view.name,
                        job.name,
                        hint=(
                            "remove resource_group to get the database's lock"
                            if "resource_group" in job.locs and template == RESOURCE_GROUP
                            else f"use resource_group: {expected}"
                        ),
                        subject=job.name,
                    )
