"""Rendered Kubernetes objects as the `manifest-*` policies see them, with their positions.

A `Resource` is one object of a manifest file (one YAML document, or one entry of a
helm-diff). Its `data` is ruamel.yaml's round-trip tree; positions go through the
resource's `Origin`, which maps a line of the parsed text back to the line of the file it
was read from (the same line for plain YAML, the `+ ` line for a helm-diff).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdmpolicy.core import location
from pdmpolicy.core.location import Loc


@dataclass(frozen=True)
class Origin:
    """Where a parsed text came from: a whole file, or some of its lines."""

    path: str
    lines: tuple[int, ...] = ()
    """File line of each line of the parsed text (1-based); () when they are the same."""
    columns: tuple[int, ...] = ()
    """Characters in front of the parsed text on each of those file lines (`+ `)."""

    def at(self, loc: Loc) -> Loc:
        """`loc`, a position in the parsed text, as a position in the file."""
        if not self.lines:
            return Loc(self.path, loc.line, loc.column)
        index = min(max(loc.line, 1), len(self.lines)) - 1
        return Loc(self.path, self.lines[index], loc.column + self.columns[index])


@dataclass(frozen=True, eq=False)
class Resource:
    """One Kubernetes object."""

    origin: Origin
    data: Mapping[str, Any]
    index: int
    """Its place among the objects of its file, from 0."""
    kind: str
    api_version: str
    name: str
    namespace: str | None

    @property
    def path(self) -> str:
        return self.origin.path

    @property
    def loc(self) -> Loc:
        """Where the object says what it is: its `kind:` line."""
        return self.key_loc(self.data, "kind")

    def key_loc(self, mapping: Any, key: Any) -> Loc:
        return self.origin.at(location.key_loc(self.path, mapping, key))

    def value_loc(self, mapping: Any, key: Any) -> Loc:
        return self.origin.at(location.value_loc(self.path, mapping, key))

    def item_loc(self, sequence: Any, index: int) -> Loc:
        return self.origin.at(location.item_loc(self.path, sequence, index))

    def describe(self) -> str:
        """`Job gitlab/gitlab-migrations-5d2c1f0`, for messages."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True, eq=False)
class Container:
    """A container or init container of a pod template."""

    name: str
    data: Mapping[str, Any]
    init: bool
    loc: Loc

    def describe(self) -> str:
        return f"{'init container' if self.init else 'container'} {self.name}"


@dataclass(frozen=True, eq=False)
class MigrationsJob:
    """A Job recognised as the GitLab chart's migrations Job (`recognise.py`)."""

    resource: Resource
    reason: str
    """How it was recognised, in words: 'runs /scripts/db-migrate in container migrations'."""
    spec: Mapping[str, Any] | None
    """The Job's `spec` (None when missing or not a mapping)."""
    template: Mapping[str, Any] | None
    """`spec.template`."""
    pod_spec: Mapping[str, Any] | None
    """`spec.template.spec`."""
    containers: tuple[Container, ...]
    """Init containers, then containers, in the order written."""

    @property
    def name(self) -> str:
        return self.resource.name


@dataclass(frozen=True, eq=False)
class ManifestFile:
    """One manifest file (or standard input) and what it was rendered for."""

    path: str
    resources: tuple[Resource, ...]
    environment: str | None
    """The environment the file was rendered for (`--environment`, or inferred)."""
    database: str | None
    """That environment's `database:`."""
    how: str
    """How the environment was decided, in words (shown in the Markdown report)."""
    jobs: tuple[MigrationsJob, ...]
    """The migrations Jobs among `resources`."""
