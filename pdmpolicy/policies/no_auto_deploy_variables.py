"""no-auto-deploy-variables: AUTO_DEPLOY and GITLAB_IMAGE_TAG never reach a PDM k-ctl."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.core import names
from pdmpolicy.policies.base import (
    BOTH_LAYERS,
    Context,
    Documentation,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, changed


class NoAutoDeployVariables(Policy):
    name = "no-auto-deploy-variables"
    layers = BOTH_LAYERS
    summary = "AUTO_DEPLOY and GITLAB_IMAGE_TAG cannot reach a PDM executor's k-ctl process"
    documentation = Documentation(
        what="For every job that executes PDMs: neither `AUTO_DEPLOY` nor `GITLAB_IMAGE_TAG` "
        "is set in the job's variables, inherited from the top-level variables, or set on "
        "the k-ctl command line; and every k-ctl call removes both from its environment "
        "(`env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG k-ctl ...` or `unset`).",
        why="With `AUTO_DEPLOY=true` k-ctl limits the apply to the auto-deploy release and its "
        "image check rejects the migrations Job; with `GITLAB_IMAGE_TAG` set, an image "
        "change rides along with an irreversible PDM run. Variables passed by a trigger or "
        "the API beat anything written in YAML and YAML cannot unset a variable, so only "
        "the script itself can keep them away from k-ctl.",
        failing_example={
            "gstg.yml": changed(
                GSTG,
                "  DEPLOY_ENVIRONMENT: gstg\n",
                '  DEPLOY_ENVIRONMENT: gstg\n  AUTO_DEPLOY: "true"\n',
            ).replace(
                "    timeout: 10h\n  gstg-kubernetes",
                "    timeout: 10h\n    inherit_variables: true\n  gstg-kubernetes",
            )
        },
        fix="Keep auto-deploy variables out of PDM jobs: remove them from the job's variables "
        "and do not let PDM jobs inherit them (leave `inherit_variables` unset, or list "
        "only the variables they need). pdmpolicy renders every k-ctl call with "
        "`env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG`; a `generic` script must do the same.",
        fixed_example={"gstg.yml": GSTG},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        for view in context.pipelines:
            pipeline = view.pipeline
            for effect in executors(view):
                job = effect.job
                for variable in job.variables:
                    if variable.name in names.AUTO_DEPLOY_VARIABLES:
                        yield Violation(
                            variable.loc,
                            f"PDM job {job.name} sets {variable.name}",
                            view.environment,
                            job.name,
                            hint="remove it: PDM runs must not carry auto-deploy settings",
                            subject=f"{job.name}:set:{variable.name}",
                        )
                own = {v.name for v in job.variables}
                for variable in pipeline.inherited_variables(job):
                    if variable.name in names.AUTO_DEPLOY_VARIABLES and variable.name not in own:
                        yield Violation(
                            variable.loc,
                            f"PDM job {job.name} inherits {variable.name} from the top-level "
                            "variables",
                            view.environment,
                            job.name,
                            hint="stop the inheritance (inherit_variables: false, or list the "
                            "variables the job needs)",
                            subject=f"{job.name}:inherited:{variable.name}",
                        )
                for call in effect.kctl_calls:
                    command = call.command
                    for name in names.AUTO_DEPLOY_VARIABLES:
                        if name in command.assigned:
                            yield Violation(
                                job.loc_of(f"script:{name}")
                                if f"script:{name}" in job.locs
                                else command.loc,
                                f"k-ctl in PDM job {job.name} is given {name}="
                                f"{command.assigned[name]!r} on its command line",
                                view.environment,
                                job.name,
                                hint="remove it from the k-ctl variables",
                                subject=f"{job.name}:command:{name}",
                            )
                        elif name not in command.stripped and not command.clean_environment:
                            yield Violation(
                                command.loc,
                                f"k-ctl in PDM job {job.name} does not remove {name}: a "
                                "trigger or pipeline variable would reach it",
                                view.environment,
                                job.name,
                                hint="call it as `env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG "
                                "k-ctl ...` (or `unset` both first)",
                                subject=f"{job.name}:not-stripped:{name}",
                            )
