"""Report formats: one module each, all behind `Reporter` and the `REPORTERS` map.

A reporter turns a `ReportInput` into text; it never decides the exit code. Each format's
module is imported when a report in that format is written, so `check` with the text
report does not load the Markdown, JUnit or Code Quality writers.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from pdmpolicy.reports.base import Case, ReportInput

Reporter = Callable[[ReportInput], str]


def _deferred(module: str, function: str) -> Reporter:
    def render(report: ReportInput) -> str:
        rendered: str = getattr(import_module(f"pdmpolicy.reports.{module}"), function)(report)
        return rendered

    render.__name__ = render.__qualname__ = function
    return render


REPORTERS: dict[str, Reporter] = {
    "codequality": _deferred("codequality", "render_codequality"),
    "json": _deferred("json", "render_json"),
    "junit": _deferred("junit", "render_junit"),
    "markdown": _deferred("markdown", "render_markdown"),
    "text": _deferred("text", "render_text"),
}

__all__ = ["REPORTERS", "Case", "ReportInput", "Reporter"]
