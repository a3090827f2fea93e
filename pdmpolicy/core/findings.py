"""The one value every policy produces and every report consumes."""

from __future__ import annotations

from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record

SEVERITIES = ("error", "warning", "off")


@record
class Finding:
    """A policy's verdict on one subject, stamped by the engine with severity and waiver."""

    policy: str
    severity: str
    message: str
    loc: Loc
    environment: str | None = None
    job: str | None = None
    hint: str = ""
    waived: bool = False
    subject: str = ""
    """What the finding is about, independent of its line (for stable report fingerprints)."""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.loc.path, self.loc.line, self.loc.column, self.policy, self.message)

    def to_json(self) -> dict[str, object]:
        """The shape docs/reports.md documents for `--format json`."""
        return {
            "policy": self.policy,
            "severity": self.severity,
            "environment": self.environment,
            "job": self.job,
            "path": self.loc.path,
            "line": self.loc.line,
            "column": self.loc.column,
            "message": self.message,
            "waived": self.waived,
        }


def counts(findings: list[Finding]) -> dict[str, int]:
    """The JSON report's summary (docs/reports.md): waived findings count only as waived."""
    live = [f for f in findings if not f.waived]
    return {
        "errors": sum(f.severity == "error" for f in live),
        "warnings": sum(f.severity == "warning" for f in live),
        "waived": sum(f.waived for f in findings),
    }
