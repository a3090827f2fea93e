"""manifest-deadline: the migrations Job's deadline is no shorter than the CI job's timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pdmpolicy.core import names
from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record
from pdmpolicy.policies.base import (
    MANIFESTS_LAYER,
    Context,
    Documentation,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, changed
from pdmpolicy.policies.manifest_examples import MIGRATIONS_JOB
from pdmpolicy.policies.manifest_no_job_retry import spec_loc, whole_number

GITLAB_DEFAULT_TIMEOUT = 3600
"""A GitLab project's job timeout unless changed: what a job without `timeout` gets."""

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import ManifestFile, MigrationsJob


@record
class CiTimeout:
    seconds: int
    source: str
    """Where it comes from, in words, for messages."""


def ci_timeout(context: Context, environment: str) -> CiTimeout | None:
    """The longest timeout of the environment's PDM executors; None for an unknown one."""
    view = next((v for v in context.all_environments if v.name == environment), None)
    if view is None:
        return None
    best: CiTimeout | None = None
    for effect in executors(view):
        job = effect.job
        seconds = names.parse_duration(job.timeout) if job.timeout else None
        if seconds is not None and (best is None or seconds > best.seconds):
            best = CiTimeout(
                seconds, f"the {job.timeout} timeout of {job.name} ({job.loc_of('timeout')})"
            )
    return best or CiTimeout(
        GITLAB_DEFAULT_TIMEOUT,
        f"GitLab's default job timeout of 60 minutes (no PDM job of {environment} declares "
        "a timeout)",
    )


class ManifestDeadline(Policy):
    name = "manifest-deadline"
    layers = MANIFESTS_LAYER
    summary = (
        "the migrations Job's `activeDeadlineSeconds` is set and no shorter than the CI "
        "timeout of its environment"
    )
    documentation = Documentation(
        what="The migrations Job sets `activeDeadlineSeconds`, no shorter than the CI "
        "timeout of the environment it was rendered for: the longest `timeout` among that "
        "environment's PDM executors in `environments/<env>.yml` (GitLab's default of 60 "
        "minutes when none declares one). docs/manifests.md says how a file's environment "
        "is decided.",
        why="The chart's default deadline is 3600 seconds, while PDMs on GitLab.com "
        "historically ran for up to 10 hours. When the deadline passes, Kubernetes kills the "
        "pod in the middle of a migration and fails the Job, while the CI job that waits for "
        "it believes it has hours left. Without a deadline, a hung migration outlives the CI "
        "job that watches it, and nobody sees it.",
        failing_example={
            "gstg.yml": GSTG,
            "gstg.manifest.yaml": changed(
                MIGRATIONS_JOB,
                "  activeDeadlineSeconds: 36000\n",
                "  activeDeadlineSeconds: 3600\n",
            ),
        },
        fix="Set `activeDeadlineSeconds` (chart value `gitlab.migrations."
        "activeDeadlineSeconds`) to at least the executors' CI timeout: 36000 for `timeout: "
        "10h`.",
        fixed_example={"gstg.yml": GSTG, "gstg.manifest.yaml": MIGRATIONS_JOB},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for file in context.manifests:
            for job in file.jobs:
                yield from self._job(context, file, job)

    def _job(self, context: Context, file: ManifestFile, job: MigrationsJob) -> Iterator[Violation]:
        spec = job.spec
        timeout = ci_timeout(context, file.environment) if file.environment else None
        needed = timeout.seconds if timeout else None
        hint = (
            f"set activeDeadlineSeconds: {needed} or more (chart value "
            "gitlab.migrations.activeDeadlineSeconds)"
            if needed is not None
            else "pass --environment ENV so the CI timeout is known"
        )

        def violation(loc: Loc, message: str) -> Violation:
            return Violation(
                loc,
                message,
                file.environment,
                hint=hint,
                subject=f"{job.resource.index}:activeDeadlineSeconds",
            )

        if spec is None or spec.get("activeDeadlineSeconds") is None:
            yield violation(
                spec_loc(job),
                f"migrations Job {job.name} sets no activeDeadlineSeconds: a hung migration "
                "would run on after the CI job watching it has timed out",
            )
            return
        value = spec["activeDeadlineSeconds"]
        loc = job.resource.value_loc(spec, "activeDeadlineSeconds")
        deadline = whole_number(value)
        if deadline is None or deadline <= 0:
            yield violation(
                loc,
                f"activeDeadlineSeconds of migrations Job {job.name} is {value!r}, not a "
                "whole number of seconds above 0",
            )
            return
        if timeout is None:
            yield violation(
                loc,
                f"the CI timeout for migrations Job {job.name} is unknown: {file.path} is not "
                "tied to an environment",
            )
            return
        if deadline < timeout.seconds:
            yield violation(
                loc,
                f"migrations Job {job.name} has activeDeadlineSeconds {deadline} "
                f"({names.format_duration(deadline)}), shorter than the CI timeout of "
                f"{file.environment}, {timeout.source}: Kubernetes would kill db:migrate "
                "midway while the CI job still waits",
            )
