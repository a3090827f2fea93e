"""`!reference` and `extends`: the two ways a GitLab CI file reuses its own text.

GitLab resolves them in this order, after anchors, merge keys and includes
(docs/gitlab-ci-semantics.md §10): `extends` first, on every job and template, a "reverse
deep merge" where hashes merge key by key, every other value is replaced, later parents win
and the job itself wins over all of them; then references, on the result, so a reference
sees what a template got through its own `extends`. Merged values keep the location of the
text they came from, so a `retry` inherited from a template points at the template's line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pdmpolicy.core.errors import InputError, Problem
from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.yaml import ALIAS_NODE_BUDGET, Entry, Map, Node, Reference, Scalar, Seq

MAX_REFERENCE_DEPTH = 10
"""GitLab resolves `!reference` tags nested up to ten levels deep."""
MAX_EXTENDS_DEPTH = 11
"""GitLab supports up to eleven levels of `extends`."""


@dataclass
class _References:
    root: Map
    partial: bool = False
    """Some includes were not read: a reference to a name defined nowhere may name
    something in them, so it is kept as unknown instead of refused."""
    budget: int = ALIAS_NODE_BUDGET
    resolved: dict[tuple[str, ...], Node] = field(default_factory=dict)
    active: list[tuple[str, ...]] = field(default_factory=list)
    done: dict[int, Node] = field(default_factory=dict)
    current: str = ""
    unknown: dict[str, str] = field(default_factory=dict)
    """Top-level entry -> why part of it is unknown (the first unresolved reference)."""
    placeholders: dict[int, str] = field(default_factory=dict)
    """Stand-ins for unresolved references (by id) -> why."""

    def top(self) -> Map:
        entries = []
        for entry in self.root.entries:
            self.current = entry.key
            value = self.node(entry.value)
            if id(value) in self.placeholders:
                value = Scalar(None, "", entry.key_loc)
            entries.append(Entry(entry.key, entry.key_loc, value))
        return Map(tuple(entries), self.root.loc, 1 + sum(e.value.size for e in entries))

    def node(self, node: Node) -> Node:
        """`node` with every `!reference` below it replaced by what it names."""
        if isinstance(node, Scalar):
            return node
        known = self.done.get(id(node))
        if known is not None:
            if id(known) in self.placeholders:
                self.unknown.setdefault(self.current, self.placeholders[id(known)])
            return known
        result: Node
        if isinstance(node, Reference):
            result = self.reference(node)
        elif isinstance(node, Map):
            entries = []
            for e in node.entries:
                value = self.node(e.value)
                if id(value) in self.placeholders:  # unknown: as if the key was not written
                    value = Scalar(None, "", e.key_loc)
                entries.append(Entry(e.key, e.key_loc, value))
            result = Map(tuple(entries), node.loc, 1 + sum(e.value.size for e in entries))
        else:
            items = tuple(self.node(item) for item in node.items)
            result = Seq(items, node.loc, 1 + sum(item.size for item in items))
        self.done[id(node)] = result
        return result

    def reference(self, ref: Reference) -> Node:
        shown = "!reference [" + ", ".join(ref.path) + "]"
        if ref.path in self.active:
            chain = " -> ".join("[" + ", ".join(p) + "]" for p in [*self.active, ref.path])
            raise InputError.at(ref.loc, f"{shown} refers to itself: {chain}")
        if len(self.active) >= MAX_REFERENCE_DEPTH:
            raise InputError.at(
                ref.loc,
                f"{shown} is nested more than {MAX_REFERENCE_DEPTH} references deep",
                "GitLab stops resolving !reference tags after ten levels",
            )
        found = self.resolved.get(ref.path)
        if found is None:
            self.active.append(ref.path)
            try:
                target = self._lookup(ref, shown)
                if target is None:
                    return self._unknown(ref, shown)
                found = self.node(target)
            finally:
                self.active.pop()
            self.resolved[ref.path] = found
        self.budget -= found.size
        if self.budget < 0:
            raise InputError.at(
                ref.loc,
                f"!reference tags expand this document by more than {ALIAS_NODE_BUDGET} nodes",
                "reuse smaller pieces",
            )
        return found

    def _unknown(self, ref: Reference, shown: str) -> Node:
        """A reference into an include that was not read: an empty list, which a list
        it sits in splices away and a key it is the value of drops."""
        reason = f"{shown} names configuration from an include that was not read"
        self.unknown.setdefault(self.current, reason)
        placeholder = Seq((), ref.loc, 1)
        self.placeholders[id(placeholder)] = reason
        return placeholder

    def _lookup(self, ref: Reference, shown: str) -> Node | None:
        node: Node = self.root
        for depth, name in enumerate(ref.path):
            if isinstance(node, Reference):
                node = self.reference(node)
                if id(node) in self.placeholders:
                    return None
            found = node.get(name) if isinstance(node, Map) else None
            if found is None and self.partial and self.root.get(ref.path[0]) is None:
                return None
            if found is None:
                where = "the file" if depth == 0 else "[" + ", ".join(ref.path[:depth]) + "]"
                raise InputError.at(
                    ref.loc,
                    f"{shown}: {where} has no key '{name}'",
                    "a !reference names a top-level job or template, then keys inside it",
                )
            node = found
        return node


def expand(
    top: Map, not_jobs: frozenset[str], charge: Charge, partial: bool
) -> tuple[Map, dict[str, str]]:
    """The configuration with `extends` applied to every mapping entry (jobs and hidden
    templates alike), then every `!reference` resolved on the result, as GitLab does
    (`Config::Extendable`, then `Config::Yaml::Tags::Resolver`): a reference can name
    keys a template gets through its own `extends`.

    The second value maps each entry whose definition is not fully known (with `partial`:
    a parent or a reference defined nowhere) to the reason."""
    extender = Extender(top, charge, partial)
    entries = []
    problems: list[Problem] = []
    for entry in top.entries:
        value = entry.value
        if isinstance(value, Map) and entry.key not in not_jobs:
            try:
                value = extender.job(entry.key)
            except InputError as exc:  # every job's problem is reported, not the first only
                problems.extend(exc.problems)
        entries.append(Entry(entry.key, entry.key_loc, value))
    if problems:
        raise InputError(problems)
    extended = Map(tuple(entries), top.loc, 1 + sum(e.value.size for e in entries))
    resolved, unknown = resolve_references(extended, partial)
    for name, reason in extender.unknown.items():
        unknown.setdefault(name, reason)
    return resolved, unknown


def resolve_references(root: Map, partial: bool = False) -> tuple[Map, dict[str, str]]:
    """The file with every `!reference` resolved; raises InputError on unknown paths/cycles.

    With `partial` (includes not read), a reference whose first name is defined nowhere is
    unknown rather than an error; the second value maps each top-level entry holding one
    to the reason."""
    references = _References(root, partial)
    return references.top(), references.unknown


Charge = Callable[[int, Loc], None]
"""Counts work against a budget; raises InputError when it is exhausted."""


def _free(count: int, loc: Loc) -> None:
    pass


def deep_merge(base: Map, over: Map, charge: Charge = _free) -> Map:
    """ActiveSupport's `deep_merge`: mappings merge key by key, anything else is replaced."""
    if not base.entries:
        return over
    charge(len(base.entries) + len(over.entries), over.loc)
    entries: dict[str, Entry] = {entry.key: entry for entry in base.entries}
    for entry in over.entries:
        previous = entries.get(entry.key)
        if (
            previous is not None
            and isinstance(previous.value, Map)
            and isinstance(entry.value, Map)
        ):
            entries[entry.key] = Entry(
                entry.key, entry.key_loc, deep_merge(previous.value, entry.value, charge)
            )
        else:
            entries[entry.key] = entry
    merged = tuple(entries.values())
    return Map(merged, over.loc, 1 + sum(entry.value.size for entry in merged))


