"""pdm-not-interruptible: executors cannot be auto-cancelled midway."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, changed


class PdmNotInterruptible(Policy):
    name = "pdm-not-interruptible"
    layers = BOTH_LAYERS
    summary = "executors cannot be auto-cancelled midway"
    documentation = Documentation(
        what="Every job that executes PDMs has `interruptible: false` (the rendered default).",
        why="GitLab auto-cancels interruptible jobs when a newer pipeline starts on the same "
        "ref. Cancelling a PDM run midway kills `db:migrate` between migrations, and the "
        "next run starts from a state nobody reviewed.",
        failing_example={
            "gstg.yml": changed(
                GSTG,
                "    timeout: 10h\n  gstg-kubernetes",
                "    timeout: 10h\n    interruptible: true\n  gstg-kubernetes",
            )
        },
        fix="Remove `interruptible: true` from the job.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            for effect in executors(view):
                job = effect.job
                if job.interruptible:
                    yield Violation(
                        job.loc_of("interruptible"),
                        f"PDM job {job.name} is interruptible: a newer pipeline would cancel "
                        "it midway through the migrations",
                        view.environment,
                        job.name,
                        hint="remove interruptible: true",
                        subject=job.name,
                    )
