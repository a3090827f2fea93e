"""`codequality`: GitLab's Code Quality report (`artifacts:reports:codequality`).

A JSON array of issues with `description`, `check_name`, `fingerprint`, `severity` and
`location.path`/`location.lines.begin`. The fingerprint hashes the policy, path,
environment, job and subject, never the line, so a finding keeps its identity when lines
move, and two subjects never collapse into one entry. The policy name leads the
description because GitLab shows little else.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from pdmpolicy.reports.base import ReportInput

SEVERITY = {"error": "critical", "warning": "minor"}
WAIVED_SEVERITY = "info"


def render_codequality(report: ReportInput) -> str:
    issues = []
    seen: Counter[str] = Counter()
    for finding in report.findings:
        identity = "\x1f".join(
            [
                finding.policy,
                finding.loc.path,
                finding.environment or "",
                finding.job or "",
                finding.subject or finding.message,
            ]
        )
        # Two findings with the same identity (rare: one subject, several messages) stay
        # distinct, in the stable order findings are sorted in.
        seen[identity] += 1
        if seen[identity] > 1:
            identity += f"\x1f{seen[identity]}"
        description = f"{finding.policy}: {finding.message}"
        if finding.waived:
            description += " (waived)"
        issues.append(
            {
                "type": "issue",
                "check_name": finding.policy,
                "description": description,
                "categories": ["Bug Risk"],
                "severity": WAIVED_SEVERITY if finding.waived else SEVERITY[finding.severity],
                "fingerprint": hashlib.sha256(identity.encode("utf-8")).hexdigest(),
                "location": {
                    "path": finding.loc.path,
                    "lines": {"begin": max(1, finding.loc.line)},
                },
            }
        )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"
