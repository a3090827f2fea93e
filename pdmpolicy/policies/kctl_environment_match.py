"""kctl-environment-match: k-ctl's -e belongs to this environment's database."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.core import names
from pdmpolicy.gitlab.analysis import KctlCall
from pdmpolicy.policies.base import Context, Documentation, Policy, Violation
from pdmpolicy.policies.examples import GSTG, changed


def database_of(kctl_environment: str, declared: dict[str, str]) -> str:
    """The database behind a k-ctl environment.

    A declared environment says its database; helmfile's other environments are named
    after their database (gstg-cny, gstg-us-east1-b -> gstg; gprd-cny -> gprd).
    """
    if kctl_environment in declared:
        return declared[kctl_environment]
    return kctl_environment.split("-", 1)[0]


def expected_stage(call: KctlCall, environment: str) -> str | None:
    """The k-ctl stage a call must name, when its target or its environment says one.

    `gstg-cny` (as `-e`, or as the environment whose pipeline it is) is the canary stage:
    the call needs `-s cny`, or it deploys to gstg's main stage. Elsewhere any stage goes
    (the canary shares its environment's database).
    """
    return names.named_stage(call.environment or "") or names.named_stage(environment)


class KctlEnvironmentMatch(Policy):
    name = "kctl-environment-match"
    summary = "k-ctl's -e belongs to this environment's database; no staging job touches production"
    documentation = Documentation(
        what="Every k-ctl call in an environment's pipeline names, with `-e`, a Kubernetes "
        "environment of the same database (gstg, gstg-cny and gstg's zonal clusters for "
        "gstg), and a canary environment (`gstg-cny`, as `-e` or as the environment file) "
        "is called with its stage, `-s cny`.",
        why="A copy-pasted job that says `-e gprd` in the staging pipeline runs production's "
        "PDMs from a staging run, outside every lock and soak the rollout relies on. A "
        "dropped `-s cny` deploys the canary's change to the main stage, whose rollout "
        "was never planned.",
        failing_example={
            "gstg.yml": changed(GSTG, "      environment: gstg\n", "      environment: gprd\n")
        },
        fix="Point `kctl.environment` at a cluster of this environment's database.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        declared = {v.name: v.environment.database for v in context.all_environments}
        for view in context.environments:
            database = view.environment.database
            for effect in view.analysis.effects.values():
                job = effect.job
                for call in effect.kctl_calls:
                    loc = job.locs.get("script:environment", call.command.loc)
                    if call.environment is None:
                        yield Violation(
                            call.command.loc,
                            f"k-ctl in {job.name} is called without -e: it would act on "
                            "whatever environment its defaults pick",
                            view.name,
                            job.name,
                            hint=f"pass -e {view.name}",
                            subject=f"{job.name}:missing",
                        )
                        continue
                    stage = expected_stage(call, view.name)
                    if stage is not None and call.stage != stage:
                        yield Violation(
                            job.locs.get("script", call.command.loc),
                            f"k-ctl in {job.name} runs stage {call.stage} for "
                            f"{call.environment} in environment {view.name}, which is "
                            f"stage {stage}",
                            view.name,
                            job.name,
                            hint=f"set kctl.stage: {stage}",
                            subject=f"{job.name}:stage",
                        )
                    target = database_of(call.environment, declared)
                    if target != database:
                        yield Violation(
                            loc,
                            f"k-ctl in {job.name} targets {call.environment} (database "
                            f"{target}) from environment {view.name} (database {database})",
                            view.name,
                            job.name,
                            hint=f"use a cluster of database {database}",
                            subject=f"{job.name}:{call.environment}",
                        )
