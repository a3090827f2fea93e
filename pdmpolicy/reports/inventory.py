"""The inventory: what `check` and `verify` found in each pipeline, so "0 errors" can never
mean "nothing recognised".

Per pipeline: its executors in execution order (with their kind), the dry runs, the jobs
whose effect is unknown (conditional ones marked) and the jobs whose shown effect is their
declaration. A pipeline with neither an executor nor a PDM variable has nothing to prove
(`verify`). The same facts go to the text report, the JSON report (top-level key
`inventory`) and the Markdown note.
"""

from __future__ import annotations

from typing import Any

from pdmpolicy.core.errors import printable
from pdmpolicy.gitlab.analysis import JobEffect
from pdmpolicy.policies.base import PipelineView, has_something_to_prove
from pdmpolicy.reports.base import ReportInput

NOTHING_TO_PROVE = "no PDM executor found: nothing to prove"
NO_EXECUTOR = "no PDM executor found"


def _name(view: PipelineView) -> str:
    path = view.pipeline.path
    return f"{view.environment} ({path})" if view.environment else path


def _in_order(view: PipelineView, keep: Any) -> list[JobEffect]:
    analysis = view.analysis
    return [analysis.effect(n) for n in analysis.execution_order() if keep(analysis.effect(n))]


def _declared(effect: JobEffect) -> str:
    return " (declared)" if effect.is_declared else ""


def _executors(view: PipelineView) -> list[JobEffect]:
    return _in_order(view, lambda e: e.is_executor)


def inventory_json(report: ReportInput) -> list[dict[str, Any]]:
    entries = []
    for view in report.pipelines:
        entries.append(
            {
                "pipeline": view.pipeline.path,
                "environment": view.environment,
                "proved": has_something_to_prove(view),
                "executors": [
                    {"job": e.job.name, "kind": e.kind, "declared": e.is_declared}
                    for e in _executors(view)
                ],
                "dry_runs": [
                    {"job": e.job.name, "declared": e.is_declared}
                    for e in _in_order(view, lambda e: e.is_dry_run)
                ],
                "unknown": [
                    {
                        "job": e.job.name,
                        "conditional": e.conditional,
                        "path": e.unknown_reasons()[0][0].path,
                        "line": e.unknown_reasons()[0][0].line,
                        "reason": e.unknown_reasons()[0][1],
                    }
                    for e in _in_order(view, lambda e: e.is_unknown)
                ],
                "declared": [
                    {"job": e.job.name, "effect": e.declared}
                    for e in _in_order(view, lambda e: e.declared is not None)
                ],
            }
        )
    return entries


_CAUSES_SHOWN = 5
"""Causes named in the inventory's `unknown, by cause` line (the rest are counted)."""


def _causes(effect: JobEffect) -> list[str]:
    """Why a job's effect is unknown, without the commands: what to fix, once per job."""
    causes = [effect.incomplete] if effect.incomplete else []
    if effect.unparsable:
        causes.append("a script line the shell cannot read")
    causes.extend(command.why for command in effect.unknowns)
    return list(dict.fromkeys(causes))


def _by_cause(unknown: list[JobEffect]) -> str:
    """Unknown jobs counted per cause, most frequent first: many findings, few fixes."""
    counts: dict[str, int] = {}
    for effect in unknown:
        for cause in _causes(effect):
            counts[cause] = counts.get(cause, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{cause} ({n} job{'s' if n != 1 else ''})" for cause, n in ranked[:_CAUSES_SHOWN]]
    rest = len(ranked) - len(shown)
    return "; ".join(shown) + (f"; and {rest} more" if rest > 0 else "")


def _parts(view: PipelineView) -> tuple[str, list[str]]:
    """(executors, further facts) of one pipeline, as plain text."""
    found = [f"{e.job.name} ({e.label()})" for e in _executors(view)]
    extra: list[str] = []
    if not has_something_to_prove(view):
        if found:  # a Rails application's own migrations (its test database)
            rails = _executors(view)
            jobs = ", ".join(e.job.name for e in rails)
            verb = "migrates" if len(rails) == 1 else "migrate"
            return (
                f"nothing to prove: {jobs} {verb} a Rails database without PDMs (no PDM "
                "variable, no RAILS_ENV=production, no gitlab-rake)",
                extra,
            )
        return NOTHING_TO_PROVE, extra  # what its jobs do cannot matter to PDMs
    line = " → ".join(found) if found else NO_EXECUTOR
    dry = _in_order(view, lambda e: e.is_dry_run)
    if dry:
        extra.append("dry runs: " + ", ".join(f"{e.job.name}{_declared(e)}" for e in dry))
    unknown = _in_order(view, lambda e: e.is_unknown)
    if unknown:
        extra.append(
            "unknown: "
            + ", ".join(f"{e.job.name}{' (conditional)' if e.conditional else ''}" for e in unknown)
        )
        if len(unknown) > 1:
            extra.append("unknown, by cause: " + _by_cause(unknown))
    declared = _in_order(view, lambda e: e.declared is not None and not e.is_dry_run)
    if declared:
        extra.append("declared: " + ", ".join(f"{e.job.name} ({e.declared})" for e in declared))
    return line, extra


def inventory_text(report: ReportInput) -> list[str]:
    """Lines for the text report: one block per pipeline, after the findings."""
    if not report.pipelines:
        return []
    lines = ["Executors found:"]
    for view in report.pipelines:
        line, extra = _parts(view)
        lines.append(printable(f"  {_name(view)}: {line}"))
        lines.extend(printable(f"    {fact}") for fact in extra)
    return lines


def inventory_markdown(report: ReportInput, cell: Any) -> list[str]:
    """The note's section: a table, one row per pipeline. `cell` escapes table text."""
    if not report.pipelines:
        return []
    lines = [
        "#### What was checked",
        "",
        "| pipeline | executors, in order | also found |",
        "| --- | --- | --- |",
    ]
    for view in report.pipelines:
        line, extra = _parts(view)
        lines.append(f"| {cell(_name(view))} | {cell(line)} | {cell('; '.join(extra) or '—')} |")
    return [*lines, ""]
