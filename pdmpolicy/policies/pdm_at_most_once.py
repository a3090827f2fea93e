"""pdm-at-most-once: on every run of the pipeline, PDMs never run twice or concurrently."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.analysis import Analysis, JobEffect
from pdmpolicy.gitlab.pipeline import Unsupported
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    has_something_to_prove,
)
from pdmpolicy.policies.examples import GSTG, changed
from pdmpolicy.policyset.toolchain import Toolchain
from pdmpolicy.prover.model import AFTER_FAILURE, OVERLAP, RETRIED
from pdmpolicy.prover.prover import prove

# The Kubernetes executor made manual and left unordered: a person can play it while the
# VM executor runs, or after it failed.
_MANUAL_UNORDERED = changed(
    GSTG, "    needs: [gstg-vm-post-deploy-migrations]\n", "    when: manual\n    needs: []\n"
)


_HINTS = {
    RETRIED: "remove the retry (and any retry it inherits from default:); a person re-runs a "
    "failed PDM job",
    OVERLAP: "order the executors: the second needs the first, runs on_success, and the first "
    "has allow_failure: false",
    AFTER_FAILURE: "make the second executor start only on the first's success: needs, "
    "when: on_success, allow_failure: false on the first",
}


def _near_executors(analysis: Analysis) -> frozenset[str] | None:
    """The jobs whose settings can change whether, when or how often an executor runs:
    the executors, the jobs they wait for (directly or not) and the jobs that wait for
    them. None when the pipeline has no executor: then nothing unmodelled matters."""
    executors = [effect.job.name for effect in analysis.executors]
    if not executors:
        return None
    waits = analysis.direct_predecessors
    found = set(executors)
    frontier = list(executors)
    while frontier:  # everything the executors wait for
        for before in waits.get(frontier.pop(), ()):
            if before not in found:
                found.add(before)
                frontier.append(before)
    for name in executors:
        found.update(analysis.successors(name))
    return frozenset(found)


def _matters(unsupported: Unsupported, relevant: frozenset[str] | None) -> bool:
    """Whether an unmodelled construct can affect an executor: a pipeline-wide one
    (`workflow:rules:variables`, ...) whenever there is an executor, a job's own when that
    job (or one of its `parallel:` instances) is near one."""
    if relevant is None:
        return False
    job = unsupported.job
    if job is None:
        return True
    return any(name == job or name.startswith((f"{job} ", f"{job}: [")) for name in relevant)


def _pdm_words(toolchain: Toolchain) -> tuple[str, ...]:
    """What executors are recognised by, as text: the tools' program names and the PDM
    variables of the team's toolchain."""
    programs = (toolchain.kubernetes.command[-1], toolchain.vm.command[0])
    variables = (toolchain.kubernetes.skip_variable, *toolchain.vm.switches)
    return tuple(posixpath.basename(word) for word in programs) + variables


def _could_run_pdms(
    effect: JobEffect, relevant: frozenset[str] | None, toolchain: Toolchain
) -> bool:
    """Whether a script the shell reader could not read matters: the job is near an
    executor, or its text names what executors are recognised by (k-ctl, the VM tooling,
    the PDM variables). A script that names none of them is no executor under the
    analysis's own rules, readable or not (a PowerShell job, say)."""
    if relevant is not None and effect.job.name in relevant:
        return True
    texts = [line.text for line in effect.job.script]
    texts += [f"{v.name}={v.value}" for v in effect.effective_variables.values()]
    words = _pdm_words(toolchain)
    return any(word in text for text in texts for word in words)


class PdmAtMostOnce(Policy):
    name = "pdm-at-most-once"
    layers = BOTH_LAYERS
    summary = (
        "on every execution of the pipeline, no two PDM executor attempts overlap, and no "
        "executor attempt starts after an executor attempt failed"
    )
    documentation = Documentation(
        what="Proves, over every way GitLab can run the pipeline (any job failing, automatic "
        "retries, manual jobs played at any moment or never, `rules:` outcomes, `needs` and "
        "stage order), that no two attempts of jobs executing PDMs run at the same time and "
        "that no executor attempt starts after an executor attempt failed. A second "
        "executor that starts only after the first succeeded is a no-op and allowed. Each "
        "violation comes with the shortest sequence of job events that produces it and the "
        "line of the setting that allows it. `pdmpolicy verify` runs the same proof on any "
        "GitLab CI file. The rules of the execution model are in docs/execution-model.md.",
        why="Rails guards one `db:migrate` with an advisory lock, so a concurrent second run "
        "fails (ConcurrentMigrationError) and leaves a half-finished migration to untangle; "
        "a run after a failed one continues from a state nobody examined. PDMs cannot be "
        "undone. Reading YAML keys one at a time misses the combinations: a manual job "
        "played late, an `allow_failure` that lets the next executor start after a failure, "
        "a retry inherited from `default:`.",
        failing_example={"gstg.yml": _MANUAL_UNORDERED},
        fix="Order the executors: the second `needs` the first, neither has `retry`, "
        "`allow_failure` stays false, and the second runs `on_success` (or is a manual job "
        "that `needs` the first).",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            pipeline = view.pipeline
            if not has_something_to_prove(view):
                # `verify` on a pipeline with no executor and no PDM variable: nothing to
                # prove, and what the loader could not model cannot matter here.
                continue
            relevant = _near_executors(view.analysis)
            for unsupported in pipeline.unsupported:
                if not _matters(unsupported, relevant):
                    continue
                yield Violation(
                    unsupported.loc,
                    f"cannot prove PDMs run at most once: {unsupported.what} is not modelled",
                    view.environment,
                    hint="remove the construct, or check this pipeline by hand",
                    subject=f"unsupported:{unsupported.what}",
                )
            for effect in view.analysis.effects.values():
                if not _could_run_pdms(effect, relevant, context.toolchain):
                    continue
                for loc, problem in effect.unparsable:
                    yield Violation(
                        loc,
                        f"cannot tell what {effect.job.name} runs: {problem}",
                        view.environment,
                        effect.job.name,
                        hint="write the script so a POSIX shell can read it",
                        subject=f"unparsable:{effect.job.name}",
                    )
            # Over the executors this view's analysis found (its toolchain, its declared
            # effects); unknown jobs are `effects-known`'s to report, never counted harmless.
            proof = prove(pipeline, executors=[e.job.name for e in view.analysis.executors])
            for example in proof.violations:
                yield Violation(
                    example.loc,
                    f"{example.message}: {example.summary()}",
                    view.environment,
                    example.breach.starter,
                    hint=_HINTS.get(example.breach.kind, _HINTS[OVERLAP]),
                    subject=f"{example.breach.kind}:{example.breach.starter}:"
                    f"{example.breach.other}",
                )
            if not proof.complete:
                yield Violation(
                    pipeline.jobs[0].loc if pipeline.jobs else Loc(pipeline.path),
                    "the proof is incomplete: " + "; ".join(proof.notes or ("a limit was hit",)),
                    view.environment,
                    hint="simplify the rules: of the pipeline",
                    subject="incomplete",
                )
