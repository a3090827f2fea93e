"""pdm-executor-timeout: executors' timeout is at least `minimum`."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.core import names
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Option,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG


class PdmExecutorTimeout(Policy):
    name = "pdm-executor-timeout"
    layers = BOTH_LAYERS
    summary = "executors' timeout is at least `minimum`"
    options = (Option("minimum", "duration", "3h", "the shortest timeout an executor may have"),)
    documentation = Documentation(
        what="Every job that executes PDMs declares a `timeout` of at least `minimum` "
        "(default 3h).",
        why="PDMs on GitLab.com historically ran with a 10-hour timeout. A job killed by its "
        "timeout stops `db:migrate` midway; without a declared timeout GitLab applies the "
        "project's default, 60 minutes unless changed.",
        failing_example={"gstg.yml": GSTG.replace("    timeout: 10h\n", "    timeout: 1h\n")},
        fix="Declare a timeout long enough for the slowest PDM run, for example `timeout: 10h`.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        minimum_text = str(context.options["minimum"])
        minimum = names.parse_duration(minimum_text) or 0
        for view in context.pipelines:
            for effect in executors(view):
                job = effect.job
                if job.timeout is None:
                    yield Violation(
                        job.loc,
                        f"PDM job {job.name} declares no timeout: GitLab applies the project "
                        f"default (60 minutes unless changed), below the minimum "
                        f"{minimum_text}",
                        view.environment,
                        job.name,
                        hint=f"add timeout: {minimum_text} or more",
                        subject=job.name,
                    )
                    continue
                seconds = names.parse_duration(job.timeout)
                if seconds is not None and seconds < minimum:
                    yield Violation(
                        job.loc_of("timeout"),
                        f"PDM job {job.name} times out after {job.timeout}, below the minimum "
                        f"{minimum_text}: a long migration would be killed midway",
                        view.environment,
                        job.name,
                        hint=f"raise timeout to {minimum_text} or more",
                        subject=job.name,
                    )
