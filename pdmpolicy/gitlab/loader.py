"""GitLab CI files -> `pipeline.Pipeline`: what each job will do, with every default applied.

The order of resolution is GitLab's (docs/gitlab-ci-semantics.md §10, §14): YAML anchors
and merge keys (`yaml.py`), then includes (`include.py`, `inputs.py`), then `extends`, then
`!reference` (`expand.py`), then `default:` and `inherit`, then each keyword's own default
(`stage: test`, `when: on_success`, `allow_failure` true for a job-level `when: manual`,
...), then `parallel:` instances. What the model cannot represent is put in
`Pipeline.unsupported` with its location and job; conservative readings are put in
`Pipeline.notes`; includes not read and duplicated keys in `Pipeline.warnings`. A job whose
definition is not fully known (it refers into an include that was not read) says why in
`CiJob.incomplete`. docs/gitlab-loader.md lists all of them.

Each effective value keeps the location of the text responsible for it: a `retry` that
comes from `default:` points at the `default:` line, one from a template at the template.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn

from pdmpolicy.core import names
from pdmpolicy.core.errors import InputError, Problem
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import display_path
from pdmpolicy.gitlab.expand import expand
from pdmpolicy.gitlab.include import IncludeSource, Merged, Stack, merge_includes
from pdmpolicy.gitlab.include_rules import possibly_absent
from pdmpolicy.gitlab.pipeline import (
    Choice,
    CiJob,
    Need,
    Note,
    Pipeline,
    Rule,
    RuleCase,
    ScriptLine,
    Trigger,
    Unsupported,
    Variable,
)
from pdmpolicy.gitlab.shell import ShellSyntaxError, commands
from pdmpolicy.gitlab.yaml import (
    Entry,
    Map,
    Node,
    Scalar,
    Seq,
    describe,
    read_documents,
    ruby_text,
)

DEFAULT_STAGES = ("build", "test", "deploy")
PRE_STAGE = ".pre"
POST_STAGE = ".post"
DEFAULT_JOB_STAGE = "test"
JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")
RULE_WHEN = (*JOB_WHEN, "never")
TRIGGER_STRATEGIES = ("depend", "mirror")
MAX_SCRIPT_NESTING = 10
OUTPUT_BUDGET = 200_000
"""How many script lines, variables and needs all jobs of one file may add up to after
`extends` and `default:` are applied (a few templates shared by many jobs stay far below)."""

DEFAULT_KEYWORDS = frozenset(
    {
        "after_script", "artifacts", "before_script", "cache", "hooks", "id_tokens",
        "identity", "image", "interruptible", "retry", "services", "tags", "timeout",
    }
)  # fmt: skip
GLOBAL_DEFAULTS = ("image", "services", "cache", "before_script", "after_script")
"""Deprecated top-level keywords that GitLab still reads as `default:` ones."""
TOP_LEVEL_KEYWORDS = frozenset(
    {"stages", "variables", "default", "workflow", "include", "spec", "types", *GLOBAL_DEFAULTS}
)
MODELLED_JOB_KEYS = frozenset(
    {
        "stage", "needs", "when", "start_in", "allow_failure", "retry", "interruptible",
        "resource_group", "timeout", "variables", "inherit", "script", "before_script",
        "after_script", "trigger", "extends", "rules", "hooks", "environment", "only",
        "except", "parallel", "type",
    }
)  # fmt: skip
IGNORED_JOB_KEYS = frozenset(
    {
        "artifacts", "cache", "coverage", "dependencies", "id_tokens", "identity", "image",
        "manual_confirmation", "pages", "publish", "release", "secrets", "services", "tags",
    }
)  # fmt: skip
"""Keywords that cannot change which jobs run, when, or how often."""
MAX_PARALLEL = 200
"""GitLab's limit on the instances `parallel:` (a number or a matrix) may create."""
UNSUPPORTED_JOB_KEYS = {
    "run": "run: (CI/CD steps) replaces script:, which is what pdmpolicy reads",
    "inputs": "job inputs change the job's text when the pipeline is created",
}
KNOWN_JOB_KEYS = MODELLED_JOB_KEYS | IGNORED_JOB_KEYS | frozenset(UNSUPPORTED_JOB_KEYS)
RULE_KEYS = frozenset(
    {"if", "changes", "exists", "when", "allow_failure", "needs", "variables", "interruptible",
     "start_in"}
)  # fmt: skip
RULE_CONDITIONS = ("if", "changes", "exists")
CONDITIONAL_TOP_LEVEL = frozenset({"variables", "default", "workflow", "stages", *GLOBAL_DEFAULTS})
"""Top-level keywords whose value, set by an include under undecided `rules:`, changes
every job in the pipelines that have the include and none in the others."""
SEMANTICS = "docs/gitlab-ci-semantics.md"


def _fail(loc: Loc, message: str, hint: str = "") -> NoReturn:
    raise InputError.at(loc, message, hint)


def _text(node: Node, what: str) -> str:
    """A scalar that must be a string (GitLab's validation)."""
    if isinstance(node, Scalar) and isinstance(node.value, str):
        return node.value
    _fail(node.loc, f"{what} must be a string; found {describe(node)}", "quote it")


def _bool(node: Node, what: str) -> bool:
    if isinstance(node, Scalar) and isinstance(node.value, bool):
        return node.value
    _fail(node.loc, f"{what} must be true or false; found {describe(node)}")


def _map(node: Node, what: str) -> Map:
    if isinstance(node, Map):
        return node
    _fail(node.loc, f"{what} must be a mapping; found {describe(node)}")


