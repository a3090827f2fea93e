"""kubernetes-waits-for-migrations: a Kubernetes executor with successors waits for its Job."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.analysis import KUBERNETES
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG_FIRST, changed
from pdmpolicy.shell import read_script


class KubernetesWaitsForMigrations(Policy):
    name = "kubernetes-waits-for-migrations"
    layers = BOTH_LAYERS
    summary = "a Kubernetes executor with anything after it waits for the migrations Job"
    documentation = Documentation(
        what="A job that runs PDMs through k-ctl and has other jobs waiting for it sets "
        "`kctl.wait_for_jobs: true`, so the CI job ends only when the migrations Job has.",
        why="`helm upgrade --wait` does not wait for Jobs. Without waiting, the CI job "
        "succeeds as soon as the release is applied, and the job after it (the VM "
        "executor at step kubernetes-first) starts while the migrations Job still runs: "
        "two concurrent `db:migrate`, one failing with ConcurrentMigrationError at best.",
        failing_example={
            "gstg.yml": changed(
                GSTG_FIRST, "      wait_for_jobs: true\n", "      wait_for_jobs: false\n"
            )
        },
        fix="Set `wait_for_jobs: true` under the job's `kctl`.",
        fixed_example={"gstg.yml": GSTG_FIRST},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            for effect in executors(view):
                if effect.kind != KUBERNETES:
                    continue
                after = view.analysis.successors(effect.job.name)
                if not after:
                    continue
                job = effect.job
                # The toolchain says how a call waits: an input it is given, or a command
                # run after it in the same job (docs/toolchain.md).
                commands, _ = read_script([(line.text, line.loc) for line in job.script])
                wait = context.toolchain.kubernetes.wait
                for call in effect.executor_calls:
                    at = commands.index(call.command) if call.command in commands else 0
                    later = [(c.program, *c.args) for c in commands[at + 1 :]]
                    if wait.waits(call.command.assigned, later):
                        continue
                    yield Violation(
                        job.locs.get("script:wait_for_jobs", call.command.loc),
                        f"{job.name} does not wait for the migrations Job, but "
                        f"{', '.join(after)} start{'s' if len(after) == 1 else ''} when it "
                        "ends: they would overlap the running migrations",
                        view.environment,
                        job.name,
                        hint="set wait_for_jobs: true under kctl",
                        subject=job.name,
                    )
