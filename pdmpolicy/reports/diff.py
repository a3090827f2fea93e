"""The behavioural diff of a change: what it does to each environment, in reviewer's words.

Compares the environments at `--base` with the working tree: rollout step, executors added,
removed or reordered, k-ctl command lines, variables, jobs, and which policies newly fail or
newly pass. Shown in the merge-request note.
"""

from __future__ import annotations

import shlex

from pdmpolicy.core.findings import Finding
from pdmpolicy.policies.base import EnvironmentView, executors
from pdmpolicy.reports.markdown import cell


def _executors(view: EnvironmentView) -> list[str]:
    return [f"{e.job.name} ({e.kind})" for e in executors(view)]


def _kctl_lines(view: EnvironmentView) -> dict[str, str]:
    lines = {}
    for name, effect in sorted(view.analysis.effects.items()):
        for call in effect.kctl_calls:
            words = [f"{k}={v}" for k, v in sorted(call.command.assigned.items())]
            words += ["k-ctl", *call.command.args]
            lines[name] = shlex.join(words)
    return lines


def _variables(view: EnvironmentView) -> dict[str, str]:
    found = {f"top-level {v.name}": v.value for v in view.pipeline.variables}
    for job in view.pipeline.jobs:
        found.update({f"{job.name} {v.name}": v.value for v in job.variables})
    return found


def _failing(findings: list[Finding], environment: str) -> set[str]:
    return {
        f.policy
        for f in findings
        if f.environment == environment and f.severity == "error" and not f.waived
    }


def _changes(
    old: EnvironmentView,
    new: EnvironmentView,
    old_findings: list[Finding],
    new_findings: list[Finding],
) -> list[str]:
    changes = []
    a, b = old.environment, new.environment
    if a.step != b.step:
        direction = "forward" if b.step_index > a.step_index else "back"
        changes.append(
            f"rollout step **{a.step} → {b.step}** ({direction}), since {b.since.isoformat()}"
        )
    elif a.since != b.since:
        changes.append(f"since {a.since.isoformat()} → {b.since.isoformat()} (step unchanged)")
    before, after = _executors(old), _executors(new)
    added = [e for e in after if e not in before]
    removed = [e for e in before if e not in after]
    if added:
        changes.append("executors added: " + ", ".join(added))
    if removed:
        changes.append("executors removed: " + ", ".join(removed))
    kept_before = [e for e in before if e in after]
    kept_after = [e for e in after if e in before]
    if kept_before != kept_after:
        changes.append(
            "executors reordered: " + " → ".join(kept_before) + " became " + " → ".join(kept_after)
        )
    old_jobs = {j.name for j in old.pipeline.jobs}
    new_jobs = {j.name for j in new.pipeline.jobs}
    executor_names = {e.split(" ")[0] for e in before + after}
    for name in sorted(new_jobs - old_jobs - executor_names):
        changes.append(f"job added: {name} ({new.analysis.effect(name).describe()})")
    for name in sorted(old_jobs - new_jobs - executor_names):
        changes.append(f"job removed: {name}")
    old_kctl, new_kctl = _kctl_lines(old), _kctl_lines(new)
    for name in sorted(set(old_kctl) & set(new_kctl)):
        if old_kctl[name] != new_kctl[name]:
            changes.append(f"{name}: `{old_kctl[name]}` → `{new_kctl[name]}`")
    old_vars, new_vars = _variables(old), _variables(new)
    for key in sorted(set(old_vars) | set(new_vars)):
        if key not in new_vars:
            changes.append(f"variable removed: {key}")
        elif key not in old_vars:
            changes.append(f"variable added: {key} = {new_vars[key]!r}")
        elif old_vars[key] != new_vars[key]:
            changes.append(f"variable {key}: {old_vars[key]!r} → {new_vars[key]!r}")
    was, now = _failing(old_findings, a.name), _failing(new_findings, b.name)
    if now - was:
        changes.append("**newly failing:** " + ", ".join(sorted(now - was)))
    if was - now:
        changes.append("newly passing: " + ", ".join(sorted(was - now)))
    return changes


def behaviour_diff(
    base: tuple[EnvironmentView, ...],
    views: tuple[EnvironmentView, ...],
    base_findings: list[Finding],
    findings: list[Finding],
    ref: str,
) -> str:
    """A Markdown section: one bullet list per environment that the change affects."""
    old = {v.name: v for v in base}
    new = {v.name: v for v in views}
    lines = [f"#### What this change does (against `{cell(ref)}`)", ""]
    touched = False
    for name in sorted(set(old) | set(new)):
        if name not in old:
            env = new[name].environment
            lines.append(
                f"- **{cell(name)}**: new environment at {env.step} (database {cell(env.database)})"
            )
            touched = True
            continue
        if name not in new:
            lines.append(f"- **{cell(name)}**: environment removed")
            touched = True
            continue
        changes = _changes(old[name], new[name], base_findings, findings)
        if changes:
            touched = True
            lines.append(f"- **{cell(name)}**:")
            lines += [f"  - {change}" for change in changes]
    if not touched:
        lines.append("No environment changes behaviour.")
    return "\n".join(lines) + "\n"
