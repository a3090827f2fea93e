"""manifest-no-skip-variable: SKIP_POST_DEPLOYMENT_MIGRATIONS never reaches the migrations Job."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pdmpolicy.core import names
from pdmpolicy.policies.base import (
    MANIFESTS_LAYER,
    Context,
    Documentation,
    Policy,
    Violation,
)
from pdmpolicy.policies.examples import changed
from pdmpolicy.policies.manifest_examples import MIGRATIONS_JOB

_SKIP = names.SKIP_VARIABLE
_ASSIGNED = re.compile(rf"(?<![A-Za-z0-9_]){_SKIP}=")
_WHY = (
    "Rails skips post-deployment migrations whenever the variable is present, whatever its "
    'value ("false" included), so the PDMs would be silently skipped'
)
_HINT = (
    f"leave {_SKIP} out of the migrations Job entirely: it is an input for k-ctl, which must "
    'drop it when given "false"'
)

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import Container, ManifestFile, MigrationsJob, Resource
    from pdmpolicy.manifests.recognise import EnvSource


def _value(item: Mapping[str, Any]) -> str:
    if "valueFrom" in item:
        return "its value taken from valueFrom"
    value = item.get("value")
    if value is None:
        return "empty"
    return f'value "{value}"'


def _same_place(file: ManifestFile, other: ManifestFile, job: Resource, data: Resource) -> bool:
    """Whether `data` can be the object `job` refers to: same environment and namespace
    (an object rendered without a namespace goes to the one it is applied in)."""
    same_environment = (
        file.environment is None
        or other.environment is None
        or file.environment == other.environment
    )
    same_namespace = (
        job.namespace is None or data.namespace is None or job.namespace == data.namespace
    )
    return same_environment and same_namespace


def _referenced(
    source: EnvSource, file: ManifestFile, job: Resource, manifests: tuple[ManifestFile, ...]
) -> Iterator[Resource]:
    for other in manifests:
        for resource in other.resources:
            if (
                resource.kind == source.kind
                and resource.name == source.name
                and _same_place(file, other, job, resource)
            ):
                yield resource


class ManifestNoSkipVariable(Policy):
    name = "manifest-no-skip-variable"
    layers = MANIFESTS_LAYER
    summary = f"the migrations Job carries no `{_SKIP}` at all, whatever its value"
    documentation = Documentation(
        what=f"No container or init container of the migrations Job gets `{_SKIP}`: not in "
        "`env`, not through `envFrom` from a ConfigMap or Secret whose inline `data` or "
        "`stringData` is in the given manifests (a `prefix` counts), and not assigned in "
        'its `command` or `args`. Any value is a finding, `"false"` included.',
        why="Rails skips post-deployment migrations when the variable is *present*: "
        "`ENV[...]` is a string or nil, and every string is true in Ruby, so `false`, `0` "
        f"and the empty string all skip (gitlabhq `lib/gitlab/database.rb`). `{_SKIP}=false` "
        "is meaningful only as an input to k-ctl and helmfile, which must then leave the "
        "variable out of the Job. If the literal reaches the pod, the Job succeeds, the "
        "pipeline is green, and no PDM ran.",
        failing_example={
            "gstg.manifest.yaml": changed(
                MIGRATIONS_JOB,
                "          env:\n",
                f'          env:\n            - name: {_SKIP}\n              value: "false"\n',
            )
        },
        fix=f"Remove `{_SKIP}` from the migrations Job (the chart's `extraEnv`, or the "
        "helmfile values that set it): the Job runs PDMs when the variable is absent.",
        fixed_example={"gstg.manifest.yaml": MIGRATIONS_JOB},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        from pdmpolicy.manifests.recognise import env_from  # only `manifests` reads manifests

        for file in context.manifests:
            for job in file.jobs:
                for container in job.containers:
                    yield from self._env(file, job, container)
                    yield from self._commands(file, job, container)
                    for source in env_from(container, job.resource):
                        yield from self._env_from(context, file, job, source)

    def _env(
        self, file: ManifestFile, job: MigrationsJob, container: Container
    ) -> Iterator[Violation]:
        env = container.data.get("env")
        if not isinstance(env, list):
            return
        for index, item in enumerate(env):
            if isinstance(item, Mapping) and item.get("name") == _SKIP:
                yield Violation(
                    job.resource.value_loc(item, "name"),
                    f"migrations Job {job.name} sets {_SKIP} ({_value(item)}) in "
                    f"{container.describe()}: {_WHY}",
                    file.environment,
                    hint=_HINT,
                    subject=f"{job.resource.index}:{container.name}:env:{index}",
                )

    def _commands(
        self, file: ManifestFile, job: MigrationsJob, container: Container
    ) -> Iterator[Violation]:
        from pdmpolicy.manifests.recognise import command_words

        for word, holder, index in command_words(container):
            if _ASSIGNED.search(word):
                yield Violation(
                    job.resource.item_loc(holder, index),
                    f"migrations Job {job.name} assigns {_SKIP} in the command of "
                    f"{container.describe()}: {_WHY}",
                    file.environment,
                    hint=_HINT,
                    subject=f"{job.resource.index}:{container.name}:command:{index}",
                )

    def _env_from(
        self, context: Context, file: ManifestFile, job: MigrationsJob, source: EnvSource
    ) -> Iterator[Violation]:
        from pdmpolicy.manifests.recognise import data_keys

        for resource in _referenced(source, file, job.resource, context.manifests):
            for key, holder in data_keys(resource):
                if source.prefix + key != _SKIP:
                    continue
                via = f" with prefix {source.prefix!r}" if source.prefix else ""
                yield Violation(
                    resource.key_loc(holder, key),
                    f"{resource.describe()} holds {key}, which envFrom{via} of migrations Job "
                    f"{job.name} ({source.loc}) passes to {source.container.describe()} as "
                    f"{_SKIP}: {_WHY}",
                    file.environment,
                    hint=f"remove {key} from {resource.describe()}, or stop the migrations "
                    "Job from taking its environment from it",
                    subject=f"{job.resource.index}:{source.container.name}:envFrom:"
                    f"{resource.kind}/{resource.name}",
                )
