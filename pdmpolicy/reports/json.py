"""`--format json`: exactly the object docs/reports.md describes."""

from __future__ import annotations

import json

from pdmpolicy.findings import counts
from pdmpolicy.reports.base import ReportInput


def render_json(report: ReportInput) -> str:
    document = {
        "findings": [finding.to_json() for finding in report.findings],
        "summary": counts(list(report.findings)),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
