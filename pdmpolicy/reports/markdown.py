"""`markdown`: the merge-request note.

A verdict line, the environments (database, step, since, executors in order), the findings
with links to file and line, the waivers in force and when they expire, and a Mermaid graph
of each environment's jobs. Reviewers read it on the merge request, so it leads with the
answer and keeps detail folded.
"""

from __future__ import annotations

from pdmpolicy.core.findings import Finding, counts
from pdmpolicy.policies.base import executors
from pdmpolicy.reports.base import ReportInput
from pdmpolicy.reports.graph import mermaid
from pdmpolicy.reports.inventory import inventory_markdown
from pdmpolicy.reports.text import summary_line
from pdmpolicy.rollout.report import note_section

MARKER = "<!-- pdmpolicy-note -->"
"""Identifies the note on a merge request, so it is updated rather than posted again."""


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (and in GitLab's HTML sanitiser)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n", " ")
    )


def _link(report: ReportInput, finding: Finding) -> str:
    where = f"{finding.loc.path}:{finding.loc.line}"
    target = f"{finding.loc.path}#L{finding.loc.line}"
    if report.link_base:
        target = report.link_base.rstrip("/") + "/" + target
        return f"[`{where}`]({target})"
    return f"`{where}`"


def _verdict(report: ReportInput) -> str:
    summary = counts(list(report.findings))
    if summary["errors"]:
        return f"### :x: {report.title}: {summary_line(report)}. {report.blocked}"
    if summary["warnings"]:
        return f"### :warning: {report.title}: {summary_line(report)}. Nothing blocks the merge."
    return f"### :white_check_mark: {report.title}: {summary_line(report)}."


def _environments(report: ReportInput) -> list[str]:
    if not report.views:
        return []
    lines = [
        "| environment | database | step | since | upstream | executors, in order |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for view in report.views:
        env = view.environment
        run = " → ".join(f"{e.job.name} ({e.kind})" for e in executors(view)) or "none"
        lines.append(
            f"| {cell(env.name)} | {cell(env.database)} | {env.step} | {env.since.isoformat()} "
            f"| {cell(env.upstream or '—')} | {cell(run)} |"
        )
    return ["#### Environments", "", *lines, ""]


def _findings(report: ReportInput) -> list[str]:
    if not report.findings:
        return []
    icon = {"error": ":x:", "warning": ":warning:"}
    lines = ["#### Findings", ""]
    for finding in report.findings:
        mark = ":zzz:" if finding.waived else icon.get(finding.severity, "")
        subject = " / ".join(x for x in (finding.environment, finding.job) if x)
        waived = " *(waived)*" if finding.waived else ""
        lines.append(
            f"- {mark} **{finding.policy}** {_link(report, finding)}"
            f"{f' ({cell(subject)})' if subject else ''}: {cell(finding.message)}{waived}"
        )
        if finding.hint:
            lines.append(f"  <br>*Fix:* {cell(finding.hint)}")
    return [*lines, ""]


def _waivers(report: ReportInput) -> list[str]:
    if not report.waivers:
        return []
    lines = [
        "#### Waivers",
        "",
        "| policy | environment | job | owner | expires | reason |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for waiver in report.waivers:
        expires = waiver.expires.isoformat() if waiver.expires else "never (invalid)"
        if waiver.expires and report.today and waiver.expired(report.today):
            expires += " **(expired)**"
        elif waiver.expires and report.today:
            expires += f" (in {(waiver.expires - report.today).days} days)"
        lines.append(
            f"| {cell(waiver.policy or '—')} | {cell(waiver.environment or '—')} "
            f"| {cell(waiver.job or 'all')} | {cell(waiver.owner or '—')} | {expires} "
            f"| {cell(waiver.reason or '—')} |"
        )
    return [*lines, ""]


def _graphs(report: ReportInput) -> list[str]:
    lines = []
    for view in report.views:
        lines += [
            f"<details><summary>Jobs of {cell(view.name)} ({view.environment.step})</summary>",
            "",
            "```mermaid",
            mermaid(view).rstrip("\n"),
            "```",
            "",
            "Double boxes execute PDMs; a solid arrow means *starts only after the first "
            "succeeded*, a dotted one *waits, whatever the outcome*.",
            "",
            "</details>",
            "",
        ]
    return lines


def render_markdown(report: ReportInput) -> str:
    lines = [MARKER, _verdict(report), ""]
    lines += _findings(report)
    for section in report.extra_sections:
        lines += [section.rstrip("\n"), ""]
    lines += _environments(report)
    lines += inventory_markdown(report, cell)
    lines += note_section(report)
    lines += _waivers(report)
    lines += _graphs(report)
    return "\n".join(lines).rstrip("\n") + "\n"
