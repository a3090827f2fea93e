"""The policy engine: run every enabled policy, stamp severity, apply waivers.

Policies are pure; this is where their output becomes findings. A policy that raises is a
bug in pdmpolicy: it becomes an error-level finding that says so, whatever the policy's
configured severity and waivers (never a silent pass), and the traceback goes to stderr.
"""

from __future__ import annotations

import datetime as dt
import sys
import traceback
from typing import TYPE_CHECKING

from pdmpolicy.core.errors import InputError, Problem
from pdmpolicy.core.findings import Finding
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.project import Project
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import (
    Context,
    EnvironmentView,
    PipelineView,
    Policy,
    Violation,
    Waiver,
    pipeline_view,
)
from pdmpolicy.policies.plugins import BUILTIN
from pdmpolicy.policyset.config import PolicySet, Setting

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import ManifestFile

UNWAIVABLE = frozenset({"waiver-valid"})


def _waiver_for(
    violation: Violation, policy: str, waivers: tuple[Waiver, ...], today: dt.date
) -> Waiver | None:
    if policy in UNWAIVABLE:
        return None
    for waiver in waivers:
        if waiver.lifts(policy, violation.environment, violation.job, today):
            return waiver
    return None


INTERNAL_ERROR = "internal-error"
"""The subject of the finding a crashed policy becomes: always an error, never waived."""


def _crash_loc(context: Context) -> Loc:
    if context.manifests:  # before environments: those are only the manifests' context
        return Loc(context.manifests[0].path)
    if context.environments:
        return Loc(context.environments[0].environment.path)
    if context.pipelines:
        return Loc(context.pipelines[0].pipeline.path)
    return Loc(".")


def run_policy(policy: Policy, context: Context) -> list[Violation]:
    """The policy's violations; a crash becomes one violation that reports the bug."""
    try:
        return list(policy.check(context))
    except Exception as exc:  # a policy bug must surface, never pass
        traceback.print_exc(file=sys.stderr)
        origin = REGISTRY.origin(policy.name) if policy.name in REGISTRY else BUILTIN
        # A plugin's crash is its authors' bug: say whose, so the report reaches them.
        owner = "pdmpolicy" if origin == BUILTIN else origin
        return [
            Violation(
                _crash_loc(context),
                f"internal error: policy {policy.name} crashed ({type(exc).__name__}: {exc}); "
                f"this is a bug in {owner}, please report it with the input",
                subject=INTERNAL_ERROR,
            )
        ]


def _unknown_scopes(project: Project) -> list[Problem]:
    """Scopes naming environments that do not exist: a typo would silently turn a policy off."""
    known = {view.name for view in project.views}
    problems = []
    for name, setting in sorted(project.policy_set.settings.items()):
        for environment in setting.environments or ():
            if environment not in known:
                problems.append(
                    Problem(
                        setting.locs.get("environments", setting.loc or Loc(".")),
                        f"policy '{name}' is scoped to environment '{environment}', which does "
                        "not exist",
                        "known: " + ", ".join(sorted(known)),
                    )
                )
    return problems


def _stamp(
    name: str,
    violations: list[Violation],
    setting: Setting,
    policy_set: PolicySet,
    today: dt.date,
) -> list[Finding]:
    """Violations -> findings: severity from the setting, waivers applied, scope enforced."""
    findings = []
    for violation in violations:
        if violation.environment is not None and not setting.in_scope(violation.environment):
            continue
        crashed = violation.subject == INTERNAL_ERROR
        waiver = None if crashed else _waiver_for(violation, name, policy_set.waivers, today)
        findings.append(
            Finding(
                policy=name,
                severity="error" if crashed else setting.severity,
                message=violation.message,
                loc=violation.loc,
                environment=violation.environment,
                job=violation.job,
                hint=violation.hint,
                waived=waiver is not None,
                subject=violation.subject,
            )
        )
    return findings


def evaluate(
    project: Project, today: dt.date, base: tuple[EnvironmentView, ...] | None = None
) -> list[Finding]:
    """Every finding of every enabled policy on the project, sorted for stable output.

    `base` holds the environments at `--base REF`; policies that need one are skipped
    without it.
    """
    problems = _unknown_scopes(project)
    if problems:
        raise InputError(problems)
    findings: list[Finding] = []
    settings = project.policy_set.settings
    for name in sorted(REGISTRY):
        policy = REGISTRY[name]
        setting = settings[name]
        if (
            setting.severity == "off"
            or "environments" not in policy.layers
            or (policy.needs_base and base is None)
        ):
            continue
        in_scope = tuple(v for v in project.views if setting.in_scope(v.name))
        context = Context(
            environments=in_scope,
            all_environments=project.views,
            options=setting.options,
            today=today,
            waivers=project.policy_set.waivers,
            policy_names=frozenset(REGISTRY),
            base=base,
            pipelines=tuple(pipeline_view(v) for v in in_scope),
            toolchain=project.policy_set.toolchain,
        )
        violations = run_policy(policy, context)
        findings += _stamp(name, violations, setting, project.policy_set, today)
    return sorted(findings, key=Finding.sort_key)


def evaluate_pipelines(
    views: tuple[PipelineView, ...], policy_set: PolicySet, today: dt.date
) -> list[Finding]:
    """The policies that apply to any GitLab CI file (`layers` has "pipelines"), on loaded
    pipelines: `verify`. Scopes name environments, which loaded files do not have, so
    every enabled policy applies to every file."""
    findings: list[Finding] = []
    for name in sorted(REGISTRY):
        policy = REGISTRY[name]
        setting = policy_set.settings[name]
        if setting.severity == "off" or "pipelines" not in policy.layers:
            continue
        context = Context(
            environments=(),
            all_environments=(),
            options=setting.options,
            today=today,
            waivers=(),
            policy_names=frozenset(REGISTRY),
            pipelines=views,
            toolchain=policy_set.toolchain,
        )
        findings += _stamp(name, run_policy(policy, context), setting, policy_set, today)
    return sorted(findings, key=Finding.sort_key)


def evaluate_manifests(
    manifests: tuple[ManifestFile, ...], project: Project, today: dt.date
) -> list[Finding]:
    """The policies of rendered Kubernetes manifests (`layers` has "manifests"), on the
    files given to `pdmpolicy manifests`. Each file belongs to an environment of the
    project, so scopes and waivers apply as under `check`."""
    problems = _unknown_scopes(project)
    if problems:
        raise InputError(problems)
    findings: list[Finding] = []
    for name in sorted(REGISTRY):
        policy = REGISTRY[name]
        setting = project.policy_set.settings[name]
        if setting.severity == "off" or "manifests" not in policy.layers:
            continue
        context = Context(
            environments=tuple(v for v in project.views if setting.in_scope(v.name)),
            all_environments=project.views,
            options=setting.options,
            today=today,
            waivers=project.policy_set.waivers,
            policy_names=frozenset(REGISTRY),
            manifests=manifests,
            toolchain=project.policy_set.toolchain,
        )
        violations = run_policy(policy, context)
        findings += _stamp(name, violations, setting, project.policy_set, today)
    return sorted(findings, key=Finding.sort_key)
