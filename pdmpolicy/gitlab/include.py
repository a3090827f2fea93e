"""`include:`: the files a CI configuration is merged from, read as GitLab reads them.

GitLab (`Config::External::Processor`) reads each include in the order written, expands
the includes of every included file first (nested includes), then deep-merges: the
included files in order, later ones over earlier ones, and the including file over all of
them (docs/gitlab-ci-semantics.md §14). Only `include: local` (and a bare path) names a
file of this repository; `project`, `remote`, `template`, `component` and `artifact` name
content that cannot be read offline. Those are listed in `Merged.not_read` and make the
pipeline *partial*: what refers into them is kept as unknown, never refused.

Limits are GitLab's: at most 150 includes in all, nested at most 100 levels; a file
included twice (same file, same inputs) is read once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import display_path
from pdmpolicy.gitlab.expand import deep_merge
from pdmpolicy.gitlab.inputs import Inputs, header_inputs, interpolate
from pdmpolicy.gitlab.yaml import Map, Node, Scalar, Seq, describe, read_documents
from pdmpolicy.prover.conditions import constant_condition

MAX_INCLUDES = 150
"""GitLab's default `ci_max_includes`: includes a pipeline may have, nested ones counted."""
MAX_NESTING = 100
"""GitLab's limit on nested includes."""
MAX_WILDCARD_FILES = 1000
"""Files one wildcard may scan for; a repository walk is bounded."""
REMOTE_KINDS = ("project", "remote", "template", "component", "artifact")
INCLUDE_KEYS = frozenset({"local", *REMOTE_KINDS, "file", "ref", "rules", "inputs", "cache",
                          "integrity", "job"})  # fmt: skip


class IncludeSource(Protocol):
    """Where includes that are not in this repository can be read (`api.CiLint`)."""

    def read(self, include: dict[str, Any], loc: Loc) -> Path | str:
        """A file holding the include's configuration, or why it cannot be read."""
        ...


def plain(node: Node) -> Any:
    """A node as plain data (JSON), as GitLab would read it."""
    if isinstance(node, Map):
        return {entry.key: plain(entry.value) for entry in node.entries}
    if isinstance(node, Seq):
        return [plain(item) for item in node.items]
    if isinstance(node, Scalar):
        value = node.value
        return value if value is None or isinstance(value, (str, int, float, bool)) else node.text
    return describe(node)


@dataclass(frozen=True)
class IncludeCase:
    """One entry of an include's `rules:` that is not decided offline."""

    if_: str | None
    """The `if:` expression; None when the rule has none (or it is decided true)."""
    other: bool
    """The rule also has `changes:`, or an `exists:` not known offline (another
    project's files, a path from variables): matched or not is unknown."""
    included: bool
    """What the rule decides when it matches (`when: never`: not included)."""


@dataclass(frozen=True)
class IncludeCondition:
    """An include whose `rules:` are decided when the pipeline is created, on variables
    that are not known offline: the file may or may not be part of the pipeline."""

    loc: Loc
    include: str
    """The include as written, for messages: `include: local 'ci/deploy.yml'`."""
    cases: tuple[IncludeCase, ...]
    """Its undecided rules in order; GitLab takes the first that matches, and leaves the
    file out when none does."""

    @property
    def shown(self) -> str:
        parts = []
        for case in self.cases:
            text = f"if: {case.if_}" if case.if_ is not None else "(always)"
            if case.other:
                text += " with changes:"
            parts.append(text if case.included else f"{text} (when: never)")
        return "; ".join(parts)


Stack = tuple[IncludeCondition, ...]
"""The conditions of the includes a definition was read through, outermost first; ():
it is part of the pipeline whatever the variables."""


