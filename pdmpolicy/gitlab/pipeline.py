"""The GitLab CI model: what a pipeline file means once defaults and inheritance are resolved.

Every pipeline the tool reasons about is one of these, whether it was lowered from an
environment file (`lower.py`) or loaded from a GitLab CI file. Values are *effective*:
`retry` already includes what `default:` contributes, `allow_failure` already includes the
manual-job default. `locs` point at the text responsible for each effective value (in the
environment file for lowered pipelines), so every finding lands on a line someone can edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType

from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record

Locs = Mapping[str, Loc]


@record
class Variable:
    name: str
    value: str
    loc: Loc


@record
class Need:
    job: str
    optional: bool
    loc: Loc


@record
class ScriptLine:
    text: str
    loc: Loc


@record
class Trigger:
    """A trigger job's child pipeline: `trigger: include: <file>`."""

    include: str
    strategy: str | None
    forward_yaml_variables: bool
    forward_pipeline_variables: bool


@record
class Rule:
    """One entry of a trigger's `rules:`; only the `if:` form is emitted by the tool."""

    if_: str


@record
class Choice:
    """One way `rules:` can decide a job: the rule's outcome, as a choice the prover covers.

    `when == "never"` means the job is not in the pipeline for that choice.
    """

    when: str
    allow_failure: bool
    loc: Loc


@record
class RuleCase:
    """One reachable entry of a job's `rules:`, in order: GitLab takes the first that matches.

    The prover reads these to correlate jobs whose rules test the same pipeline variables
    (`$ENVIRONMENT == "gprd"` and `$ENVIRONMENT == "gstg"` never both match)."""

    if_: str | None
    """The `if:` expression; None when the rule has none."""
    other: bool
    """The rule also has `changes:` or `exists:` (matched or not: unknown offline)."""
    choice: int
    """Index of the outcome it gives in the job's `choices`."""


@record
class Unsupported:
    """A construct the loader could not model; reported, never silently ignored."""

    loc: Loc
    what: str
    job: str | None = None
    """The job it belongs to; None for the whole pipeline (`workflow:`, `spec:`, ...).
    It matters only where it can change whether, when or how often an executor runs."""


@record
class Note:
    """A conservative reading the loader applied (GitLab's behaviour left a choice, or a
    keyword is not modelled and the reading covers it); shown so the reader can check it."""

    loc: Loc
    what: str


def _no_locs() -> Locs:
    return MappingProxyType({})


@record
class Artifacts:
    """Files a job keeps (`artifacts:`): the dry run's output, for `pdmpolicy manifests`."""

    paths: tuple[str, ...]
    when: str = "on_success"
    expire_in: str | None = None


@record
class CiJob:
    """One job with its effective settings."""

    name: str
    stage: str
    needs: tuple[Need, ...] | None
    """None: the job waits for every job of earlier stages. (): it waits for nothing."""
    when: str
    allow_failure: bool
    retry: int
    interruptible: bool
    resource_group: str | None
    timeout: str | None
    variables: tuple[Variable, ...]
    inherit_default: bool
    inherit_variables: bool | tuple[str, ...]
    script: tuple[ScriptLine, ...]
    trigger: Trigger | None
    rules: tuple[Rule, ...]
    loc: Loc
    locs: Locs = field(default_factory=_no_locs, repr=False, compare=False)
    retry_when: tuple[str, ...] = ()
    """`retry:when` conditions; () means GitLab's default (always)."""
    choices: tuple[Choice, ...] = ()
    """Outcomes `rules:` can give this job; () when the job has no rules (one outcome, as
    above). Loaded pipelines only; rendered trigger rules are in `rules`."""
    start_in: str | None = None
    """For `when: delayed`."""
    rule_cases: tuple[RuleCase, ...] = ()
    """The reachable entries of `rules:` that lead to `choices`, in order (no entry matched:
    the `never` choice). (): not known, every choice is taken as independent of the other
    jobs'."""
    artifacts: Artifacts | None = field(default=None, compare=False)
    """What the job keeps. It changes nothing about which jobs run or when, so it takes no
    part in comparing jobs (the GitLab loader ignores `artifacts:`)."""
    declared_effect: str | None = None
    """`effect:` of a `runner: generic` job in an environment file (none, dry-run, executor):
    what the team says the job does where the analysis cannot see (docs/effects.md)."""
    incomplete: str | None = None
    """Why the job's definition is not fully known (it extends or overrides configuration
    from an include that was not read, or starts a pipeline whose content is not read);
    None when the whole definition was read."""

    def loc_of(self, name: str) -> Loc:
        return self.locs.get(name, self.loc)


@record
class Pipeline:
    """A pipeline file: stages, top-level variables, jobs in file order."""

    path: str
    source: str
    """The input this pipeline was produced from (the environment file for lowered ones)."""
    stages: tuple[str, ...]
    variables: tuple[Variable, ...]
    jobs: tuple[CiJob, ...]
    unsupported: tuple[Unsupported, ...] = ()
    notes: tuple[Note, ...] = ()
    """Loaded pipelines only: conservative readings and keywords ignored on purpose."""
    warnings: tuple[Note, ...] = ()
    """Loaded pipelines only: what the reader should know about the input itself, shown as
    warnings: each include that was not read (the pipeline is partial), duplicated keys."""

    def job(self, name: str) -> CiJob:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def inherited_variables(self, job: CiJob) -> tuple[Variable, ...]:
        """Top-level variables the job receives, per its `inherit: variables`."""
        if job.inherit_variables is True:
            return self.variables
        if job.inherit_variables is False:
            return ()
        return tuple(v for v in self.variables if v.name in job.inherit_variables)
