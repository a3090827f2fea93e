"""kubernetes-waits-for-migrations: a Kubernetes executor with successors waits for its Job."""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence

from pdmpolicy.analysis import KUBERNETES, KctlCall
from pdmpolicy.pipeline import ScriptLine
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG_FIRST, changed


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
                wait = context.toolchain.kubernetes.wait
                for call in effect.executor_calls:
                    if wait.waits(call.command.assigned, _lines_after(job.script, call)):
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


def _lines_after(script: Sequence[ScriptLine], call: KctlCall) -> list[list[str]]:
    """The words of each script line after the one holding `call`, for the toolchain's wait
    step (docs/toolchain.md: a wait is a command run after k-ctl in the same job).

    Only a line that is one plain command counts: its words as a POSIX shell splits them,
    operators and all. `kubectl wait ... || true` or `... &` would let the job succeed while
    the migrations still run, and in `k-ctl ... && kubectl wait ...` a failing k-ctl skips the
    wait without stopping a `set -e` shell (only the last command of an `&&` list does), so
    none of them is a wait. A line the shell cannot split is none either.
    """
    index = next(
        (
            i
            for i, line in enumerate(script)
            if line.text == call.command.text and line.loc == call.command.loc
        ),
        None,
    )
    if index is None:  # the call is not on a line of its own script: nothing waits for it
        return []
    found = []
    for line in script[index + 1 :]:
        try:
            found.append(shlex.split(line.text))
        except ValueError:
            continue
    return found