@dataclass
class Merged:
    """The configuration with its includes merged in, and what could not be read."""

    top: Map
    not_read: list[tuple[Loc, str]] = field(default_factory=list)
    notes: list[tuple[Loc, str]] = field(default_factory=list)
    unsupported: list[tuple[Loc, str]] = field(default_factory=list)
    duplicates: list[tuple[Loc, str]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    """Display paths of the local files merged in, in the order read."""
    sources: dict[str, list[tuple[str, Stack]]] = field(default_factory=dict)
    """Top-level key (job, template, `variables`, ...) -> each file that writes it, with
    the conditions of the includes that file was read through."""
    conditional: list[IncludeCondition] = field(default_factory=list)
    """Includes read although their `rules:` are not decided offline."""
    through_api: list[tuple[Loc, str]] = field(default_factory=list)
    """Includes read through GitLab's API: where, and the cached file read."""


def _fail(loc: Loc, message: str, hint: str = "") -> InputError:
    return InputError.at(loc, message, hint)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """GitLab's wildcard: `*` within one directory, `**` across directories."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):  # `**/` also matches no directory at all
                out[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass
class _Reader:
    root: Path
    merged: Merged
    vendored: Path | None = None
    """A directory of copies of includes that are not in this repository."""
    api: IncludeSource | None = None
    """GitLab's API, to read includes that are not in this repository."""
    api_reason: str = ""
    count: int = 0
    seen: set[tuple[Path, str]] = field(default_factory=set)
    recording: list[tuple[int, list[tuple[str, str, Stack]]]] = field(default_factory=list)
    files: dict[Path, list[str]] = field(default_factory=dict)
    base: Path | None = None
    """What `include: local` is relative to: the repository, or the vendored copy of the
    project whose file is being read (GitLab reads a project file's local includes from that
    project)."""
    stack: Stack = ()
    """The conditions of the includes being read (nested ones inside)."""
    keys: dict[tuple[Path, str], list[tuple[str, str, Stack]]] = field(default_factory=dict)
    """A file read once -> (key, file, conditions inside it) of everything it defines, so
    a second include of it, under other rules, adds its conditions."""

    @property
    def here(self) -> Path:
        return self.base if self.base is not None else self.root

    # --- one file ---------------------------------------------------------------------

    def file(self, path: Path, inputs: Inputs | None, via: Loc, depth: int) -> Map | None:
        """An included local file, its own includes merged in (None: included already)."""
        key = (path.resolve(), repr(sorted((k, repr(v)) for k, v in (inputs or {}).items())))
        if key in self.seen:
            # Read once, as GitLab does; what it defines is there under this include's
            # conditions too.
            for name, shown, inner in list(self.keys.get(key, [])):
                self.source(name, shown, (*self.stack, *inner))
            return None
        self.seen.add(key)
        shown, documents = read_documents(path, self.root, self.merged.duplicates)
        self.merged.read.append(shown)
        top = self.document(shown, documents, inputs, via, root_file=False)
        outer = len(self.stack)
        recorded: list[tuple[str, str, Stack]] = []
        self.keys[key] = recorded
        self.recording.append((outer, recorded))
        try:
            return self.expand(top, depth, shown)
        finally:
            self.recording.pop()

    def source(self, name: str, shown: str, stack: Stack) -> None:
        """`shown` writes the top-level key `name`, read under `stack`."""
        self.merged.sources.setdefault(name, []).append((shown, stack))
        for outer, recorded in self.recording:
            recorded.append((name, shown, stack[outer:]))

    def document(
        self,
        shown: str,
        documents: list[Node | None],
        inputs: Inputs | None,
        via: Loc,
        *,
        root_file: bool,
    ) -> Map:
        """The configuration document of a file: the `spec:` header read, inputs applied."""
        present = [doc for doc in documents if doc is not None]
        spec: Map | None = None
        if len(present) == 2 and isinstance(present[0], Map) and "spec" in present[0]:
            spec = present[0]
            present = present[1:]
        if not present:
            raise _fail(Loc(shown), "file is empty", "expected a GitLab CI configuration")
        if len(present) > 1:
            raise _fail(
                present[1].loc,
                "more than one YAML document",
                "a CI file holds one configuration (and, first, an optional spec: header)",
            )
        top = present[0]
        if not isinstance(top, Map):
            raise _fail(
                top.loc, f"expected a mapping at the top of the file, found {describe(top)}"
            )
        if spec is None:
            if inputs:
                raise _fail(via, "inputs: given to a file that has no spec: inputs header")
            return top
        values, unknown = header_inputs(spec, inputs, via, root_file=root_file)
        for loc, what in unknown:
            self.merged.unsupported.append((loc, what))
        return interpolate(top, values)

    def expand(self, top: Map, depth: int, shown: str) -> Map:
        """`top` with its includes merged under it (GitLab's order and precedence)."""
        for own in top.entries:
            if own.key not in ("include", "spec"):
                self.source(own.key, shown, self.stack)
        entry = top.entry("include")
        if entry is None or (isinstance(entry.value, Scalar) and entry.value.value is None):
            return top
        if depth >= MAX_NESTING:
            raise _fail(
                entry.key_loc,
                f"includes are nested more than {MAX_NESTING} levels deep",
                "GitLab stops at 100 levels of nested includes",
            )
        rest = Map(
            tuple(e for e in top.entries if e.key != "include"),
            top.loc,
            top.size - entry.value.size,
        )
        merged: Map = Map((), top.loc)
        for item in self.items(entry.value):
            for included in self.item(item, depth):
                merged = deep_merge(merged, included)
        return deep_merge(merged, rest) if merged.entries else rest

    def items(self, node: Node) -> list[Node]:
        if isinstance(node, Seq):
            found: list[Node] = []
            for item in node.items:
                found.extend(item.items if isinstance(item, Seq) else [item])
            return found
        return [node]

    # --- one include ------------------------------------------------------------------

    def item(self, item: Node, depth: int) -> list[Map]:
        if isinstance(item, Scalar) and isinstance(item.value, str):
            text = item.value
            if re.match(r"^https?://", text):
                through = self.through_api({"remote": text}, item.loc, depth)
                if through is not None:
                    return through
                self.not_read(item.loc, f"include: remote '{text}'", self.api_reason)
                return []
            return self.local(text, item.loc, None, depth)
        if not isinstance(item, Map):
            raise _fail(item.loc, f"an include is a path or a mapping; found {describe(item)}")
        for entry in item.entries:
            if entry.key not in INCLUDE_KEYS:
                raise _fail(entry.key_loc, f"include has no key '{entry.key}'")
        rules = item.get("rules")
        if rules is not None:
            decided = self.included(rules, item)
            if decided is False:
                return []
            if isinstance(decided, IncludeCondition):
                self.merged.conditional.append(decided)
                outer = self.stack
                self.stack = (*outer, decided)
                try:
                    return self.unconditional_item(item, depth)
                finally:
                    self.stack = outer
        return self.unconditional_item(item, depth)

    def unconditional_item(self, item: Map, depth: int) -> list[Map]:
        inputs = self.inputs(item.get("inputs"))
        local = item.get("local")
        if local is not None:
            if not isinstance(local, Scalar) or not isinstance(local.value, str):
                raise _fail(local.loc, f"include:local must be a path; found {describe(local)}")
            return self.local(local.value, local.loc, inputs, depth)
        for kind in REMOTE_KINDS:
            value = item.get(kind)
            if value is not None:
                copies = self.copies(kind, item, value)
                if copies is None and kind != "artifact":
                    sent = {k: plain(v) for k, v in ((e.key, e.value) for e in item.entries)}
                    sent.pop("rules", None)  # modelled here (include_rules.py)
                    through = self.through_api(sent, item.loc, depth)
                    if through is not None:
                        return through
                if copies is None:
                    self.not_read(
                        item.loc,
                        f"include: {kind} {self.name(kind, item, value)}",
                        "a job of the pipeline creates it"
                        if kind == "artifact"
                        else self.api_reason,
                    )
                    return []
                found = []
                for path, base in copies:
                    top = self.vendored_file(path, base, inputs, item.loc, depth)
                    if top is not None:
                        found.append(top)
                return found
        raise _fail(item.loc, "an include names local, project, remote, template or component")

    def through_api(self, sent: dict[str, object], loc: Loc, depth: int) -> list[Map] | None:
        """The include read through GitLab's CI Lint API (its answer cached), or None:
        no API given, or GitLab could not merge it (`api_reason` says why)."""
        self.api_reason = ""
        if self.api is None:
            return None
        answer = self.api.read(sent, loc)
        if isinstance(answer, str):
            self.api_reason = answer
            return None
        self.merged.through_api.append((loc, display_path(answer, self.root)))
        top = self.vendored_file(answer, answer.parent, None, loc, depth)
        return [top] if top is not None else []

    def copies(self, kind: str, item: Map, value: Node) -> list[tuple[Path, Path]] | None:
        """The vendored copies of a non-local include, with what their own local includes
        are relative to; None when there is no directory of copies or a copy is missing."""
        if self.vendored is None or not isinstance(value, Scalar):
            return None
        name = str(value.value)
        if kind == "template":
            base = self.vendored / "templates"
            files = [name]
        elif kind == "project":
            base = self.vendored / "projects" / name.strip("/")
            node = item.get("file")
            written = self.items(node) if node is not None else []
            files = [str(f.value) for f in written if isinstance(f, Scalar)]
        elif kind == "remote":
            base = self.vendored / "remote"
            files = [re.sub(r"^https?://", "", name)]
        elif kind == "component":
            base = self.vendored / "components"
            files = [name.split("@", 1)[0] + ".yml"]
        else:
            return None
        paths = []
        for file in files:
            path = base / file.lstrip("/")
            try:
                path.resolve().relative_to(self.vendored.resolve())
            except (OSError, ValueError):
                return None
            if not path.is_file():
                return None
            paths.append((path, base if kind == "project" else path.parent))
        return paths

    def vendored_file(
        self, path: Path, base: Path, inputs: Inputs | None, via: Loc, depth: int
    ) -> Map | None:
        self.count += 1
        if self.count > MAX_INCLUDES:
            raise _fail(via, f"more than {MAX_INCLUDES} includes")
        outer = self.base
        self.base = base
        try:
            return self.file(path, inputs, via, depth + 1)
        finally:
            self.base = outer

    def name(self, kind: str, item: Map, value: Node) -> str:
        text = value.value if isinstance(value, Scalar) else describe(value)
        if kind == "artifact":
            job = item.get("job")
            return f"'{text}' of job {job.value if isinstance(job, Scalar) else '?'}"
        if kind == "project":
            files = item.get("file")
            if isinstance(files, Seq):
                shown = ", ".join(str(f.value) for f in files.items if isinstance(f, Scalar))
            elif isinstance(files, Scalar):
                shown = str(files.value)
            else:
                shown = "?"
            return f"'{text}' file {shown}"
        return f"'{text}'"

    def not_read(self, loc: Loc, what: str, why: str = "") -> None:
        self.merged.not_read.append(
            (
                loc,
                f"{what} is not read ({why or 'it is not in this repository'}); the pipeline "
                "is partial: jobs that extend, reference or override its configuration are "
                "incomplete",
            )
        )

    def inputs(self, node: Node | None) -> Inputs | None:
        if node is None:
            return None
        if not isinstance(node, Map):
            raise _fail(node.loc, f"include:inputs must be a mapping; found {describe(node)}")
        return {entry.key: entry.value for entry in node.entries}

    def included(self, rules: Node, item: Map) -> bool | IncludeCondition:
        """`rules:` of an include (docs/gitlab-ci-semantics.md §14): the first rule whose
        conditions all match decides (`when: never` leaves the file out), none matching
        leaves it out. `exists` is decided from the repository and an `if:` comparing
        constants is decided; an `if:` on variables or a `changes:` is not known offline,
        so the include is a condition its definitions are read under."""
        cases: list[IncludeCase] = []
        for rule in self.items(rules):
            if not isinstance(rule, Map):
                raise _fail(rule.loc, f"a rule is a mapping; found {describe(rule)}")
            for entry in rule.entries:
                if entry.key not in ("if", "exists", "changes", "when"):
                    raise _fail(entry.key_loc, f"an include rule has no key '{entry.key}'")
            when = rule.get("when")
            if when is not None and not (
                isinstance(when, Scalar) and when.value in ("never", "always")
            ):
                raise _fail(when.loc, "an include rule's when: is never or always")
            included = not (isinstance(when, Scalar) and when.value == "never")
            exists = rule.get("exists")
            found: bool | None = True
            if exists is not None:
                found = self.exists(exists)
                if found is False:
                    continue  # this rule never matches
            condition = rule.get("if")
            text: str | None = None
            if condition is not None:
                if not isinstance(condition, Scalar) or not isinstance(condition.value, str):
                    raise _fail(
                        condition.loc, f"rules:if must be a string; found {describe(condition)}"
                    )
                decided = constant_condition(condition.value)
                if decided is False:
                    continue
                if decided is None:
                    text = condition.value
            case = IncludeCase(text, rule.get("changes") is not None or found is None, included)
            if case.if_ is None and not case.other:
                if not cases:
                    return included  # the first rule that can match surely matches
                cases.append(case)
                break
            cases.append(case)
        if not any(case.included for case in cases):
            return False
        return IncludeCondition(item.loc, self.describe_item(item), tuple(cases))

    def describe_item(self, item: Map) -> str:
        for kind in ("local", *REMOTE_KINDS):
            value = item.get(kind)
            if value is not None:
                return f"include: {kind} {self.name(kind, item, value)}"
        return "include"

    def exists(self, node: Node) -> bool | None:
        """Whether a file `exists:` names is in the repository; None when that cannot be
        known offline (another project's files, a path built from variables)."""
        if isinstance(node, Map) and node.get("project") is not None:
            return None
        patterns = self.items(node.get("paths") if isinstance(node, Map) else node)  # type: ignore[arg-type]
        unknown = False
        for pattern in patterns:
            if not isinstance(pattern, Scalar) or not isinstance(pattern.value, str):
                continue
            if "$" in pattern.value:
                unknown = True
                continue
            text = pattern.value.lstrip("/")
            if any(char in text for char in "*?[{"):
                regex = _glob_regex(text.replace("?", "*"))
                if any(regex.match(name) for name in self.tree(text)):
                    return True
            elif (self.here / text).exists():
                return True
        return None if unknown else False

    def tree(self, pattern: str) -> list[str]:
        """The files a wildcard `pattern` may match: those below the directory its fixed
        part names (`ci/jobs/` for `ci/jobs/**.yml`), so neither a large repository nor
        what is not in it (a virtual environment beside the checkout) is walked. Bounded."""
        head = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
        start = self.here / head.rpartition("/")[0]
        if start not in self.files:
            found: list[str] = []
            if start.is_dir():
                for directory, subdirectories, filenames in os.walk(start):
                    subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
                    for name in sorted(filenames):
                        found.append(Path(directory, name).relative_to(self.here).as_posix())
                    if len(found) >= MAX_WILDCARD_FILES * 10:
                        break
            self.files[start] = found
        return self.files[start]

    def local(self, written: str, loc: Loc, inputs: Inputs | None, depth: int) -> list[Map]:
        if "$" in written:
            self.not_read(loc, f"include: local '{written}' (a path built from variables)")
            return []
        text = written.lstrip("/")
        if "*" in text:
            regex = _glob_regex(text)
            names = [n for n in self.tree(text) if regex.match(n) and n.endswith((".yml", ".yaml"))]
            if not names:
                self.merged.notes.append((loc, f"include: local '{written}' matches no file"))
            paths = [self.here / name for name in names]
        else:
            if not text.endswith((".yml", ".yaml")):
                raise _fail(loc, f"include: local '{written}' must be a .yml or .yaml file")
            path = self.here / text
            try:
                path.resolve().relative_to(self.here.resolve())
            except (OSError, ValueError):
                raise _fail(loc, f"included file '{written}' is outside the repository") from None
            if not path.is_file():
                raise _fail(
                    loc,
                    f"included file '{written}' does not exist",
                    "include: local names a file relative to the repository root",
                )
            paths = [path]
        found = []
        for path in paths:
            try:  # a wildcard may match a symbolic link leaving the repository
                path.resolve().relative_to(self.here.resolve())
            except (OSError, ValueError):
                raise _fail(loc, f"included file '{path.name}' is outside the repository") from None
            self.count += 1
            if self.count > MAX_INCLUDES:
                raise _fail(
                    loc,
                    f"more than {MAX_INCLUDES} includes",
                    "GitLab allows 150 includes per pipeline (nested ones counted)",
                )
            top = self.file(path, inputs, loc, depth + 1)
            if top is not None:
                found.append(top)
        return found


def merge_includes(
    file: Path,
    root: Path,
    documents: list[Node | None],
    shown: str,
    vendored: Path | None = None,
    api: IncludeSource | None = None,
) -> Merged:
    """The configuration of `file` (already parsed into `documents`) with every include
    merged in; raises InputError for what GitLab would refuse.

    `vendored`: a directory of copies of includes that are not in this repository:
    `templates/<name>` for `template:`, `projects/<group/project>/<file>` for `project:`
    (whose own local includes are read from that directory), `remote/<host>/<path>` for
    `remote:`, `components/<host>/<path>.yml` for `component:` (without `@version`). An
    include without a copy stays not read.

    `api`: GitLab's API, which reads an include that has no copy (`api.CiLint`)."""
    merged = Merged(Map((), Loc(shown)))
    reader = _Reader(root, merged, vendored, api)
    reader.seen.add((file.resolve(), repr([])))
    top = reader.document(shown, documents, None, Loc(shown), root_file=True)
    merged.top = reader.expand(top, 0, shown)
    return merged
