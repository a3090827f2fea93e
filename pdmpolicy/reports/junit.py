"""`junit`: GitLab's unit test report (`artifacts:reports:junit`).

One test case per policy x subject, so passing policies show as passing; `classname` is
the policy (GitLab shows it as the suite); names are unique and stable (GitLab keeps only
the first of duplicates). Error findings are failures; warnings and waived findings pass,
with the finding in system-out, since the exit code, not this report, fails the job.
Written with ElementTree, so every value is escaped and the XML is well formed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from pdmpolicy.core.findings import Finding
from pdmpolicy.reports.base import Case, ReportInput


def _line(finding: Finding) -> str:
    text = f"{finding.loc}: {finding.severity} {finding.policy}: {finding.message}"
    if finding.waived:
        text += " (waived)"
    if finding.hint:
        text += f"\n  hint: {finding.hint}"
    return text


def _subject_of(finding: Finding) -> str:
    return finding.environment or finding.loc.path


def render_junit(report: ReportInput) -> str:
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_case[(finding.policy, _subject_of(finding))].append(finding)
    cases = {(c.policy, c.subject): c for c in report.cases}
    for policy, subject in by_case:
        if (policy, subject) not in cases:
            path = by_case[(policy, subject)][0].loc.path
            cases[(policy, subject)] = Case(policy, subject, path)
    ordered = sorted(cases.values(), key=lambda c: (c.policy, c.subject))
    failures = sum(
        any(f.severity == "error" and not f.waived for f in by_case[(c.policy, c.subject)])
        for c in ordered
    )
    suites = ET.Element("testsuites", name=report.title)
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=report.title,
        tests=str(len(ordered)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for case in ordered:
        found = by_case.get((case.policy, case.subject), [])
        element = ET.SubElement(
            suite,
            "testcase",
            classname=case.policy,
            name=f"{case.policy} [{case.subject}]",
            file=case.path,
        )
        errors = [f for f in found if f.severity == "error" and not f.waived]
        if errors:
            failure = ET.SubElement(
                element, "failure", message=errors[0].message, type=errors[0].policy
            )
            failure.text = "\n".join(_line(f) for f in errors)
        others = [f for f in found if f not in errors]
        if others:
            ET.SubElement(element, "system-out").text = "\n".join(_line(f) for f in others)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
