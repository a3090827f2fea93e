"""What a policy is: metadata, documentation in fixed sections, and a pure check.

A policy never reads files. The engine hands it a `Context` (the environments in its scope,
each with its lowered pipeline and analysis, its options and the date) and stamps what it
yields with the policy name, severity and waivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record
from pdmpolicy.environments.model import Environment
from pdmpolicy.gitlab.analysis import Analysis
from pdmpolicy.gitlab.pipeline import Pipeline
from pdmpolicy.policyset.toolchain import DEFAULT, Toolchain

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import ManifestFile


@record
class Option:
    """A policy parameter, settable in policies/*.yml."""

    name: str
    kind: str
    """'duration' (e.g. '3h'), 'count' (whole number >= 0) or 'text'."""
    default: Any
    description: str


@record
class Violation:
    """What a check yields; the engine turns it into a Finding."""

    loc: Loc
    message: str
    environment: str | None = None
    job: str | None = None
    hint: str = ""
    subject: str = ""


@record
class PipelineView:
    """A pipeline as the job-level policies see it: lowered from an environment by `check`,
    or loaded from a GitLab CI file by `verify` (then `environment` and `database` are None)."""

    pipeline: Pipeline
    analysis: Analysis
    environment: str | None = None
    database: str | None = None


@record
class EnvironmentView:
    """One environment as the policies see it: declared, lowered, analysed."""

    environment: Environment
    pipeline: Pipeline
    analysis: Analysis

    @property
    def name(self) -> str:
        return self.environment.name


@record
class Waiver:
    policy: str | None
    environment: str | None
    job: str | None
    reason: str | None
    owner: str | None
    expires: dt.date | None
    expires_text: str | None
    loc: Loc
    locs: Mapping[str, Loc] = field(repr=False, compare=False)

    def loc_of(self, name: str) -> Loc:
        return self.locs.get(name, self.loc)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def complete(self) -> bool:
        return bool(
            self.policy and self.environment and self.reason and self.owner and self.expires
        )

    def lifts(self, policy: str, environment: str | None, job: str | None, today: dt.date) -> bool:
        """Whether this waiver, complete and in force, lifts `policy` for `environment` and
        `job` (a waiver without a job lifts it for every job of the environment)."""
        return (
            self.complete()
            and not self.expired(today)
            and self.policy == policy
            and self.environment == environment
            and (self.job is None or self.job == job)
        )


@record
class Context:
    """Everything a check may look at."""

    environments: tuple[EnvironmentView, ...]
    """The environments in the policy's scope, by name."""
    all_environments: tuple[EnvironmentView, ...]
    """Every environment, for rules that relate one to another (upstream, shared database)."""
    options: Mapping[str, Any]
    today: dt.date
    waivers: tuple[Waiver, ...] = ()
    policy_names: frozenset[str] = frozenset()
    base: tuple[EnvironmentView, ...] | None = None
    """The environments at `--base REF`, for change-aware policies; None without a base."""
    pipelines: tuple[PipelineView, ...] = ()
    """The pipelines in scope, for the policies that check pipelines (`layers`): the
    lowered pipelines of `environments` under `check`, the loaded files under `verify`."""
    manifests: tuple[ManifestFile, ...] = ()
    """The rendered Kubernetes manifests given to `pdmpolicy manifests`, for the policies of
    the "manifests" layer; `all_environments` then says what each file's environment
    declares (its CI timeouts)."""
    toolchain: Toolchain = DEFAULT
    """How the tools are called (the policy set's `toolchain:` over the defaults)."""


@record
class Documentation:
    """The fixed sections every policy documents (docs/policies.md, docs/plugins.md)."""

    what: str
    why: str
    failing_example: Mapping[str, str]
    """File name -> content: environment files (and `policies.yml`) that fail the policy;
    for a "manifests" policy, `<env>.manifest.yaml` files (rendered manifests of `<env>`)."""
    fix: str
    fixed_example: Mapping[str, str]
    """The same files, corrected: they pass the policy."""


class Policy:
    """Base class: subclasses set the metadata and implement `check`."""

    name: str = ""
    summary: str = ""
    default_severity: str = "error"
    options: tuple[Option, ...] = ()
    layers: frozenset[str] = frozenset({"environments"})
    """Where the policy applies: "environments" (`check`) and/or "pipelines" (`verify`,
    on any GitLab CI file; such a policy reads only `Context.pipelines`), or "manifests"
    (`pdmpolicy manifests`, on rendered Kubernetes YAML: `Context.manifests`)."""
    needs_base: bool = False
    """Evaluated only with `--base`; documentation examples then hold `base:<file>` keys."""
    documentation: Documentation

    def check(self, context: Context) -> Iterable[Violation]:
        raise NotImplementedError

    def option_defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}


BOTH_LAYERS = frozenset({"environments", "pipelines"})
MANIFESTS_LAYER = frozenset({"manifests"})


def pipeline_view(view: EnvironmentView) -> PipelineView:
    return PipelineView(
        view.pipeline, view.analysis, view.environment.name, view.environment.database
    )


def has_something_to_prove(view: EnvironmentView | PipelineView) -> bool:
    """An environment always; a loaded pipeline (`verify`) only when it has a PDM executor
    or sets a PDM variable (docs/effects.md): an ordinary pipeline, or a Rails
    application migrating its test database, has none."""
    if isinstance(view, EnvironmentView) or view.environment is not None:
        return True
    return view.analysis.concerns_pdms


def executors(view: EnvironmentView | PipelineView) -> Iterator[Any]:
    """The executor effects of an environment's pipeline, in execution order; none for a
    loaded pipeline with nothing to prove."""
    if not has_something_to_prove(view):
        return
    order = view.analysis.execution_order()
    for name in order:
        effect = view.analysis.effect(name)
        if effect.is_executor:
            yield effect
