"""`pdmpolicy status` as text, JSON and Markdown (also a section of the merge-request note).

The Markdown form is a table and a Mermaid gantt chart of the plan: every environment's
steps from where it is to `kubernetes-only`, each entered on the first day the policy set's
soak rules allow.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING

from pdmpolicy.core.names import ROLLOUT_STEPS
from pdmpolicy.environments.model import Environment
from pdmpolicy.policyset.config import PolicySet
from pdmpolicy.rollout.plan import (
    ONE_STEP_AT_A_TIME,
    PROMOTION_ORDER,
    Entry,
    Status,
    states_of,
    status,
    timeline,
)

if TYPE_CHECKING:
    from pdmpolicy.reports.base import ReportInput

FORMATS = ("text", "json", "markdown")


def _when(row: Status) -> str:
    if row.next_step is None:
        return "—"
    if row.rule is None:
        return "may advance now"
    if row.earliest is None:
        return "not planned"
    return f"{'planned ' if row.planned else ''}{row.earliest.isoformat()}"


def _upstream(row: Status) -> str:
    return f"{row.upstream} ({row.upstream_step})" if row.upstream else "—"


def render_text(rows: list[Status], today: dt.date) -> str:
    header = ("environment", "database", "step", "since", "days", "upstream", "next", "earliest")
    table = [header] + [
        (
            row.environment,
            row.database,
            row.step,
            row.since.isoformat(),
            str(row.days),
            _upstream(row),
            row.next_step or "—",
            _when(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    out = [f"rollout status on {today.isoformat()}"]
    for line in table:
        cells = [
            cell.rjust(width) if index == 4 else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    notes = [
        f"{row.environment}: {row.next_step} from {_when(row)}, decided by {row.rule}: {row.reason}"
        for row in rows
        if row.rule is not None
    ]
    notes += [f"{row.environment}: {text}" for row in rows for text in row.waived]
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def render_json(rows: list[Status], today: dt.date) -> str:
    document = {"today": today.isoformat(), "environments": [row.to_json() for row in rows]}
    return json.dumps(document, indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _table(rows: list[Status]) -> list[str]:
    lines = [
        "| environment | database | step | since | days | upstream | next step | earliest "
        "| decided by |",
        "| --- | --- | --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for row in rows:
        decided = f"`{row.rule}`: {row.reason}" if row.rule else "—"
        if row.waived:
            decided += " (" + "; ".join(row.waived) + ")"
        lines.append(
            f"| {_cell(row.environment)} | {_cell(row.database)} | {row.step} "
            f"| {row.since.isoformat()} | {row.days} | {_cell(_upstream(row))} "
            f"| {row.next_step or '—'} | {_when(row)} | {_cell(decided)} |"
        )
    return lines


def _task_id(environment: str, index: int) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{environment}_{index}")


def gantt(plan: dict[str, list[Entry]], today: dt.date, title: str) -> list[str]:
    """A Mermaid gantt chart: one section per environment, one bar per step."""
    lines = [
        "```mermaid",
        "gantt",
        f"    title {title}",
        "    dateFormat YYYY-MM-DD",
        "    axisFormat %m-%d",
    ]
    for name, entries in plan.items():
        lines.append(f"    section {name}")
        for position, entry in enumerate(entries):
            index = ROLLOUT_STEPS.index(entry.step)
            task = _task_id(name, index)
            if position + 1 < len(entries):
                end = entries[position + 1].start
                tag = "active, " if position == 0 else ""
                lines.append(
                    f"    {entry.step} :{tag}{task}, {entry.start.isoformat()}, {end.isoformat()}"
                )
            elif index == len(ROLLOUT_STEPS) - 1:
                lines.append(f"    {entry.step} :milestone, {task}, {entry.start.isoformat()}, 0d")
            else:
                # Stuck: no rule lets it move on (an upstream that never gets there).
                lines.append(f"    {entry.step} :crit, {task}, {entry.start.isoformat()}, 1d")
    lines.append("```")
    return lines


def _soak_title(policy_set: PolicySet, today: dt.date) -> str:
    parts = []
    for rule in (PROMOTION_ORDER, ONE_STEP_AT_A_TIME):
        setting = policy_set.settings.get(rule)
        if setting is not None and setting.severity == "error":
            parts.append(f"{rule} {setting.options.get('soak_days', 0)} days")
    soak = ", ".join(parts) if parts else "no soak rules"
    return f"Rollout plan from {today.isoformat()} (soak: {soak})"


def markdown_section(
    environments: tuple[Environment, ...], policy_set: PolicySet, today: dt.date
) -> list[str]:
    """`#### Rollout`: the status table and the plan to the last step."""
    if not environments:
        return []
    rows = status(environments, policy_set, today)
    plan = timeline(states_of(environments), policy_set, today)
    return [
        "#### Rollout",
        "",
        *_table(rows),
        "",
        "Each step starts on the first day the soak rules allow; "
        "`pdmpolicy advance ENV` makes the next one.",
        "",
        *gantt(plan, today, _soak_title(policy_set, today)),
        "",
    ]


def note_section(report: ReportInput) -> list[str]:
    """The rollout section of the merge-request note (`check --report markdown=FILE`)."""
    if report.policy_set is None or report.today is None:
        return []
    environments = tuple(view.environment for view in report.views)
    return markdown_section(environments, report.policy_set, report.today)


def render_markdown(
    environments: tuple[Environment, ...], policy_set: PolicySet, today: dt.date
) -> str:
    return "\n".join(markdown_section(environments, policy_set, today)).rstrip("\n") + "\n"


def render(
    fmt: str, environments: tuple[Environment, ...], policy_set: PolicySet, today: dt.date
) -> str:
    if fmt == "markdown":
        return render_markdown(environments, policy_set, today)
    rows = status(environments, policy_set, today)
    if fmt == "json":
        return render_json(rows, today)
    return render_text(rows, today)
