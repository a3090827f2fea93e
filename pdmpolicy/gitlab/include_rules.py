"""Jobs of an include whose `rules:` are not decided offline: possibly not in the pipeline.

GitLab decides an include's `rules:if` when the pipeline is created, on the project,
group, instance, pipeline and trigger variables and a few predefined ones; the top-level
`variables:` of the file cannot be used (docs/gitlab-ci-semantics.md §14). Offline none of
these is known, so a job defined only in such an include may or may not be added: it
gets the outcome "not added" (a `never` choice) beside the outcomes of its own `rules:`.
Its rule cases become the include's rules combined with its own (`(include if) && (job
if)`, in GitLab's first-match order), so the prover still correlates it with other jobs
testing the same variables; where that cannot be written, its outcomes are taken as
independent of every other job's (more runs explored, never fewer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pdmpolicy.gitlab.include import IncludeCondition, Stack
from pdmpolicy.gitlab.pipeline import Choice, CiJob, RuleCase

Case = tuple[str | None, bool, int]
"""(if expression or None, has changes:/exists:, outcome index)."""


def _both(outer: str | None, inner: str | None) -> str | None:
    if outer is None:
        return inner
    if inner is None:
        return outer
    return f"({outer}) && ({inner})"


def _within(condition: IncludeCondition, inner: Sequence[Case], never: int) -> list[Case]:
    """The cases of `inner` (first match wins, none: `never`) read only when `condition`
    lets the include in: each include rule that lets it in guards a copy of `inner`, and
    ends in `never` when no inner case matched (GitLab stopped at that include rule)."""
    cases: list[Case] = []
    for rule in condition.cases:
        if not rule.included:
            cases.append((rule.if_, rule.other, never))
            continue
        for if_, other, outcome in inner:
            cases.append((_both(rule.if_, if_), rule.other or other, outcome))
        if not inner or inner[-1][0] is not None or inner[-1][1]:
            cases.append((rule.if_, rule.other, never))
    return cases


def possibly_absent(job: CiJob, stacks: Sequence[Stack]) -> CiJob:
    """`job`, defined only in includes read under `stacks` (one per way it is included),
    with "not added to the pipeline" among its outcomes."""
    loc = stacks[0][-1].loc
    choices = list(job.choices) or [Choice(job.when, job.allow_failure, job.loc)]
    never = next((i for i, c in enumerate(choices) if c.when == "never"), None)
    if never is None:
        choices.append(Choice("never", False, loc))
        never = len(choices) - 1
    if len(stacks) != 1 or (job.choices and not job.rule_cases):
        # Included in several ways (either may let it in), or its own outcomes are not
        # tied to conditions (`only`/`except`): outcomes independent of every other job's.
        return replace(job, choices=tuple(choices), rule_cases=())
    inner: list[Case] = (
        [(case.if_, case.other, case.choice) for case in job.rule_cases]
        if job.rule_cases
        else [(None, False, 0)]
    )
    for condition in reversed(stacks[0]):
        inner = _within(condition, inner, never)
    cases = tuple(RuleCase(if_, other=other, choice=outcome) for if_, other, outcome in inner)
    return replace(job, choices=tuple(choices), rule_cases=cases)
