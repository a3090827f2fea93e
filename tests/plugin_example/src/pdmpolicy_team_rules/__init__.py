"""An example team policy: no job of an environment may run longer than `maximum`."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.core.names import format_duration, parse_duration
from pdmpolicy.policies.base import Context, Documentation, Option, Policy, Violation

_ENVIRONMENT = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: vm
  since: 2026-11-02
jobs:
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: {timeout}
"""


class TeamTimeoutCap(Policy):
    name = "team-timeout-cap"
    summary = "no job runs longer than `maximum`"
    default_severity = "warning"
    options = (Option("maximum", "duration", "12h", "the longest timeout a job may have"),)
    documentation = Documentation(
        what="Every job's `timeout` is at most the `maximum` option.",
        why="A hung PDM job holds the database's resource group until it times out; the "
        "on-call team wants to hear about it within a shift.",
        failing_example={"gstg.yml": _ENVIRONMENT.format(timeout="24h")},
        fix="Lower the timeout, or raise `maximum` in the policy set.",
        fixed_example={"gstg.yml": _ENVIRONMENT.format(timeout="10h")},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        maximum = parse_duration(str(context.options["maximum"])) or 0
        for view in context.environments:
            for job in view.environment.jobs:
                seconds = parse_duration(job.timeout) if job.timeout else None
                if seconds is not None and seconds > maximum:
                    yield Violation(
                        job.loc_of("timeout"),
                        f"{job.name} may run for {format_duration(seconds)}, longer than "
                        f"{format_duration(maximum)}",
                        view.name,
                        job.name,
                        hint=f"set timeout to {format_duration(maximum)} or less",
                        subject=job.name,
                    )
