"""The policy engine: run every enabled policy, stamp severity, apply waivers.

Policies are pure; this is where their output becomes findings. A policy that raises is a
bug in pdmpolicy: it becomes an error-level finding that says so (never a silent pass), and
the traceback goes to stderr.
"""

from __future__ import annotations

import datetime as dt
import sys
import traceback

from pdmpolicy.findings import Finding
from pdmpolicy.location import Loc
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import Context, Policy, Violation, Waiver
from pdmpolicy.project import Project

UNWAIVABLE = frozenset({"waiver-valid"})


def _waiver_for(
    violation: Violation, policy: str, waivers: tuple[Waiver, ...], today: dt.date
) -> Waiver | None:
    if policy in UNWAIVABLE:
        return None
    for waiver in waivers:
        if (
            waiver.complete()
            and not waiver.expired(today)
            and waiver.policy == policy
            and waiver.environment == violation.environment
            and (waiver.job is None or waiver.job == violation.job)
        ):
            return waiver
    return None


def run_policy(policy: Policy, context: Context) -> list[Violation]:
    """The policy's violations; a crash becomes one violation that reports the bug."""
    try:
        return list(policy.check(context))
    except Exception as exc:  # a policy bug must surface, never pass
        traceback.print_exc(file=sys.stderr)
        return [
            Violation(
                Loc(context.environments[0].environment.path if context.environments else "."),
                f"internal error: policy {policy.name} crashed ({type(exc).__name__}: {exc}); "
                "this is a bug in pdmpolicy, please report it with the input",
                subject="internal-error",
            )
        ]


def evaluate(project: Project, today: dt.date) -> list[Finding]:
    """Every finding of every enabled policy on the project, sorted for stable output."""
    findings: list[Finding] = []
    settings = project.policy_set.settings
    for name in sorted(REGISTRY):
        policy = REGISTRY[name]
        setting = settings[name]
        if setting.severity == "off":
            continue
        in_scope = tuple(v for v in project.views if setting.in_scope(v.name))
        context = Context(
            environments=in_scope,
            all_environments=project.views,
            options=setting.options,
            today=today,
            waivers=project.policy_set.waivers,
            policy_names=frozenset(REGISTRY),
        )
        for violation in run_policy(policy, context):
            if violation.environment is not None and not setting.in_scope(violation.environment):
                continue
            waiver = _waiver_for(violation, name, project.policy_set.waivers, today)
            findings.append(
                Finding(
                    policy=name,
                    severity=setting.severity,
                    message=violation.message,
                    loc=violation.loc,
                    environment=violation.environment,
                    job=violation.job,
                    hint=violation.hint,
                    waived=waiver is not None,
                    subject=violation.subject,
                )
            )
    return sorted(findings, key=Finding.sort_key)
