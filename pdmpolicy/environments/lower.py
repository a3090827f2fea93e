"""Lowering: an environment as declared -> the GitLab CI pipeline that will run it.

This is where the safe defaults are made explicit (docs/model.md): retry 0, interruptible false,
allow_failure false (even for manual jobs, whose GitLab default is true), a resource group
keyed by the database, and no inherited `default:` or top-level variables for jobs that
execute PDMs. k-ctl and the VM tooling are called through
`env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG`, since trigger variables beat anything in YAML.

How the tools are called comes from the toolchain (docs/toolchain.md): the Kubernetes
executor's command and flags, how it waits for the migrations Job (an input variable, or a
command such as `kubectl wait` run after it in the same job), the VM tooling's command. Every
word is shell-quoted.

Policies check the lowered pipeline, so what is checked is exactly what is rendered; each
value keeps the location in the environment file that it came from.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from types import MappingProxyType

from pdmpolicy.core import names
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.model import Environment, Job
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import (
    Artifacts,
    Choice,
    CiJob,
    Need,
    Pipeline,
    Rule,
    RuleCase,
    ScriptLine,
    Trigger,
    Variable,
)
from pdmpolicy.policyset.toolchain import DEFAULT, Toolchain

PIPELINE_STAGES = (".pre", "build", "test", "deploy", ".post")
CHILD_DIRECTORY = "ci/environments"
PARENT_PATH = "ci/postdeploy-migrations.yml"
RESOURCE_GROUP = "{database}-postdeploy-migrations"
"""The default cross-pipeline lock: one per database, whatever the environment."""


DRY_RUN_DIRECTORY = "dry-run"
"""Where a dry-run job saves what k-ctl printed: `dry-run/<job>.yaml`, kept as an artifact so
that `pdmpolicy manifests` can check the migrations Job it shows (docs/manifests.md)."""
DRY_RUN_EXPIRE_IN = "30 days"


def dry_run_path(job: str) -> str:
    return f"{DRY_RUN_DIRECTORY}/{job}.yaml"


def _saves_dry_run(job: Job) -> bool:
    """A k-ctl job that only shows what it would apply (`-D`, or `template`)."""
    return job.kctl is not None and (job.kctl.dry_run or job.kctl.action == "template")


def child_path(environment: str) -> str:
    return f"{CHILD_DIRECTORY}/{environment}-postdeploy-migrations.yml"


def strip_prefix() -> list[str]:
    """`env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG`: removes trigger variables for one process."""
    words = ["env"]
    for name in names.AUTO_DEPLOY_VARIABLES:
        words += ["-u", name]
    return words


def _values(environment: Environment, job: Job, toolchain: Toolchain) -> dict[str, str]:
    """What the toolchain's `{placeholders}` stand for in this job."""
    seconds = names.parse_duration(job.timeout) if job.timeout else None
    return {
        "database": environment.database,
        "environment": environment.name,
        "stage": job.kctl.stage if job.kctl is not None else "main",
        "timeout": str(seconds or toolchain.kubernetes.wait.default_timeout),
    }


def _command_line(
    environment: Environment, job: Job, toolchain: Toolchain
) -> tuple[ScriptLine, ...]:
    if job.runner == "generic":
        assert job.script is not None  # the schema requires it
        return tuple(ScriptLine(text, loc) for text, loc in job.script)
    values = _values(environment, job, toolchain)
    words = strip_prefix()
    if job.runner == "vm":
        words += toolchain.vm.call_words(values)
        return (ScriptLine(shlex.join(words), job.loc),)
    kctl = job.kctl
    assert kctl is not None  # the schema requires it
    kubernetes = toolchain.kubernetes
    wait = kubernetes.wait
    words += [f"{name}={value}" for name, value, _ in kctl.variables]
    if kctl.wait_for_jobs and wait.style == "input":
        words.append(wait.assignment())
    words += kubernetes.call_words(kctl.environment, kctl.stage, kctl.dry_run, kctl.action, values)
    if not _saves_dry_run(job):
        lines = [ScriptLine(shlex.join(words), kctl.loc)]
        applies = kctl.action in kubernetes.apply_actions and not kctl.dry_run
        if kctl.wait_for_jobs and wait.style == "command" and applies:
            # A line of its own: the job's shell stops at the first line that fails, so a
            # wait that fails or times out fails the job, and nothing after it starts.
            lines.append(ScriptLine(shlex.join(wait.step(values)), kctl.loc_of("wait_for_jobs")))
        return tuple(lines)
    # Redirected, then shown: a pipe into tee would hide k-ctl's exit status from sh, which
    # has no pipefail everywhere. Only standard output is saved; k-ctl's log goes to the job log.
    saved = shlex.quote(dry_run_path(job.name))
    return (
        ScriptLine(f"mkdir -p {DRY_RUN_DIRECTORY}", kctl.loc),
        ScriptLine(f"{shlex.join(words)} > {saved}", kctl.loc),
        ScriptLine(f"cat {saved}", kctl.loc),
    )


