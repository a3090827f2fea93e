"""Which Kubernetes objects are the migrations Job, and what reaches its containers.

The GitLab Helm chart renders its migrations Job from
`charts/gitlab/charts/migrations/templates/_jobspec.yaml`: `kind: Job`, the chart's
standard labels (`app: migrations`, `chart: migrations-<version>`, `release`, `heritage`)
on the Job and its pod template, and one container from the toolbox image
(`.../cng/gitlab-toolbox-ee`, formerly `gitlab-task-runner-ee`) whose arguments are
`/scripts/wait-for-deps` and `/scripts/db-migrate`. A Job is recognised by what it runs
(the `db-migrate` script or the `db:migrate` Rails task) or by the chart's label; the image
is not used, since its path is overridable and the toolbox image also runs backups. The
rules, and why, are in docs/manifests.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pdmpolicy.core.location import Loc
from pdmpolicy.manifests.model import Container, MigrationsJob, Resource

MIGRATIONS_LABEL = ("app", "migrations")
"""The label the chart's `gitlab.standardLabels` puts on its migrations Job."""

_MIGRATE = re.compile(r"(?:^|(?<=[\s/;&|'\"(]))(?P<word>db-migrate|db:migrate)(?=$|[\s;&|'\")])")
"""The CNG `db-migrate` script (`/scripts/db-migrate`) or the Rails task `db:migrate`, as a
word of a command, also inside an `sh -c` string. `geo-db-migrate` (a Geo secondary's
tracking database) and `db:migrate:status` are other things."""


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _words(value: Any) -> list[str]:
    """`command`/`args`: a list of strings (a lone string is taken as one word)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def pod_parts(
    resource: Resource,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """A Job's `spec`, `spec.template` and `spec.template.spec`, where they are mappings."""
    spec = _mapping(resource.data.get("spec"))
    template = _mapping(spec.get("template")) if spec is not None else None
    pod_spec = _mapping(template.get("spec")) if template is not None else None
    return spec, template, pod_spec


def containers(resource: Resource, pod_spec: Mapping[str, Any] | None) -> tuple[Container, ...]:
    """Init containers, then containers, as written (entries that are not mappings are
    skipped: Kubernetes would refuse the object, and nothing in them runs)."""
    found = []
    if pod_spec is None:
        return ()
    for key, init in (("initContainers", True), ("containers", False)):
        items = pod_spec.get(key)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            name = item.get("name")
            found.append(
                Container(
                    name=str(name) if name is not None else f"#{index + 1}",
                    data=item,
                    init=init,
                    loc=resource.item_loc(items, index),
                )
            )
    return tuple(found)


def command_words(container: Container) -> Iterator[tuple[str, Any, int]]:
    """(word, the list holding it, its index) for `command` then `args`."""
    for key in ("command", "args"):
        value = container.data.get(key)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield item, value, index


def _labels(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = _mapping(mapping.get("metadata")) if mapping is not None else None
    labels = _mapping(metadata.get("labels")) if metadata is not None else None
    return labels or {}


def recognise(resource: Resource) -> MigrationsJob | None:
    """The resource as a migrations Job, or None when it is not one."""
    if resource.kind != "Job":
        return None
    spec, template, pod_spec = pod_parts(resource)
    found = containers(resource, pod_spec)
    reason = None
    for container in found:
        for key in ("command", "args"):
            for word in _words(container.data.get(key)):
                match = _MIGRATE.search(word)
                if match:
                    reason = f"runs {match.group('word')} in {container.describe()}"
                    break
            if reason:
                break
        if reason:
            break
    if reason is None:
        key, value = MIGRATIONS_LABEL
        if _labels(resource.data).get(key) == value or _labels(template).get(key) == value:
            reason = f"labelled {key}: {value}"
    if reason is None:
        return None
    return MigrationsJob(resource, reason, spec, template, pod_spec, found)


@dataclass(frozen=True)
class EnvSource:
    """One `envFrom` entry: every key of a ConfigMap or Secret becomes a variable."""

    kind: str
    """'ConfigMap' or 'Secret'."""
    name: str
    prefix: str
    container: Container
    loc: Loc


def env_from(container: Container, resource: Resource) -> Iterator[EnvSource]:
    items = container.data.get("envFrom")
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        prefix = item.get("prefix")
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = _mapping(item.get(key))
            if ref is not None and isinstance(ref.get("name"), str):
                yield EnvSource(
                    kind,
                    ref["name"],
                    prefix if isinstance(prefix, str) else "",
                    container,
                    resource.item_loc(items, index),
                )


def data_keys(resource: Resource) -> Iterator[tuple[str, Any]]:
    """(key, the mapping holding it) of a ConfigMap's or Secret's inline data."""
    sections = ("data", "binaryData") if resource.kind == "ConfigMap" else ("data", "stringData")
    for section in sections:
        data = _mapping(resource.data.get(section))
        if data is None:
            continue
        for key in data:
            if isinstance(key, str):
                yield key, data
