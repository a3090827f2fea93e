"""pdm-no-auto-retry: executors have an effective retry of 0."""

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


class PdmNoAutoRetry(Policy):
    name = "pdm-no-auto-retry"
    layers = BOTH_LAYERS
    summary = "executors have an effective retry of 0, default: inheritance included"
    documentation = Documentation(
        what="Every job that executes PDMs has an effective `retry` of 0, counting what it "
        "would inherit from `default:`.",
        why="An automatic retry starts the PDMs again after a failed attempt, possibly while "
        "the failed one left the database half migrated, with nobody deciding to. GitLab's "
        "retry defaults to `when: always`, so even a runner failure triggers it.",
        failing_example={
            "gstg.yml": changed(
                GSTG,
                "    timeout: 10h\n  gstg-kubernetes",
                "    timeout: 10h\n    retry: 1\n  gstg-kubernetes",
            )
        },
        fix="Remove `retry` from the job (pdmpolicy renders `retry: 0`). A failed PDM run is "
        "investigated and re-run by a person.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            for effect in executors(view):
                job = effect.job
                if job.retry > 0:
                    yield Violation(
                        job.loc_of("retry"),
                        f"PDM job {job.name} is retried automatically (retry {job.retry}): "
                        "PDMs would start again after a failed attempt",
                        view.environment,
                        job.name,
                        hint="remove retry; a person re-runs a failed PDM job",
                        subject=job.name,
                    )