def _ci_job(environment: Environment, job: Job, toolchain: Toolchain) -> CiJob:
    locs = dict(job.locs)
    if job.kctl is not None:
        # Findings about the k-ctl command line land on the key of the environment file
        # that wrote that part of it.
        locs["script"] = job.kctl.loc
        locs["script:environment"] = job.kctl.loc_of("environment")
        locs["script:wait_for_jobs"] = job.kctl.loc_of("wait_for_jobs")
        for name, _, loc in job.kctl.variables:
            locs[f"script:{name}"] = loc
    return CiJob(
        name=job.name,
        stage=job.stage or names.DEFAULT_STAGE,
        needs=(
            tuple(Need(n, False, job.loc_of("needs")) for n in job.needs)
            if job.needs is not None
            else None
        ),
        when=job.when or "on_success",
        allow_failure=bool(job.allow_failure),
        retry=job.retry or 0,
        interruptible=bool(job.interruptible),
        resource_group=job.resource_group or RESOURCE_GROUP.format(database=environment.database),
        timeout=job.timeout,
        variables=tuple(Variable(n, v, loc) for n, v, loc in job.variables),
        inherit_default=False,
        inherit_variables=True if job.inherit_variables is None else job.inherit_variables,
        script=_command_line(environment, job, toolchain),
        trigger=None,
        rules=(),
        loc=job.loc,
        locs=MappingProxyType(locs),
        declared_effect=job.effect,
        artifacts=(
            Artifacts((dry_run_path(job.name),), when="always", expire_in=DRY_RUN_EXPIRE_IN)
            if _saves_dry_run(job)
            else None
        ),
    )


def lower(environment: Environment, toolchain: Toolchain = DEFAULT) -> Pipeline:
    """The child pipeline of one environment, with its safe defaults, calling the tools as
    `toolchain` says."""
    pipeline = Pipeline(
        path=child_path(environment.name),
        source=environment.path,
        stages=PIPELINE_STAGES,
        variables=tuple(Variable(n, v, loc) for n, v, loc in environment.variables),
        jobs=tuple(_ci_job(environment, job, toolchain) for job in environment.jobs),
    )
    # A job is a PDM job if it would execute PDMs when it inherited everything, and may be
    # one when its effect is unknown (a conditional k-ctl upgrade, a wrapper script): those
    # get no top-level variables unless the file names the ones they may have, so nothing
    # set at the top level (AUTO_DEPLOY, a skip switch) reaches what could run PDMs.
    provisional = analyse(pipeline, toolchain)
    jobs = []
    for ci_job, job in zip(pipeline.jobs, environment.jobs, strict=True):
        effect = provisional.effect(ci_job.name)
        if (effect.is_executor or effect.is_unknown) and job.inherit_variables is None:
            ci_job = replace(ci_job, inherit_variables=False)
        jobs.append(ci_job)
    # The order depends on needs and stages only, which the change above leaves alone: the
    # provisional analysis gives it without analysing every script a second time.
    order = {name: i for i, name in enumerate(provisional.execution_order())}
    jobs.sort(key=lambda j: order[j.name])
    return replace(pipeline, jobs=tuple(jobs))


def parent(environments: list[Environment]) -> Pipeline:
    """The parent pipeline: one trigger job per environment, chosen by $DEPLOY_ENVIRONMENT."""
    jobs = []
    for environment in sorted(environments, key=lambda e: e.name):
        loc = Loc(environment.path)
        condition = f'$DEPLOY_ENVIRONMENT == "{environment.name}"'
        jobs.append(
            CiJob(
                name=f"{environment.name}-postdeploy-migrations",
                stage=names.DEFAULT_STAGE,
                needs=None,
                when="on_success",
                allow_failure=False,
                retry=0,
                interruptible=False,
                resource_group=None,
                timeout=None,
                variables=(),
                # The parent has no `default:` and no variables: nothing to inherit, and the
                # rendered trigger job says nothing about it (GitLab's default: true).
                inherit_default=True,
                inherit_variables=True,
                script=(),
                trigger=Trigger(
                    include=child_path(environment.name),
                    strategy="depend",
                    forward_yaml_variables=False,
                    forward_pipeline_variables=False,
                ),
                rules=(Rule(condition),),
                loc=loc,
                locs=MappingProxyType({}),
                # The rule either matches (the job runs) or not (it is not in the pipeline).
                choices=(Choice("on_success", False, loc), Choice("never", False, loc)),
                rule_cases=(RuleCase(condition, other=False, choice=0),),
            )
        )
    return Pipeline(
        path=PARENT_PATH,
        source="environments/",
        stages=PIPELINE_STAGES,
        variables=(),
        jobs=tuple(jobs),
    )
