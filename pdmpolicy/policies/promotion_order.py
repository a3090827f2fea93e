"""promotion-order: an environment never leads its upstream, and follows only after a soak."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.policies.base import Context, Documentation, Option, Policy, Violation
from pdmpolicy.policies.examples import GSTG_FIRST, changed

_GPRD_DRY_RUN = """\
environment: gprd
database: gprd
upstream: gstg
rollout:
  step: dry-run
  since: 2026-11-09
jobs:
  gprd-kubernetes-dry-run:
    runner: kubernetes
    needs: []
    kctl:
      environment: gprd
      action: upgrade
      dry_run: true
  gprd-vm-post-deploy-migrations:
    runner: vm
    needs: []
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""
_GSTG_FIRST_SINCE_23 = changed(GSTG_FIRST, "since: 2026-11-16", "since: 2026-11-23")
_GPRD_FIRST = (
    _GSTG_FIRST_SINCE_23.replace("gstg", "gprd")
    .replace("upstream: null", "upstream: gstg")
    .replace("since: 2026-11-23", "since: 2026-11-26")
)


class PromotionOrder(Policy):
    name = "promotion-order"
    summary = (
        "an environment is never at a later step than its upstream, and reaches its "
        "upstream's step only after the upstream soaked there `soak_days`"
    )
    options = (Option("soak_days", "count", 7, "days the upstream must spend at a step first"),)
    documentation = Documentation(
        what="For every environment with an `upstream`: its rollout step is not later than "
        "the upstream's, and when both are at the same step, it entered that step (`since`) "
        "at least `soak_days` after the upstream did.",
        why="Staging goes first so that production meets only paths that staging has run "
        "for a while. Production at a step staging has not soaked at runs irreversible "
        "migrations on a path nobody has watched fail.",
        failing_example={"gstg.yml": _GSTG_FIRST_SINCE_23, "gprd.yml": _GPRD_FIRST},
        fix="Keep the environment at its current step until the upstream has soaked for "
        "`soak_days`, then move it (and set `since` to that day).",
        fixed_example={"gstg.yml": _GSTG_FIRST_SINCE_23, "gprd.yml": _GPRD_DRY_RUN},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        soak = int(context.options["soak_days"])
        by_name = {v.name: v.environment for v in context.all_environments}
        for view in context.environments:
            env = view.environment
            if env.upstream is None or env.upstream not in by_name:
                continue
            upstream = by_name[env.upstream]
            if env.step_index > upstream.step_index:
                yield Violation(
                    env.loc_of("step"),
                    f"{env.name} is at {env.step}, ahead of its upstream {upstream.name} "
                    f"({upstream.step})",
                    env.name,
                    hint=f"move {upstream.name} first, or keep {env.name} at "
                    f"{upstream.step} or earlier",
                    subject="ahead",
                )
            elif env.step_index == upstream.step_index and env.step_index > 0:
                days = (env.since - upstream.since).days
                if days < soak:
                    yield Violation(
                        env.loc_of("since"),
                        f"{env.name} entered {env.step} on {env.since.isoformat()}, {days} "
                        f"day{'s' if days != 1 else ''} after {upstream.name} did "
                        f"({upstream.since.isoformat()}); {upstream.name} must soak there "
                        f"{soak} days first",
                        env.name,
                        hint=f"wait until {upstream.name} has spent {soak} days at {env.step}",
                        subject="soak",
                    )
