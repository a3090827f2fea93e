"""manifest-no-job-retry: the migrations Job starts db:migrate at most once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pdmpolicy.core.location import Loc
from pdmpolicy.policies.base import (
    MANIFESTS_LAYER,
    Context,
    Documentation,
    Policy,
    Violation,
)
from pdmpolicy.policies.examples import changed
from pdmpolicy.policies.manifest_examples import MIGRATIONS_JOB

DEFAULT_BACKOFF_LIMIT = 6
"""What Kubernetes uses when a Job sets no `backoffLimit` (also the chart's default)."""

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import ManifestFile, MigrationsJob


def whole_number(value: Any) -> int | None:
    """A YAML integer (booleans are not numbers to Kubernetes)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def spec_loc(job: MigrationsJob) -> Loc:
    """Where a missing Job-level field belongs: the Job's `spec:` (else its `kind:`)."""
    resource = job.resource
    return resource.key_loc(resource.data, "spec") if job.spec is not None else resource.loc


class ManifestNoJobRetry(Policy):
    name = "manifest-no-job-retry"
    layers = MANIFESTS_LAYER
    summary = "the migrations Job has `backoffLimit: 0` and its pod `restartPolicy: Never`"
    documentation = Documentation(
        what="The migrations Job starts `db:migrate` at most once: the Job sets "
        "`backoffLimit: 0` (no new pod after a failed one), its pod template sets "
        "`restartPolicy: Never` (no restart of a failed container in place), and it asks "
        "for no more than one pod (`completions` and `parallelism` absent or 1).",
        why="The chart's migrations Job defaults to `backoffLimit: 6` and `restartPolicy: "
        "OnFailure`: after a failed or killed attempt Kubernetes restarts the container or "
        "starts a new pod, and `db:migrate` runs again on a database a failed PDM may have "
        "left half migrated, with nobody deciding to. PDMs cannot be undone; a failed run is "
        "investigated, then re-run by a person.",
        failing_example={
            "gstg.manifest.yaml": changed(
                changed(MIGRATIONS_JOB, "  backoffLimit: 0\n", "  backoffLimit: 6\n"),
                "      restartPolicy: Never\n",
                "      restartPolicy: OnFailure\n",
            )
        },
        fix="Set `backoffLimit: 0` (chart value `gitlab.migrations.backoffLimit`) and "
        "`restartPolicy: Never` on the pod template. The chart writes `OnFailure` itself, "
        "so that one takes a patch of the rendered Job in the helmfile release "
        "(`strategicMergePatches` or `jsonPatches`) or a chart change.",
        fixed_example={"gstg.manifest.yaml": MIGRATIONS_JOB},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for file in context.manifests:
            for job in file.jobs:
                yield from self._backoff(file, job)
                yield from self._restart(file, job)
                yield from self._pods(file, job)

    def _violation(
        self, file: ManifestFile, job: MigrationsJob, loc: Loc, message: str, hint: str, key: str
    ) -> Violation:
        return Violation(
            loc, message, file.environment, hint=hint, subject=f"{job.resource.index}:{key}"
        )

    def _backoff(self, file: ManifestFile, job: MigrationsJob) -> Iterator[Violation]:
        spec = job.spec
        hint = "set backoffLimit: 0 (chart value gitlab.migrations.backoffLimit)"
        if spec is None or "backoffLimit" not in spec:
            yield self._violation(
                file,
                job,
                spec_loc(job),
                f"migrations Job {job.name} sets no backoffLimit: Kubernetes defaults to "
                f"{DEFAULT_BACKOFF_LIMIT}, so after a failed attempt it starts db:migrate again "
                f"in a new pod, up to {DEFAULT_BACKOFF_LIMIT} times",
                hint,
                "backoffLimit",
            )
            return
        value = spec["backoffLimit"]
        limit = whole_number(value)
        if limit == 0:
            return
        retries = (
            f"up to {limit} times" if limit is not None and limit > 0 else "(not a valid limit)"
        )
        yield self._violation(
            file,
            job,
            job.resource.value_loc(spec, "backoffLimit"),
            f"migrations Job {job.name} has backoffLimit {value!r}: after a failed attempt "
            f"Kubernetes starts db:migrate again in a new pod, {retries}",
            hint,
            "backoffLimit",
        )

    def _restart(self, file: ManifestFile, job: MigrationsJob) -> Iterator[Violation]:
        pod = job.pod_spec
        hint = (
            "set restartPolicy: Never on the pod template (the chart writes OnFailure: patch "
            "the rendered Job)"
        )
        if pod is None or "restartPolicy" not in pod:
            template = job.template
            loc = (
                job.resource.key_loc(template, "spec")
                if template is not None and pod is not None
                else spec_loc(job)
            )
            yield self._violation(
                file,
                job,
                loc,
                f"the pod template of migrations Job {job.name} sets no restartPolicy (a Job "
                "needs Never or OnFailure): Never is the one that does not restart db:migrate",
                hint,
                "restartPolicy",
            )
            return
        policy = pod["restartPolicy"]
        if policy == "Never":
            return
        effect = (
            "Kubernetes restarts a failed container in the same pod, and db:migrate runs again"
            if policy == "OnFailure"
            else "a Job accepts only Never or OnFailure, and only Never does not restart db:migrate"
        )
        yield self._violation(
            file,
            job,
            job.resource.value_loc(pod, "restartPolicy"),
            f"the pod template of migrations Job {job.name} has restartPolicy {policy!r}: {effect}",
            hint,
            "restartPolicy",
        )

    def _pods(self, file: ManifestFile, job: MigrationsJob) -> Iterator[Violation]:
        spec: Mapping[str, Any] = job.spec or {}
        for key in ("completions", "parallelism"):
            if key not in spec or spec[key] is None:
                continue
            count = whole_number(spec[key])
            if count is not None and count <= 1:
                continue
            yield self._violation(
                file,
                job,
                job.resource.value_loc(spec, key),
                f"migrations Job {job.name} has {key} {spec[key]!r}: Kubernetes would run "
                "db:migrate in more than one pod",
                f"remove {key} (one pod runs the migrations)",
                key,
            )
