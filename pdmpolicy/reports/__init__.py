"""Report formats: one module each, all behind `Reporter` and the `REPORTERS` map.

A reporter turns a `ReportInput` into text; it never decides the exit code.
"""

from __future__ import annotations

from collections.abc import Callable

from pdmpolicy.reports.base import Case, ReportInput
from pdmpolicy.reports.codequality import render_codequality
from pdmpolicy.reports.json import render_json
from pdmpolicy.reports.junit import render_junit
from pdmpolicy.reports.markdown import render_markdown
from pdmpolicy.reports.text import render_text

Reporter = Callable[[ReportInput], str]

REPORTERS: dict[str, Reporter] = {
    "codequality": render_codequality,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
    "text": render_text,
}

__all__ = ["REPORTERS", "Case", "ReportInput", "Reporter"]
