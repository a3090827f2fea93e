"""rollout-step-shape: the job graph is the one the declared rollout step requires."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.analysis import KUBERNETES, VM
from pdmpolicy.policies.base import Context, Documentation, Policy, Violation, executors
from pdmpolicy.policies.examples import GSTG, changed

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
        "only after the VM executor succeeded; `kubernetes-first` the reverse.",
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
        for view in context.environments:
            env = view.environment
            step = env.step
            found = list(executors(view))
            vms = [e for e in found if e.kind == VM]
            kubes = [e for e in found if e.kind == KUBERNETES]
            want_vm, want_kube, want_dry = _SHAPES[step]
            loc = env.loc_of("step")
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
                if not view.analysis.ordered_after_success(first.job.name, second.job.name):
                    yield Violation(
                        second.job.loc_of("needs"),
                        f"step {step}: {second.job.name} must start only after "
                        f"{first.job.name} succeeded, but nothing makes it wait",
                        environment=env.name,
                        job=second.job.name,
                        hint=f"add needs: [{first.job.name}] to {second.job.name}, and keep "
                        "allow_failure false and when on_success on both",
                        subject="order",
                    )
