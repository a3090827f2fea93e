"""effects-known: every job's effect on PDMs is known, and declared effects hold."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.gitlab.analysis import JobEffect
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    has_something_to_prove,
)
from pdmpolicy.policies.examples import GSTG
from pdmpolicy.policyset.toolchain import Toolchain

_NOTIFY = """\
  gstg-announce:
    runner: generic
    needs: [gstg-kubernetes-post-deploy-migrations]
    script:
      - ./scripts/announce-deploy.sh "$CI_PIPELINE_URL"
"""

_MORE = 2
"""Reasons named in one finding besides the first (the rest are counted)."""


def _message(effect: JobEffect) -> str:
    reasons = effect.unknown_reasons()
    name = effect.job.name
    if effect.conditional:
        head = f"whether {name} runs PDMs is left to pipeline variables"
    else:
        head = f"cannot tell whether {name} runs PDMs"
    shown = [why for _, why in reasons[: 1 + _MORE]]
    rest = len(reasons) - len(shown)
    tail = f"; and {rest} more" if rest > 0 else ""
    return f"{head}: {'; '.join(shown)}{tail}"


def _hint(effect: JobEffect, in_environment: bool, toolchain: Toolchain) -> str:
    if effect.conditional:
        kubernetes = toolchain.kubernetes
        return (
            f"fix the value on the command line: {kubernetes.skip_variable}="
            f"{kubernetes.run_value} to run PDMs, any other value to skip them (for the VM "
            "tooling: its switch variables)"
        )
    declare = (
        "; or declare what the job does with `effect: none | dry-run | executor` (runner: generic)"
        if in_environment
        else ""
    )
    return (
        "call the tools directly (no eval, source, or command words from variables), list "
        "a harmless program under `toolchain: harmless` in the policy set, keep script "
        f"files in the repository{declare}; docs/effects.md"
    )


class EffectsKnown(Policy):
    name = "effects-known"
    layers = BOTH_LAYERS
    summary = "every job's effect on PDMs is known, and declared effects hold"
    documentation = Documentation(
        what="Every job of a PDM pipeline has an effect the analysis can see: an executor "
        "(Kubernetes, VM, Rails), a dry run, or none. A job is *unknown* when a command "
        "hides what it runs: a command word from a variable or a substitution, `eval`, "
        "`source`, a script file that is not in the repository or cannot be read, a "
        "helm/helmfile/kubectl call that can create the migrations Job, or a program "
        "neither in the toolchain nor known to be harmless. It is *conditional* when a "
        "k-ctl upgrade (or the VM tooling) leaves SKIP_POST_DEPLOYMENT_MIGRATIONS (its "
        "switch) to pipeline variables. Each such job is reported with the command that "
        "made it so. A `runner: generic` job may declare `effect: none | dry-run | "
        "executor`; a job declared `none` or `dry-run` that the analysis sees running PDMs "
        "is an error. Under `verify` the policy applies to pipelines that have a "
        "recognised executor or set a PDM variable; others have nothing to prove.",
        why="The safety policies (pdm-at-most-once and the others) prove their invariants "
        "over the executors the analysis recognises. A job that runs PDMs through a "
        "wrapper script or a program the analysis does not know would make that proof a "
        'proof about nothing, and "0 errors" a false assurance: a job whose effect is '
        "not known is never counted as harmless. A conditional k-ctl upgrade runs PDMs "
        'the day a pipeline or trigger variable says "false", outside every order the '
        "pipeline was proved for.",
        failing_example={"gstg.yml": GSTG + _NOTIFY},
        fix="Make the effect visible: call k-ctl, the VM tooling or Rails directly with "
        "the values that decide, keep script files in the repository (they are read "
        "with the same rules), add harmless programs to the toolchain, or declare the "
        "job's `effect:`.",
        fixed_example={"gstg.yml": GSTG + _NOTIFY + "    effect: none\n"},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            in_environment = view.environment is not None
            if not has_something_to_prove(view):
                continue  # `verify` on a pipeline without PDMs
            for effect in view.analysis.effects.values():
                job = effect.job
                contradiction = effect.contradiction
                if contradiction is not None:
                    strongest = effect.strongest
                    assert strongest is not None
                    yield Violation(
                        strongest.command.loc,
                        contradiction,
                        view.environment,
                        job.name,
                        hint="declare effect: executor (and let the safety policies check "
                        "it), or stop the script from running PDMs",
                        subject=f"{job.name}:declared",
                    )
                if not effect.is_unknown:
                    continue
                (loc, _), *_ = effect.unknown_reasons()
                yield Violation(
                    loc,
                    _message(effect),
                    view.environment,
                    job.name,
                    hint=_hint(effect, in_environment, view.analysis.toolchain),
                    subject=f"{job.name}:{'conditional' if effect.conditional else 'unknown'}",
                )