def extends_names(job: Map) -> list[tuple[str, Loc]]:
    """The parents a job names in `extends` (a name or a list of names), with locations."""
    node = job.get("extends")
    if node is None:
        return []
    items = node.items if isinstance(node, Seq) else (node,)
    names = []
    for item in items:
        if not isinstance(item, Scalar) or not isinstance(item.value, str):
            raise InputError.at(
                item.loc,
                "extends names jobs or templates: a name or a list of names",
                "write extends: .template or extends: [.a, .b]",
            )
        names.append((item.value, item.loc))
    return names


@dataclass
class Extender:
    """Resolves `extends` for the top-level entries of one file (with its includes merged).

    With `partial` (includes not read), a parent defined nowhere may be defined in them:
    it is left out and the job is marked unknown (`unknown[name]` says why) instead of
    refused. `unknown` starts with the entries whose `!reference`s were unresolved, and a
    job inherits the reason of any parent."""

    root: Map
    charge: Charge = _free
    partial: bool = False
    unknown: dict[str, str] = field(default_factory=dict)
    cache: dict[str, Map] = field(default_factory=dict)

    def job(self, name: str) -> Map:
        entry = self.root.entry(name)
        assert entry is not None and isinstance(entry.value, Map)
        return self._extended(name, entry.value, [])

    def _extended(self, name: str, node: Map, chain: list[str]) -> Map:
        cached = self.cache.get(name)
        if cached is not None:
            return cached
        merged = Map((), node.loc)
        for parent, loc in extends_names(node):
            if parent in chain or parent == name:
                cycle = " -> ".join([*chain, name, parent])
                raise InputError.at(loc, f"extends forms a cycle: {cycle}")
            if len(chain) + 1 >= MAX_EXTENDS_DEPTH:
                raise InputError.at(
                    loc,
                    f"extends is nested more than {MAX_EXTENDS_DEPTH} levels deep",
                    "GitLab supports up to eleven levels of inheritance",
                )
            parent_node = self.root.get(parent)
            if parent_node is None and self.partial:
                self.unknown.setdefault(
                    name,
                    f"'{name}' extends '{parent}', which is defined in none of the files "
                    "read (an include that was not read may define it)",
                )
                continue
            if parent_node is None:
                raise InputError.at(
                    loc,
                    f"'{name}' extends '{parent}', which is not defined in this file",
                    "extends names a job or a hidden template (.name) of the same file",
                )
            if not isinstance(parent_node, Map):
                raise InputError.at(loc, f"'{name}' extends '{parent}', which is not a mapping")
            parent_map = self._extended(parent, parent_node, [*chain, name])
            if parent in self.unknown:
                self.unknown.setdefault(name, self.unknown[parent])
            merged = deep_merge(merged, parent_map, self.charge)
        result = deep_merge(merged, node, self.charge)
        self.cache[name] = result
        return result
