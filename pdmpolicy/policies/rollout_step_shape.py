"""rollout-step-shape: the job graph is the one the declared rollout step requires."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.gitlab.analysis import KUBERNETES, VM
from pdmpolicy.gitlab.pipeline import CiJob
from pdmpolicy.policies.base import (
    Context,
    Documentation,
    EnvironmentView,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, changed
from pdmpolicy.prover.prover import ORDER_ABSENT, ORDER_BEFORE, ORDER_MANUAL, Order, order

_SHAPES = {
    # step: (VM executors, Kubernetes executors, needs a dry run)
    "vm": (1, 0, False),
    "dry-run": (1, 0, True),
    "kubernetes-after-vm": (1, 1, False),
    "kubernetes-first": (1, 1, False),
    "kubernetes-only": (0, 1, False),
}


class RolloutStepShape(Policy):
    name = "rollout-step-shape"
    summary = "the job graph is the one its declared step requires"
    documentation = Documentation(
        what="Checks that the executors of an environment match its `rollout.step`: how many "
        "VM and Kubernetes executors there are, whether a dry-run job exists, and which "
        "executor runs first. `kubernetes-after-vm` needs the Kubernetes executor to start "
        "only after the VM executor succeeded; `kubernetes-first` the reverse. An environment "
        "without executors whose database's PDMs run in another environment (gstg-cny beside "
        "gstg) needs no executors of its own.",
        why="The move to Kubernetes is staged because PDMs cannot be undone: each step proves "
        "one thing before the next risks more. A step whose jobs do not match it proves "
        "nothing, or runs PDMs on a path that was never tried (a merge request that says "
        "`kubernetes-after-vm` but lets both executors start together).",
        failing_example={
            "gstg.yml": changed(GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", "")
        },
        fix="Give the jobs the order the step names: the second executor `needs` the first. Or "
        "declare the step the jobs actually implement.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        runs_elsewhere = _databases_with_executors(context)
        for view in context.environments:
            env = view.environment
            step = env.step
            found = list(executors(view))
            vms = [e for e in found if e.kind == VM]
            kubes = [e for e in found if e.kind == KUBERNETES]
            want_vm, want_kube, want_dry = _SHAPES[step]
            loc = env.loc_of("step")
            if not found and runs_elsewhere.get(env.database, set()) - {env.name}:
                # pdm-one-environment-per-database: the database's PDMs run in another
                # environment, so this one (gstg-cny beside gstg) has no executors to shape.
                want_vm = want_kube = 0
            for kind, have, want in (("VM", vms, want_vm), ("Kubernetes", kubes, want_kube)):
                if len(have) != want:
                    listed = ", ".join(e.job.name for e in have) or "none"
                    yield Violation(
                        loc,
                        f"step {step} needs {want} {kind} executor{'s' if want != 1 else ''}, "
                        f"found {len(have)} ({listed})",
                        environment=env.name,
                        subject=f"{kind.lower()}-executors",
                    )
            if want_dry and not any(e.is_dry_run for e in view.analysis.effects.values()):
                yield Violation(
                    loc,
                    f"step {step} needs a Kubernetes job with dry_run: true (k-ctl -D), found none",
                    environment=env.name,
                    subject="dry-run-job",
                )
            if (
                len(vms) == 1
                and len(kubes) == 1
                and step in ("kubernetes-after-vm", "kubernetes-first")
            ):
                first, second = (
                    (vms[0], kubes[0]) if step == "kubernetes-after-vm" else (kubes[0], vms[0])
                )
                how = order(view.pipeline, first.job.name, second.job.name)
                if not how.ordered:
                    yield _unordered(view, step, first.job, second.job, how)


def _databases_with_executors(context: Context) -> dict[str, set[str]]:
    """Database -> the environments that execute its PDMs."""
    found: dict[str, set[str]] = {}
    for view in context.all_environments:
        if any(True for _ in executors(view)):
            found.setdefault(view.environment.database, set()).add(view.name)
    return found


def _unordered(
    view: EnvironmentView, step: str, first: CiJob, second: CiJob, found: Order
) -> Violation:
    """Why `second` can start without `first` having succeeded (the execution model's
    answer, `found`), at the line that says so."""
    required = f"step {step}: {second.name} must start only after {first.name} succeeded"
    hint = (
        f"add needs: [{first.name}] to {second.name}, and keep allow_failure false and when "
        "on_success on both"
    )
    waits = second.name in view.analysis.successors(first.name)
    if found.how is None:  # a limit of the prover was reached: not shown to be ordered
        loc = second.loc_of("needs")
        reason = "pdmpolicy could not decide the order within its limits"
    elif found.how == ORDER_MANUAL:
        loc = second.loc_of("needs")
        reason = (
            f"{first.name} waits for the manual job {found.via}: until someone plays it, "
            f"{first.name} shows as skipped and the jobs of later stages run, {second.name} "
            "among them"
        )
    elif found.how == ORDER_BEFORE:
        loc = second.loc
        reason = f"{first.name} waits for {second.name}, which therefore runs first"
    elif found.how == ORDER_ABSENT:
        loc = first.loc_of("rules")
        reason = f"rules can leave {first.name} out of the pipeline while {second.name} runs"
    elif waits and first.allow_failure and "allow_failure" in first.locs:
        loc = first.loc_of("allow_failure")
        reason = f"{first.name} has allow_failure: true, so {second.name} runs even after it failed"
        hint = f"remove allow_failure: true from {first.name}"
    elif waits and second.when in ("always", "on_failure") and "when" in second.locs:
        loc = second.loc_of("when")
        reason = f"{second.name} has when: {second.when}, so it runs even after {first.name} failed"
        hint = f"remove when: {second.when} from {second.name}"
    elif waits:
        loc = second.loc_of("needs")
        reason = (
            "a failure between them does not stop it (a job on the way allows failure or runs "
            "when: always/on_failure)"
        )
    else:
        loc = second.loc_of("needs")
        reason = "nothing makes it wait"
    return Violation(
        loc, f"{required}, but {reason}", view.name, second.name, hint, subject="order"
    )
