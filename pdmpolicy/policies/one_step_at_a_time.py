"""one-step-at-a-time: a change moves an environment at most one step, after a soak."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from pdmpolicy.core.names import ROLLOUT_STEPS
from pdmpolicy.policies.base import Context, Documentation, Option, Policy, Violation
from pdmpolicy.policies.examples import GSTG, changed

_GSTG_DRY_RUN = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: dry-run
  since: 2026-11-02
variables:
  DEPLOY_ENVIRONMENT: gstg
jobs:
  gstg-kubernetes-dry-run:
    runner: kubernetes
    needs: []
    kctl:
      environment: gstg
      action: upgrade
      dry_run: true
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""
_GSTG_VM = """\
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
    timeout: 10h
"""


class OneStepAtATime(Policy):
    name = "one-step-at-a-time"
    summary = (
        "(with a base) a change moves an environment at most one step forward, and only "
        "after `soak_days` at the old step; `since` is updated with the step"
    )
    options = (Option("soak_days", "count", 7, "days an environment stays at a step first"),)
    needs_base = True
    documentation = Documentation(
        what="With `--base REF` (the merge request's target), compares each environment with "
        "its version at the base: the rollout step moves forward by at most one step, only "
        "after the environment spent `soak_days` at the old step (counted to `--today`), and "
        "`since` changes together with the step (to a day not after `--today`), never alone.",
        why="Each step proves one thing before the next risks more; skipping one runs "
        "irreversible migrations on a path nobody has watched. An unchanged `since` after a "
        "step change starts the next soak in the past; a `since` moved alone fakes a soak.",
        failing_example={
            "base:gstg.yml": _GSTG_VM,
            "gstg.yml": changed(GSTG, "since: 2026-11-16", "since: 2026-11-26"),
        },
        fix="Move one step per merge request, after the soak, and set `since` to the day the "
        "change is made.",
        fixed_example={
            "base:gstg.yml": _GSTG_DRY_RUN,
            "gstg.yml": changed(GSTG, "since: 2026-11-16", "since: 2026-11-26"),
        },
    )

    def check(self, context: Context) -> Iterator[Violation]:
        if context.base is None:
            return
        soak = int(context.options["soak_days"])
        before = {v.name: v.environment for v in context.base}
        for view in context.environments:
            env = view.environment
            old = before.get(env.name)
            if old is None:
                continue
            moved = env.step_index - old.step_index
            if moved > 1:
                skipped = ", ".join(ROLLOUT_STEPS[old.step_index + 1 : env.step_index])
                yield Violation(
                    env.loc_of("step"),
                    f"{env.name} moves from {old.step} to {env.step}, skipping {skipped}",
                    env.name,
                    hint=f"move to {ROLLOUT_STEPS[old.step_index + 1]} first",
                    subject="skip",
                )
            if moved >= 1:
                days = (context.today - old.since).days
                if days < soak:
                    yield Violation(
                        env.loc_of("step"),
                        f"{env.name} leaves {old.step} after {days} day{'s' if days != 1 else ''}"
                        f" (since {old.since.isoformat()}); it must soak there {soak} days",
                        env.name,
                        hint=f"wait until {(old.since + dt.timedelta(days=soak)).isoformat()}",
                        subject="soak",
                    )
            # A step entered today and left today (the way out of an incident on the day
            # it started) keeps since: today is already the day of this change.
            if moved != 0 and env.since == old.since != context.today:
                yield Violation(
                    env.loc_of("since"),
                    f"{env.name} changes step but since still says {env.since.isoformat()}",
                    env.name,
                    hint="set since to the day of this change",
                    subject="since-not-updated",
                )
            elif moved == 0 and env.since != old.since:
                yield Violation(
                    env.loc_of("since"),
                    f"{env.name} stays at {env.step} but since moves from "
                    f"{old.since.isoformat()} to {env.since.isoformat()}: the soak clock "
                    "changes only with the step",
                    env.name,
                    hint=f"keep since: {old.since.isoformat()}",
                    subject="since-moved",
                )
            if env.since > context.today:
                yield Violation(
                    env.loc_of("since"),
                    f"{env.name}'s since ({env.since.isoformat()}) is after today "
                    f"({context.today.isoformat()})",
                    env.name,
                    hint="use the day the step is entered",
                    subject="since-future",
                )