def _flatten(node: Node, depth: int = 0) -> list[Node]:
    """Items of a list, nested lists (from !reference) spliced in, as GitLab does."""
    if not isinstance(node, Seq):
        return [node]
    if depth > MAX_SCRIPT_NESTING:
        _fail(node.loc, f"lists nested more than {MAX_SCRIPT_NESTING} levels deep")
    found: list[Node] = []
    for item in node.items:
        found.extend(_flatten(item, depth + 1) if isinstance(item, Seq) else [item])
    return found


@dataclass(frozen=True)
class _Inherit:
    default: bool | frozenset[str]
    variables: bool | tuple[str, ...]

    def takes_default(self, key: str) -> bool:
        if isinstance(self.default, bool):
            return self.default
        return key in self.default


def _not_fixed(written: str) -> bool:
    """A path with wildcards or variables, not one file."""
    return any(char in written for char in "*?[$")


@dataclass(frozen=True)
class MergedChild:
    """A child pipeline merged from several files: `trigger: include:` with a list."""

    name: str
    """What it merges, `ci/a.yml + template: Jobs/SAST.gitlab-ci.yml`: a merged child has
    no file name of its own."""
    include: Node
    loc: Loc


@dataclass
class _File:
    """One CI file (with the files it includes) being turned into a Pipeline."""

    file: Path
    root: Path
    vendored: Path | None = None
    api: IncludeSource | None = None
    path: str = ""
    unsupported: list[Unsupported] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)
    children: list[tuple[Path | MergedChild, Loc]] = field(default_factory=list)
    child_unknown: str | None = None
    """Why the child pipeline of the trigger job being read is not fully known."""
    merged_child: MergedChild | None = None
    """What this pipeline is when it is a child merged from several includes."""
    budget: int = OUTPUT_BUDGET
    partial: bool = False
    """Some includes were not read: names defined nowhere may be defined in them."""
    unknown: dict[str, str] = field(default_factory=dict)
    """Job or template -> why its definition is not fully known."""
    current_job: str | None = None
    extra_stages: list[str] = field(default_factory=list)
    instances: dict[str, list[tuple[str, tuple[Variable, ...]]]] = field(default_factory=dict)
    """`parallel:` jobs -> their instances (name, matrix variables)."""
    need_matrix: dict[tuple[str, Loc], list[dict[str, frozenset[str]]]] = field(
        default_factory=dict
    )
    """(job, need location) -> the `needs:parallel:matrix` filter of that need."""

    def unsupported_at(self, loc: Loc, what: str) -> None:
        self.unsupported.append(Unsupported(loc, what, self.current_job))

    def note(self, loc: Loc, what: str) -> None:
        self.notes.append(Note(loc, what))

    def charge(self, count: int, loc: Loc) -> None:
        self.budget -= count
        if self.budget < 0:
            _fail(
                loc,
                f"the jobs of this file expand to more than {OUTPUT_BUDGET} script lines, "
                "variables and needs",
                "extends and default: copy a template into every job; share less",
            )

    # --- the file -------------------------------------------------------------------

    def load(self) -> Pipeline:
        duplicates: list[tuple[Loc, str]] = []
        if self.merged_child is None:
            self.path, documents = read_documents(self.file, self.root, duplicates)
        else:
            child = self.merged_child
            self.path = child.name
            documents = [Map((Entry("include", child.loc, child.include),), child.loc)]
        merged = merge_includes(self.file, self.root, documents, self.path, self.vendored, self.api)
        self.partial = bool(merged.not_read)
        for loc, what in merged.unsupported:
            self.unsupported_at(loc, what)
        for loc, what in merged.notes:
            self.note(loc, what)
        self.warnings += [Note(loc, what) for loc, what in merged.not_read]
        if merged.not_read:
            # What was not read may set default: (retry, interruptible, ...) or redefine a
            # job of the same name, which GitLab deep-merges: no job's settings are certain.
            self.unsupported_at(
                merged.not_read[0][0],
                "includes that are not read may set default: or redefine jobs of the same "
                "name, so no job's settings are certain",
            )
        self.warnings += [Note(loc, what) for loc, what in duplicates + merged.duplicates]
        self._conditional_includes(merged)
        top, self.unknown = expand(merged.top, TOP_LEVEL_KEYWORDS, self.charge, self.partial)
        default = self._default(top)
        stages = self._stages(top)
        variables = self._variables(top.get("variables"), "variables")
        self._top_level_notes(top)
        job_names = [
            entry.key
            for entry in top.entries
            if entry.key not in TOP_LEVEL_KEYWORDS and not entry.key.startswith(".")
        ]
        problems: list[Problem] = []
        jobs: list[CiJob] = []
        for name in job_names:
            entry = top.entry(name)
            assert entry is not None
            self.current_job = name
            try:
                if not isinstance(entry.value, Map):
                    _fail(
                        entry.key_loc,
                        f"job '{name}' must be a mapping of keywords; found "
                        f"{describe(entry.value)}",
                        "hide it with a leading dot (.name) if it is not a job",
                    )
                job = self._job(name, entry.key_loc, entry.value, default, stages)
                job = self._conditional(job, merged)
                jobs.extend(self._parallel(job, entry.value))
            except InputError as exc:
                problems.extend(exc.problems)
        self.current_job = None
        if self.extra_stages:
            stages = (*stages[:-1], *self.extra_stages, stages[-1])
        jobs = self._instance_needs(jobs)
        jobs, need_problems = self._needs_present(jobs)
        problems.extend(need_problems)
        if problems:
            raise InputError(problems)
        return Pipeline(
            path=self.path,
            source=self.path,
            stages=stages,
            variables=variables,
            jobs=tuple(jobs),
            unsupported=tuple(self.unsupported),
            notes=tuple(self.notes),
            warnings=tuple(sorted(set(self.warnings), key=lambda n: (n.loc, n.what))),
        )

    def _conditional_includes(self, merged: Merged) -> None:
        """Includes whose `rules:` are not decided offline: a note each, and what they set
        for the whole pipeline (variables, default:, ...) is unmodelled, since it holds
        only in the pipelines that have them."""
        for loc, cached in merged.through_api:
            self.note(
                loc,
                f"read through GitLab's CI Lint API (GitLab's merge, kept in {cached}): "
                "includes under rules: inside it were decided by GitLab for a static check of "
                f"the project's default branch ({SEMANTICS} §14)",
            )
        for condition in merged.conditional:
            self.note(
                condition.loc,
                f"{condition.include} is included only when its rules: match "
                f"({condition.shown}), which is decided when a pipeline is created: the jobs "
                f"defined only there may or may not be in the pipeline ({SEMANTICS} §14)",
            )
        for key in sorted(CONDITIONAL_TOP_LEVEL):
            if key == "stages" and (self.path, ()) in merged.sources.get(key, []):
                continue  # the pipeline's own stages: replace every included list
            for shown, stack in self._conditional_sources(merged, key):
                self.unsupported_at(
                    stack[-1].loc,
                    f"{key}: of {shown}, set only in the pipelines that have "
                    f"{stack[-1].include} (under rules: {stack[-1].shown}),",
                )

    def _conditional_sources(self, merged: Merged, key: str) -> list[tuple[str, Stack]]:
        """The files that write `key` under include conditions, unless the same file also
        writes it unconditionally."""
        sources = merged.sources.get(key, [])
        always = {shown for shown, stack in sources if not stack}
        return [(shown, stack) for shown, stack in sources if stack and shown not in always]

    def _conditional(self, job: CiJob, merged: Merged) -> CiJob:
        """A job defined only in includes whose `rules:` are undecided may be absent; one
        also defined unconditionally has other settings with and without the include."""
        conditional = self._conditional_sources(merged, job.name)
        if not conditional:
            return job
        if len(conditional) < len(merged.sources.get(job.name, [])):
            shown, stack = conditional[0]
            self.unsupported_at(
                stack[-1].loc,
                f"job {job.name}, also defined in {shown} ({stack[-1].include}, under "
                f"rules: {stack[-1].shown}), with settings that differ with and without it,",
            )
            return job
        return possibly_absent(job, list(dict.fromkeys(stack for _, stack in conditional)))

    def _top_level_notes(self, top: Map) -> None:
        workflow = top.get("workflow")
        if workflow is not None:
            workflow_map = _map(workflow, "workflow")
            rules = workflow_map.get("rules")
            for rule in _flatten(rules) if rules is not None else []:
                if isinstance(rule, Map) and rule.get("variables") is not None:
                    variables = rule.entry("variables")
                    assert variables is not None
                    self.unsupported_at(
                        variables.key_loc,
                        "workflow:rules:variables set pipeline variables that beat every job's",
                    )
            entry = top.entry("workflow")
            assert entry is not None
            self.note(
                entry.key_loc,
                "workflow: is not modelled: the pipeline is analysed as if it was created, "
                "and any interruptible: true job as one that can be cancelled midway "
                f"(whatever auto_cancel says; {SEMANTICS} §7)",
            )

    def _stages(self, top: Map) -> tuple[str, ...]:
        node = top.get("stages")
        if node is None:
            node = top.get("types")  # the removed spelling of stages:, still read by GitLab
        if node is None:
            written: list[str] = list(DEFAULT_STAGES)
        else:
            items = _flatten(node) if isinstance(node, Seq) else [node]
            written = [_text(item, "a stage name") for item in items]
        # GitLab always puts .pre first and .post last, wherever (or whether) they are listed.
        middle = [s for s in dict.fromkeys(written) if s not in (PRE_STAGE, POST_STAGE)]
        return (PRE_STAGE, *middle, POST_STAGE)

    def _default(self, top: Map) -> Map:
        """`default:` with the deprecated top-level keywords under it (default: wins)."""
        entries = {}
        for key in GLOBAL_DEFAULTS:
            entry = top.entry(key)
            if entry is not None:
                entries[key] = entry
        node = top.get("default")
        if node is not None:
            default = _map(node, "default")
            for entry in default.entries:
                if entry.key not in DEFAULT_KEYWORDS:
                    self.unsupported_at(
                        entry.key_loc, f"default: has no keyword '{entry.key}' (GitLab rejects it)"
                    )
                    continue
                entries[entry.key] = entry
            timeout = default.entry("timeout")
            if timeout is not None:
                self.note(
                    timeout.key_loc,
                    "default: timeout has no effect in GitLab (gitlab-org/gitlab#213634): a "
                    "job without its own timeout gets the project's (60 minutes unless "
                    f"changed; {SEMANTICS} §2, §12)",
                )
        return Map(tuple(entries.values()), node.loc if node is not None else Loc(self.path))

    # --- values ---------------------------------------------------------------------

    def _variables(self, node: Node | None, what: str) -> tuple[Variable, ...]:
        if node is None:
            return ()
        mapping = _map(node, what)
        self.charge(mapping.size, mapping.loc)
        found = []
        for entry in mapping.entries:
            value = entry.value
            if isinstance(value, Map):
                for key in value:
                    if key not in ("value", "description", "expand", "options"):
                        self.unsupported_at(
                            value.loc, f"variable {entry.key} has an unknown key '{key}'"
                        )
                inner = value.get("value")
                if inner is None:
                    # Without `value`, the variable exists with an empty value (§3).
                    found.append(Variable(entry.key, "", entry.key_loc))
                    continue
                value = inner
            if not isinstance(value, Scalar):
                _fail(
                    value.loc,
                    f"the value of variable {entry.key} must be a string; found {describe(value)}",
                )
            text = ruby_text(value.value)
            found.append(Variable(entry.key, text, value.loc))
        return tuple(found)

    def _script(self, node: Node, what: str) -> list[ScriptLine]:
        self.charge(node.size, node.loc)  # before expanding: the size is known already
        lines = []
        for item in _flatten(node):
            if not isinstance(item, Scalar) or not isinstance(item.value, str):
                _fail(
                    item.loc,
                    f"{what} lines must be strings; found {describe(item)}",
                    "quote the line",
                )
            lines.append(ScriptLine(item.value, item.loc))
        return lines

    def _retry(self, node: Node) -> tuple[int, tuple[str, ...], Loc]:
        if isinstance(node, Scalar):
            value = node.value
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2:
                return value, (), node.loc
            _fail(node.loc, f"retry must be 0, 1 or 2; found {describe(node)}")
        mapping = _map(node, "retry")
        for key in mapping:
            if key not in ("max", "when", "exit_codes"):
                _fail(mapping.loc, f"retry has no key '{key}'", "use max, when or exit_codes")
        retry_max = mapping.get("max")
        count = 0
        loc = mapping.loc
        if retry_max is not None:
            count, _, loc = self._retry(retry_max)
        when: tuple[str, ...] = ()
        when_node = mapping.get("when")
        if when_node is not None:
            items = _flatten(when_node) if isinstance(when_node, Seq) else [when_node]
            when = tuple(_text(item, "retry:when") for item in items)
        exit_codes = mapping.entry("exit_codes")
        if exit_codes is not None and count > 0:
            self.note(
                exit_codes.key_loc,
                "retry:exit_codes narrows which failures are retried; counted as retrying "
                f"any failure, since the migration command may have run ({SEMANTICS} §1)",
            )
        return count, when, loc

    def _allow_failure(self, node: Node) -> bool:
        if isinstance(node, Scalar):
            return _bool(node, "allow_failure")
        mapping = _map(node, "allow_failure")
        if "exit_codes" not in mapping or len(mapping.entries) != 1:
            _fail(mapping.loc, "allow_failure must be true, false or {exit_codes: ...}")
        self.note(
            mapping.loc,
            "allow_failure: exit_codes is read as allow_failure: true: a failure with one of "
            f"those codes lets later jobs run ({SEMANTICS} §6)",
        )
        return True

    def _when(self, node: Node, allowed: tuple[str, ...], what: str) -> str:
        value = _text(node, what)
        if value not in allowed:
            _fail(node.loc, f"{what} must be one of {', '.join(allowed)}; found '{value}'")
        return value

    def _inherit(self, node: Node | None, locs: dict[str, Loc]) -> _Inherit:
        if node is None:
            return _Inherit(True, True)
        mapping = _map(node, "inherit")
        default: bool | frozenset[str] = True
        variables: bool | tuple[str, ...] = True
        for entry in mapping.entries:
            value = entry.value
            if entry.key not in ("default", "variables"):
                _fail(entry.key_loc, f"inherit has no key '{entry.key}'", "use default, variables")
            locs[f"inherit_{entry.key}"] = value.loc
            if isinstance(value, Seq):
                items = _flatten(value)
                listed = tuple(_text(item, f"inherit:{entry.key}") for item in items)
                if entry.key == "default":
                    for item, name in zip(items, listed, strict=True):
                        if name not in DEFAULT_KEYWORDS:
                            _fail(item.loc, f"'{name}' is not a default: keyword")
                    default = frozenset(listed)
                else:
                    variables = listed
            elif entry.key == "default":
                default = _bool(value, "inherit:default")
            else:
                variables = _bool(value, "inherit:variables")
        return _Inherit(default, variables)

    def _needs(self, node: Node) -> tuple[Need, ...]:
        if isinstance(node, Map):
            # GitLab's parser takes a mapping as a list of that one need (`needs: {job: a}`).
            node = Seq((node,), node.loc, node.size + 1)
        if not isinstance(node, Seq):
            _fail(node.loc, f"needs must be a list; found {describe(node)}")
        self.charge(node.size, node.loc)
        needs = []
        items = _flatten(node)
        for item in items:
            if isinstance(item, Scalar):
                needs.append(Need(_text(item, "a need"), False, item.loc))
                continue
            mapping = _map(item, "a need")
            cross = [key for key in ("project", "pipeline") if key in mapping]
            if cross:
                self.unsupported_at(
                    item.loc,
                    f"needs:{cross[0]} waits for a job of another pipeline, which is not modelled",
                )
                continue
            job = mapping.get("job")
            if job is None:
                _fail(item.loc, "a need written as a mapping names its job: {job: name}")
            parallel = mapping.get("parallel")
            if parallel is not None and self.current_job is not None:
                self.need_matrix[(self.current_job, job.loc)] = self._matrix_filter(parallel)
            optional_node = mapping.get("optional")
            optional = (
                _bool(optional_node, "needs:optional") if optional_node is not None else False
            )
            needs.append(Need(_text(job, "needs:job"), optional, job.loc))
        return tuple(needs)

    # --- jobs -----------------------------------------------------------------------

    def _job(self, name: str, loc: Loc, job: Map, default: Map, stages: tuple[str, ...]) -> CiJob:
        locs: dict[str, Loc] = {}

        def written(key: str) -> Node | None:
            value = job.get(key)
            if value is not None:
                locs[key] = value.loc
            return value

        for entry in job.entries:
            key = entry.key
            if key in UNSUPPORTED_JOB_KEYS and not (
                isinstance(entry.value, Scalar) and entry.value.value is None
            ):
                self.unsupported_at(entry.key_loc, f"{key}: {UNSUPPORTED_JOB_KEYS[key]}")
            elif key not in KNOWN_JOB_KEYS:
                self.unsupported_at(
                    entry.key_loc,
                    f"'{key}' is not a GitLab job keyword (GitLab rejects the file)",
                )

        inherit = self._inherit(written("inherit"), locs)

        def inherited(key: str) -> Node | None:
            """The job's own value, else `default:`'s unless `inherit` excludes it."""
            own = written(key)
            if own is not None:
                return own
            if inherit.takes_default(key):
                value = default.get(key)
                if value is not None:
                    locs[key] = value.loc
                return value
            return None

        incomplete = self.unknown.get(name)
        trigger_node = written("trigger")
        script_node = written("script")
        if trigger_node is not None and script_node is not None:
            _fail(loc, f"job '{name}' has both script: and trigger:", "a job has one of them")
        if trigger_node is None and script_node is None and job.get("run") is None:
            if not self.partial:
                _fail(
                    loc,
                    f"job '{name}' has no script: or trigger:",
                    "GitLab requires one (extends: counts, if the template has it)",
                )
            # It overrides a job of an include that was not read (`sast: {variables: ..}`).
            incomplete = incomplete or (
                f"job '{name}' has no script: of its own: it completes a job of an include "
                "that was not read"
            )

        stage_node = written("stage") or written("type")  # `type:` is the old spelling
        stage = _text(stage_node, "stage") if stage_node is not None else DEFAULT_JOB_STAGE
        if stage not in stages and stage not in self.extra_stages:
            if not self.partial:
                _fail(
                    stage_node.loc if stage_node is not None else loc,
                    f"job '{name}' is in stage '{stage}', which is not in stages:",
                    "stages here: " + ", ".join(stages),
                )
            # stages: may come from an include that was not read; its order is unknown.
            self.extra_stages.append(stage)
        if stage in self.extra_stages:
            incomplete = incomplete or (
                f"stage '{stage}' is not in the stages: read; an include that was not read "
                "may define it, so the job's place in the order is unknown"
            )

        when_node = written("when")
        when = self._when(when_node, JOB_WHEN, "when") if when_node is not None else "on_success"
        start_in_node = written("start_in")
        start_in = _text(start_in_node, "start_in") if start_in_node is not None else None
        if when == "delayed" and start_in is None and job.get("rules") is None:
            _fail(when_node.loc if when_node is not None else loc, "when: delayed needs start_in:")
        if start_in is not None and when != "delayed":
            assert start_in_node is not None
            _fail(start_in_node.loc, "start_in: is only for when: delayed")

        allow_node = written("allow_failure")
        if allow_node is not None:
            allow_failure = self._allow_failure(allow_node)
        else:
            allow_failure = when == "manual"  # GitLab's default for job-level manual jobs
            if allow_failure and when_node is not None:
                locs["allow_failure"] = when_node.loc

        retry = 0
        retry_when: tuple[str, ...] = ()
        # default: keywords are not trigger-job keywords; a trigger job's own retry is kept.
        retry_node = inherited("retry") if trigger_node is None else written("retry")
        if retry_node is not None:
            retry, retry_when, locs["retry"] = self._retry(retry_node)

        interruptible_node = inherited("interruptible")
        interruptible = (
            _bool(interruptible_node, "interruptible") if interruptible_node is not None else False
        )

        group_node = written("resource_group")
        resource_group = _text(group_node, "resource_group") if group_node is not None else None
        timeout_node = written("timeout")  # default: timeout has no effect (§2)
        timeout = None
        if timeout_node is not None:
            if not isinstance(timeout_node, Scalar) or timeout_node.value is None:
                _fail(timeout_node.loc, "timeout must be a duration such as 3h 30m")
            timeout = ruby_text(timeout_node.value)

        variables = self._variables(written("variables"), f"variables of job {name}")
        needs_node = written("needs")
        needs = self._needs(needs_node) if needs_node is not None else None

        script: list[ScriptLine] = []
        trigger = None
        if trigger_node is not None:
            self.child_unknown = None
            trigger = self._trigger(trigger_node)
            if trigger is None:
                incomplete = incomplete or (
                    f"job '{name}' starts a downstream pipeline whose content is not read"
                )
            incomplete = incomplete or self.child_unknown
        else:
            before = inherited("before_script")
            if before is not None:
                script += self._script(before, "before_script")
            if script_node is not None:
                script += self._script(script_node, "script")
            locs["script"] = script_node.loc if script_node is not None else loc
            self._scan_extra_scripts(name, inherited("after_script"), inherited("hooks"))
        self._environment(job.get("environment"))

        rules: tuple[Rule, ...] = ()
        choices: tuple[Choice, ...] = ()
        rule_cases: tuple[RuleCase, ...] = ()
        rules_entry = job.entry("rules")
        rules_node = written("rules")
        if rules_node is not None and rules_entry is not None:
            rules, choices, rule_interruptible, rule_start_in, rule_cases = self._rules(
                rules_node, rules_entry.key_loc, when, start_in, allow_node, allow_failure
            )
            if rule_interruptible is not None and not interruptible:
                interruptible = True
                locs["interruptible"] = rule_interruptible
            start_in = start_in or rule_start_in
        else:
            choices = self._only_except(job, when, allow_failure) or choices

        return CiJob(
            name=name,
            stage=stage,
            needs=needs,
            when=when,
            allow_failure=allow_failure,
            retry=retry,
            interruptible=interruptible,
            resource_group=resource_group,
            timeout=timeout,
            variables=variables,
            inherit_default=inherit.default is not False,
            inherit_variables=inherit.variables,
            script=tuple(script),
            trigger=trigger,
            rules=rules,
            loc=loc,
            locs=MappingProxyType(locs),
            retry_when=retry_when,
            choices=choices,
            rule_cases=rule_cases,
            start_in=start_in,
            incomplete=incomplete,
        )

    def _only_except(self, job: Map, when: str, allow_failure: bool) -> tuple[Choice, ...]:
        """`only`/`except` (refs, variables, changes, kubernetes) decide, when the pipeline
        is created, whether the job is added: like `rules:`, both outcomes are choices."""
        for key in ("only", "except"):
            entry = job.entry(key)
            if entry is not None and job.get(key) is not None:
                return (
                    Choice(when, allow_failure, entry.key_loc),
                    Choice("never", False, entry.key_loc),
                )
        return ()

    # --- parallel ---------------------------------------------------------------------

    def _parallel(self, job: CiJob, written: Map) -> list[CiJob]:
        """The instances GitLab creates for `parallel:`, named as GitLab names them:
        `name 1/3` for a number, `name: [v1, v2]` for a matrix (values in written order),
        each with its matrix variables."""
        node = written.get("parallel")
        if node is None:
            return [job]
        instances: list[tuple[str, tuple[Variable, ...]]] = []
        if isinstance(node, Scalar):
            count = node.value
            if not isinstance(count, int) or isinstance(count, bool):
                _fail(node.loc, f"parallel must be a number or matrix:; found {describe(node)}")
            if not 1 <= count <= MAX_PARALLEL:
                _fail(node.loc, f"parallel must be between 1 and {MAX_PARALLEL}")
            instances = [(f"{job.name} {i}/{count}", ()) for i in range(1, count + 1)]
        else:
            matrix = _map(node, "parallel").get("matrix")
            if matrix is None:
                _fail(node.loc, "parallel as a mapping needs matrix:")
            for item in _flatten(matrix):
                combination = _map(item, "a parallel:matrix entry")
                axes: list[list[Variable]] = []
                for entry in combination.entries:
                    values = (
                        _flatten(entry.value) if isinstance(entry.value, Seq) else [entry.value]
                    )
                    axis = []
                    for value in values:
                        if not isinstance(value, Scalar):
                            _fail(value.loc, f"matrix values are strings; found {describe(value)}")
                        axis.append(Variable(entry.key, ruby_text(value.value), value.loc))
                    axes.append(axis)
                for product in itertools.product(*axes):
                    shown = ", ".join(v.value for v in product)
                    instances.append((f"{job.name}: [{shown}]", tuple(product)))
                    if len(instances) > MAX_PARALLEL:
                        _fail(node.loc, f"parallel:matrix creates more than {MAX_PARALLEL} jobs")
        self.instances[job.name] = instances
        return [
            replace(job, name=instance, variables=(*job.variables, *extra))
            for instance, extra in instances
        ]

    def _instance_needs(self, jobs: list[CiJob]) -> list[CiJob]:
        """A need on a `parallel:` job waits for all its instances, or for those its
        `parallel:matrix` names."""
        if not self.instances:
            return jobs
        result = []
        for job in jobs:
            if not job.needs:
                result.append(job)
                continue
            base = job.name
            for parent, instances in self.instances.items():
                if any(job.name == instance for instance, _ in instances):
                    base = parent
            needs: list[Need] = []
            for need in job.needs:
                named = self.instances.get(need.job)
                if named is None:
                    needs.append(need)
                    continue
                filters = self.need_matrix.get((base, need.loc))
                for instance, variables in named:
                    values = {v.name: v.value for v in variables}
                    if filters is None or any(
                        all(values.get(k) in allowed for k, allowed in f.items()) for f in filters
                    ):
                        needs.append(Need(instance, need.optional, need.loc))
            result.append(replace(job, needs=tuple(needs)))
        return result

    def _scan_extra_scripts(self, name: str, after: Node | None, hooks: Node | None) -> None:
        """after_script and hooks are not part of the attempt the model knows; they are
        ignored unless they call k-ctl or the VM tooling, which is then unsupported."""
        sources: list[tuple[str, Node]] = []
        if after is not None:
            sources.append(("after_script", after))
        if hooks is not None:
            hook = _map(hooks, "hooks").get("pre_get_sources_script")
            if hook is not None:
                sources.append(("hooks:pre_get_sources_script", hook))
        for what, node in sources:
            lines = self._script(node, what)
            try:
                found = commands([(line.text, line.loc) for line in lines])
            except ShellSyntaxError as exc:
                self.unsupported_at(node.loc, f"{what} of job {name} cannot be read: {exc}")
                continue
            for command in found:
                if command.program in (names.KCTL, names.VM_TOOL):
                    self.unsupported_at(
                        command.loc,
                        f"{what} of job {name} calls {command.program}; {what} runs even "
                        "after the script failed, which the model does not represent",
                    )
                    break

    def _environment(self, node: Node | None) -> None:
        if isinstance(node, Map):
            on_stop = node.entry("on_stop")
            if on_stop is not None:
                self.unsupported_at(
                    on_stop.key_loc,
                    "environment:on_stop runs another job when the environment stops, "
                    "outside this pipeline's order",
                )

    def _rules(
        self,
        node: Node,
        key_loc: Loc,
        job_when: str,
        job_start_in: str | None,
        job_allow: Node | None,
        job_allow_failure: bool,
    ) -> tuple[tuple[Rule, ...], tuple[Choice, ...], Loc | None, str | None, tuple[RuleCase, ...]]:
        """Every outcome `rules:` can give the job, one Choice each (conditions are unknown),
        and each reachable rule as a `RuleCase` (its `if:` and the outcome it gives), which
        the prover reads to correlate rules that test the same pipeline variables.

        A rule after an unconditional one is never reached; without an unconditional rule,
        "no rule matched" (the job is not added) is an outcome too.
        """
        if not isinstance(node, Seq):
            _fail(node.loc, f"rules must be a list; found {describe(node)}")
        rules: list[Rule] = []
        choices: dict[tuple[str, bool], Choice] = {}
        cases: list[RuleCase] = []
        interruptible: Loc | None = None
        start_in: str | None = None
        reachable = True
        for item in _flatten(node):
            rule = _map(item, "a rule")
            for key in rule:
                if key not in RULE_KEYS:
                    _fail(item.loc, f"a rule has no key '{key}'", ", ".join(sorted(RULE_KEYS)))
            condition = rule.get("if")
            if condition is not None:
                rules.append(Rule(_text(condition, "rules:if")))
            when_node = rule.get("when")
            when = (
                self._when(when_node, RULE_WHEN, "rules:when")
                if when_node is not None
                else job_when
            )
            allow_node = rule.get("allow_failure")
            if allow_node is not None:
                allow = self._allow_failure(allow_node)
            elif job_allow is not None:
                allow = job_allow_failure
            else:
                allow = job_when == "manual"  # GitLab's default follows the job-level when
            if when == "delayed" and rule.get("start_in") is None and job_start_in is None:
                _fail(item.loc, "a rule with when: delayed needs start_in:")
            if not reachable:
                continue
            choice_loc = when_node.loc if when_node is not None else item.loc
            outcome = ("never", False) if when == "never" else (when, allow)
            choices.setdefault(outcome, Choice(outcome[0], outcome[1], choice_loc))
            cases.append(
                RuleCase(
                    _text(condition, "rules:if") if condition is not None else None,
                    other=any(key in rule for key in RULE_CONDITIONS if key != "if"),
                    choice=list(choices).index(outcome),
                )
            )
            if when != "never":
                for key, what in (
                    ("needs", "rules:needs replaces the job's needs for one rule"),
                    ("variables", "rules:variables change the job's variables for one rule"),
                ):
                    entry = rule.entry(key)
                    if entry is not None:
                        self.unsupported_at(entry.key_loc, what)
                flag = rule.get("interruptible")
                if flag is not None and _bool(flag, "rules:interruptible"):
                    interruptible = interruptible or flag.loc
                rule_start = rule.get("start_in")
                if when == "delayed" and rule_start is not None and start_in is None:
                    start_in = _text(rule_start, "rules:start_in")
            if not any(key in rule for key in RULE_CONDITIONS):
                reachable = False
        if reachable:  # no rule matched: the job is not added
            choices.setdefault(("never", False), Choice("never", False, key_loc))
        return tuple(rules), tuple(choices.values()), interruptible, start_in, tuple(cases)

    def _trigger(self, node: Node) -> Trigger | None:
        if isinstance(node, Scalar):
            self.unsupported_at(node.loc, "trigger: <project> starts a pipeline in another project")
            return None
        mapping = _map(node, "trigger")
        for entry in mapping.entries:
            if entry.key not in ("include", "project", "branch", "strategy", "forward", "inputs"):
                _fail(entry.key_loc, f"trigger has no key '{entry.key}'")
        if mapping.get("project") is not None:
            self.unsupported_at(mapping.loc, "trigger:project starts a pipeline in another project")
            return None
        include_node = mapping.get("include")
        if include_node is None:
            _fail(mapping.loc, "trigger needs include: (a child pipeline file) or project:")
        include, self.child_unknown = self._child(include_node)
        strategy_node = mapping.get("strategy")
        strategy = None
        if strategy_node is not None:
            strategy = _text(strategy_node, "trigger:strategy")
            if strategy not in TRIGGER_STRATEGIES:
                _fail(strategy_node.loc, "trigger:strategy must be depend or mirror")
        forward_yaml, forward_pipeline = True, False
        forward_node = mapping.get("forward")
        if forward_node is not None:
            forward = _map(forward_node, "trigger:forward")
            for entry in forward.entries:
                if entry.key == "yaml_variables":
                    forward_yaml = _bool(entry.value, "trigger:forward:yaml_variables")
                elif entry.key == "pipeline_variables":
                    forward_pipeline = _bool(entry.value, "trigger:forward:pipeline_variables")
                else:
                    _fail(entry.key_loc, f"trigger:forward has no key '{entry.key}'")
        return Trigger(include, strategy, forward_yaml, forward_pipeline)

    def _child(self, node: Node) -> tuple[str, str | None]:
        """The child pipeline of `trigger:include` (its name), and why its content is not
        fully known (None: every file of it is read).

        One local file is read as a pipeline file. Several files (local, `template`,
        `project`, `artifact`, ...) make one child pipeline, merged as a file with those
        includes would be (GitLab's `trigger:include` takes the same include forms); the
        files that cannot be read offline make it partial, as top-level includes do."""
        items = _flatten(node) if isinstance(node, Seq) else [node]
        if len(items) == 1:
            item = items[0]
            if isinstance(item, Map) and item.get("local") and set(item) <= {"local", "inputs"}:
                item = item.entry("local").value  # type: ignore[union-attr]
            if isinstance(item, Scalar) and isinstance(item.value, str):
                written = item.value
                if not _not_fixed(written):
                    return self._child_file(written, item.loc), None
        if not items:
            _fail(node.loc, "trigger:include names no file")
        not_read = []
        shown_items = []
        for item in items:
            if isinstance(item, Scalar) and isinstance(item.value, str):
                shown_items.append(item.value.lstrip("/"))
                if "$" in item.value or re.match(r"^https?://", item.value):
                    not_read.append(f"'{item.value}'")
                continue
            mapping = _map(item, "a trigger:include entry")
            local = mapping.get("local")
            if local is not None:
                written = _text(local, "trigger:include:local")
                shown_items.append(written.lstrip("/"))
                if "$" in written:
                    not_read.append(f"'{written}'")
                continue
            kinds = [key for key in mapping if key not in ("inputs", "job", "file", "ref")]
            value = mapping.get(kinds[0]) if kinds else None
            written = ruby_text(value.value) if isinstance(value, Scalar) else "?"
            shown = f"{kinds[0] if kinds else 'include'}: {written}"
            files = mapping.get("file")
            if files is not None:
                shown += " file " + ", ".join(
                    ruby_text(f.value) for f in _flatten(files) if isinstance(f, Scalar)
                )
            shown_items.append(shown)
            not_read.append(shown)
        # Named by what it merges, so the same list triggered again (a child that triggers
        # its parent's list) is the same child, read once.
        name = " + ".join(shown_items)
        self.children.append((MergedChild(name, node, node.loc), node.loc))
        reason = None
        if not_read:
            reason = (
                f"job '{self.current_job}' starts a child pipeline merged from includes "
                f"that are not all read ({'; '.join(not_read)})"
            )
        return name, reason

    def _child_file(self, written: str, loc: Loc) -> str:
        child = self.root / written.lstrip("/")
        try:
            resolved = child.resolve()
            resolved.relative_to(self.root.resolve())
        except (OSError, ValueError):
            _fail(loc, f"child pipeline '{written}' is outside the repository")
        if not child.is_file():
            _fail(
                loc,
                f"child pipeline file '{written}' does not exist",
                "trigger:include names a file relative to the repository root",
            )
        self.children.append((child, loc))
        return display_path(child, self.root)

    def _matrix_filter(self, node: Node) -> list[dict[str, frozenset[str]]]:
        """`needs:parallel:matrix`: the instances a need names, as variable values."""
        matrix = _map(node, "needs:parallel").get("matrix")
        if matrix is None:
            _fail(node.loc, "needs:parallel needs matrix:")
        filters = []
        for item in _flatten(matrix):
            combination = _map(item, "a needs:parallel:matrix entry")
            filters.append(
                {
                    entry.key: frozenset(
                        ruby_text(v.value)
                        for v in (
                            _flatten(entry.value) if isinstance(entry.value, Seq) else [entry.value]
                        )
                        if isinstance(v, Scalar)
                    )
                    for entry in combination.entries
                }
            )
        return filters

    def _needs_present(self, jobs: list[CiJob]) -> tuple[list[CiJob], list[Problem]]:
        """A need on a job that does not exist is an error, as in GitLab; in a partial
        pipeline the job may come from an include that was not read: the need is kept as
        optional (no ordering is assumed) and the job is incomplete."""
        present = {job.name for job in jobs}
        problems = []
        result = []
        for job in jobs:
            missing = [n for n in job.needs or () if n.job not in present and not n.optional]
            if not missing:
                result.append(job)
                continue
            if not self.partial:
                problems += [
                    Problem(
                        need.loc,
                        f"job '{job.name}' needs '{need.job}', which is not a job of this pipeline",
                        "GitLab refuses to create the pipeline; mark it optional: true if it "
                        "may be absent",
                    )
                    for need in missing
                ]
                continue
            needs = tuple(replace(n, optional=True) if n in missing else n for n in job.needs or ())
            reason = job.incomplete or (
                f"job '{job.name}' needs '{missing[0].job}', which is defined in none of the "
                "files read (an include that was not read may define it)"
            )
            result.append(replace(job, needs=needs, incomplete=reason))
        return result, problems


