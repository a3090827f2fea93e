"""What every reporter is given: the findings and the context they were found in."""

from __future__ import annotations

import datetime as dt
from dataclasses import field

from pdmpolicy.core.findings import Finding
from pdmpolicy.core.records import record
from pdmpolicy.policies.base import EnvironmentView, PipelineView, Waiver
from pdmpolicy.policyset.config import PolicySet


@record
class Case:
    """One policy evaluated on one subject (an environment, or a file where none applies).

    JUnit shows one test case per Case, so passing policies show as passing.
    """

    policy: str
    subject: str
    path: str


@record
class ReportInput:
    findings: tuple[Finding, ...]
    cases: tuple[Case, ...] = ()
    views: tuple[EnvironmentView, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    today: dt.date | None = None
    title: str = "pdmpolicy check"
    blocked: str = "Rendering is blocked."
    """What an error-level finding stops, said in the note's verdict."""
    extra_sections: tuple[str, ...] = field(default=())
    """Markdown blocks added to the merge-request note (e.g. the behavioural diff)."""
    pipelines: tuple[PipelineView, ...] = ()
    """The pipelines checked, for the inventory of what was found in each (`check`,
    `verify`); empty for reports that check no pipeline."""
    link_base: str | None = None
    policy_set: PolicySet | None = None
    """The policy set checked, for the rollout plan in the note (its soak days)."""
    """Prefix that turns `path#Lline` into a link on GitLab (`<project>/-/blob/<sha>/`)."""
