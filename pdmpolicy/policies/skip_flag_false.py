"""skip-flag-false: Kubernetes executors pass SKIP_POST_DEPLOYMENT_MIGRATIONS="false"."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.core import names
from pdmpolicy.gitlab.analysis import KUBERNETES, JobEffect, KctlCall
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    PipelineView,
    Policy,
    Violation,
    has_something_to_prove,
)
from pdmpolicy.policies.examples import GSTG, changed

_SKIP = names.SKIP_VARIABLE


class SkipFlagFalse(Policy):
    name = "skip-flag-false"
    layers = BOTH_LAYERS
    summary = f'Kubernetes executors pass {_SKIP} exactly as "false" to k-ctl'
    documentation = Documentation(
        what=f"Every k-ctl call that upgrades for real is given `{_SKIP}` exactly as the "
        "string `false`, on its own command line (in `kctl.variables`), not through job "
        "variables.",
        why="k-ctl creates the migrations Job only when told `false`; anything else ("
        'missing, `0`, `""`, `no`) means the PDMs are silently skipped while the pipeline '
        "reports success. In Rails the variable works by presence, so the literal must be "
        "exactly the one k-ctl understands. A value in job `variables:` can be overridden "
        "by a trigger variable; a value on the command line cannot.",
        failing_example={
            "gstg.yml": changed(
                GSTG,
                'SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"',
                'SKIP_POST_DEPLOYMENT_MIGRATIONS: "0"',
            )
        },
        fix=f'Set `{_SKIP}: "false"` (quoted) under the job\'s `kctl.variables`.',
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            for effect in view.analysis.effects.values():
                job = effect.job
                for call in _checked_calls(view, effect):
                    command = call.command
                    value = command.assigned.get(_SKIP)
                    loc = job.locs.get(f"script:{_SKIP}", command.loc)
                    if value == "false":
                        continue
                    if value is not None:
                        yield Violation(
                            loc,
                            f'k-ctl in {job.name} is given {_SKIP}={value!r}; only "false" '
                            "makes it run the PDMs, anything else silently skips them",
                            view.environment,
                            job.name,
                            hint=f'set {_SKIP}: "false"',
                            subject=f"{job.name}:value",
                        )
                    elif _SKIP in effect.effective_variables:
                        variable = effect.effective_variables[_SKIP]
                        yield Violation(
                            variable.loc,
                            f"{_SKIP} reaches k-ctl in {job.name} only through job variables, "
                            "where a trigger variable can override it",
                            view.environment,
                            job.name,
                            hint="move it under kctl.variables so it is set on the k-ctl "
                            "command line",
                            subject=f"{job.name}:job-variable",
                        )
                    else:
                        yield Violation(
                            loc,
                            f'k-ctl in {job.name} upgrades without {_SKIP}="false": the '
                            "PDMs would be silently skipped",
                            view.environment,
                            job.name,
                            hint=f'add {_SKIP}: "false" under kctl.variables',
                            subject=f"{job.name}:missing",
                        )


def _checked_calls(view: PipelineView, effect: JobEffect) -> tuple[KctlCall, ...]:
    """The k-ctl calls whose skip value must be "false".

    An environment file describes a PDM pipeline: every k-ctl call there that applies for
    real is meant to run the PDMs, and one that would skip them is the silent failure this
    policy exists for. A loaded pipeline (`verify`) also holds deploys that rightly skip
    them (auto-deploy jobs): there only the executors are checked; a k-ctl call that leaves
    the value to pipeline variables is `effects-known`'s.
    """
    if view.environment is not None:
        return tuple(call for call in effect.kctl_calls if call.runs_for_real)
    if effect.kind != KUBERNETES or not has_something_to_prove(view):
        return ()
    return effect.executor_calls