def load_pipelines(
    file: Path, root: Path, vendored: Path | None = None, api: IncludeSource | None = None
) -> tuple[Pipeline, ...]:
    """The pipeline of `file`, then every child pipeline it reaches through
    `trigger: include:` (depth first, each file once). Raises InputError on bad input.

    A child that triggers one of its own parents is read once, with a warning: GitLab
    accepts the file (a pipeline whose jobs trigger it again, usually under other `rules:`)
    and stops nesting at its depth limit when the pipeline runs.

    `vendored`: a directory of copies of includes that are not in this repository
    (`include.merge_includes` says how it is laid out); `api`: GitLab's API, which reads
    the includes that have no copy (`api.CiLint`)."""
    order: list[Pipeline] = []
    seen: set[Path | str] = set()
    cycles: dict[str, list[Note]] = {}

    def visit(
        current: Path | MergedChild,
        chain: tuple[Path | str, ...],
        names_: tuple[str, ...],
        via: Loc,
    ) -> None:
        if isinstance(current, MergedChild):
            key: Path | str = current.name
            shown_current = current.name
            loader = _File(root, root, vendored, api, merged_child=current)
        else:
            key = current.resolve()
            shown_current = display_path(current, root)
            loader = _File(current, root, vendored, api)
        if key in chain:
            shown = " -> ".join([*names_, shown_current])
            cycles.setdefault(names_[-1], []).append(
                Note(
                    via,
                    f"trigger includes go round: {shown}; each file is read once (GitLab "
                    "nests child pipelines at most two levels deep)",
                )
            )
            return
        if key in seen:
            return
        seen.add(key)
        pipeline = loader.load()
        order.append(pipeline)
        for child, loc in loader.children:
            visit(child, (*chain, key), (*names_, pipeline.path), loc)

    visit(file, (), (), Loc(display_path(file, root)))
    return tuple(
        replace(p, warnings=(*p.warnings, *cycles[p.path])) if p.path in cycles else p
        for p in order
    )
