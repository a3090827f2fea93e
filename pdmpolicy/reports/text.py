"""`--format text`: `file:line:col: severity policy: message`, one finding a line."""

from __future__ import annotations

from pdmpolicy.errors import printable
from pdmpolicy.findings import counts
from pdmpolicy.reports.base import ReportInput
from pdmpolicy.reports.inventory import inventory_text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(report: ReportInput) -> str:
    summary = counts(list(report.findings))
    return (
        f"{_plural(summary['errors'], 'error')}, {_plural(summary['warnings'], 'warning')}, "
        f"{summary['waived']} waived"
    )


def render_text(report: ReportInput) -> str:
    lines = []
    for finding in report.findings:
        waived = " (waived)" if finding.waived else ""
        message = printable(finding.message)
        where = printable(str(finding.loc))
        lines.append(f"{where}: {finding.severity} {finding.policy}: {message}{waived}")
        if finding.hint:
            lines.append(f"  hint: {printable(finding.hint)}")
    lines += inventory_text(report)
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
