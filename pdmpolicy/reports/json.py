"""`--format json`: `findings` and `summary` as docs/reports.md describes, and the
`inventory` of what was found in each pipeline (docs/effects.md)."""

from __future__ import annotations

import json

from pdmpolicy.core.findings import counts
from pdmpolicy.reports.base import ReportInput
from pdmpolicy.reports.inventory import inventory_json


def render_json(report: ReportInput) -> str:
    document = {
        "findings": [finding.to_json() for finding in report.findings],
        "summary": counts(list(report.findings)),
    }
    if report.pipelines:
        document["inventory"] = inventory_json(report)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
