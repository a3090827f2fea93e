"""`--format text`: findings for people, in the order of the files they are in.

The first line of every finding is `file:line:col: severity policy: message` (editors, CI
log parsers and grep read it as a compiler's output); with a `TextStyle` that can read the
sources, the line it points at follows with a caret under the column, as ruff and rustc show
them. Every further line of a finding starts with a space, so it can never be mistaken for a
finding. Colour is the caller's decision (a terminal), never the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pdmpolicy.core.errors import printable
from pdmpolicy.core.findings import Finding, counts
from pdmpolicy.core.records import record
from pdmpolicy.reports.base import ReportInput
from pdmpolicy.reports.inventory import inventory_text

Sources = Callable[[str], Sequence[str] | None]
"""A path as findings name it -> the file's lines, or None when it cannot be read."""


@record
class TextStyle:
    colour: bool = False
    quiet: bool = False
    """Only the first line of each finding, and the summary."""
    sources: Sources | None = None
    """Where the source lines come from; None shows none."""


_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_RED = "\x1b[1;31m"
_YELLOW = "\x1b[1;33m"
_GREEN = "\x1b[1;32m"
_CYAN = "\x1b[36m"
_BLUE = "\x1b[1;34m"
_DIM = "\x1b[2m"
_SEVERITY_COLOUR = {"error": _RED, "warning": _YELLOW}

# The token a caret underlines: a quoted scalar, or up to a space or YAML punctuation.
_TOKEN = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s,\[\]{}]+?(?=:\s|:$|[\s,\]}]|$)")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(report: ReportInput) -> str:
    summary = counts(list(report.findings))
    return (
        f"{_plural(summary['errors'], 'error')}, {_plural(summary['warnings'], 'warning')}, "
        f"{summary['waived']} waived"
    )


class _Paint:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled and text else text


def _first_line(finding: Finding, paint: _Paint) -> str:
    waived = " (waived)" if finding.waived else ""
    where = printable(str(finding.loc))
    severity = paint(_SEVERITY_COLOUR.get(finding.severity, _BOLD), finding.severity)
    message = printable(finding.message)
    if finding.waived:
        severity = paint(_DIM, finding.severity)
    return f"{paint(_BOLD, where)}: {severity} {paint(_CYAN, finding.policy)}: {message}{waived}"


def _snippet(finding: Finding, lines: Sequence[str], paint: _Paint) -> list[str]:
    """The source line the finding points at, with a caret under its column."""
    number, column = finding.loc.line, finding.loc.column
    if not 1 <= number <= len(lines):
        return []
    source = lines[number - 1]
    if column - 1 > len(source):
        return []
    # Escaped as the message is; the caret is placed in the escaped text, so a tab or a
    # control character before the column moves it exactly as far as it moved the text.
    shown = printable(source)
    start = len(printable(source[: column - 1]))
    token = _TOKEN.match(source, column - 1)
    width = max(1, len(printable(token.group()))) if token else 1
    gutter = " " * len(str(number))
    colour = _SEVERITY_COLOUR.get(finding.severity, _BOLD)
    bar = paint(_BLUE, "|")
    return [
        f" {gutter} {bar}",
        f" {paint(_BLUE, str(number))} {bar} {shown}".rstrip(),
        f" {gutter} {bar} {' ' * start}{paint(colour, '^' * width)}",
    ]


def render_text(report: ReportInput, style: TextStyle | None = None) -> str:
    style = style or TextStyle()
    paint = _Paint(style.colour)
    lines = []
    for finding in report.findings:
        lines.append(_first_line(finding, paint))
        if style.quiet:
            continue
        source = style.sources(finding.loc.path) if style.sources else None
        if source is not None:
            lines.extend(_snippet(finding, source, paint))
        if finding.hint:
            lines.append(f"  {paint(_CYAN, 'hint')}: {printable(finding.hint)}")
        if style.sources is not None:
            lines.append("")  # a finding with its source is a block: blocks are apart
    if not style.quiet:
        lines += inventory_text(report)
    summary = counts(list(report.findings))
    colour = _RED if summary["errors"] else _YELLOW if summary["warnings"] else _GREEN
    lines.append(paint(colour, summary_line(report)))
    return "\n".join(lines) + "\n"
