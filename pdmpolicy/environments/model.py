"""The declared environments: typed, immutable, every value with its source location.

Built only from documents that passed the schema, so construction never guesses. Each object
keeps `locs`, field name -> location of the written value; a field that was not written
resolves to the location of the object's own key (`loc_of`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Any

from pdmpolicy.core import names
from pdmpolicy.core.location import Loc, item_loc, key_loc, value_loc
from pdmpolicy.core.records import record
from pdmpolicy.environments.load import Document
from pdmpolicy.environments.schema import parse_date

Locs = Mapping[str, Loc]


def _locs(path: str, mapping: Any) -> Locs:
    return MappingProxyType({str(k): value_loc(path, mapping, k) for k in mapping})


def _variables(path: str, mapping: Any) -> tuple[tuple[str, str, Loc], ...]:
    """Variables by name: their order means nothing to GitLab or to a shell's assignments,
    so the rendered bytes must not depend on the order they were written in."""
    return tuple(
        (str(k), str(v), value_loc(path, mapping, k))
        for k, v in sorted(mapping.items(), key=lambda item: str(item[0]))
    )


@record
class Kctl:
    """A k-ctl call: `k-ctl -e <environment> [-s cny] [-D] <action>`."""

    environment: str
    stage: str
    action: str
    dry_run: bool
    wait_for_jobs: bool
    variables: tuple[tuple[str, str, Loc], ...]
    loc: Loc
    locs: Locs = field(repr=False, compare=False)

    def loc_of(self, name: str) -> Loc:
        return self.locs.get(name, self.loc)


@record
class Job:
    """One job of an environment file, as written (defaults are applied by lowering)."""

    name: str
    runner: str
    stage: str | None
    needs: tuple[str, ...] | None
    """None when the job declares no `needs` (stage order applies); () for `needs: []`."""
    when: str | None
    retry: int | None
    allow_failure: bool | None
    interruptible: bool | None
    resource_group: str | None
    timeout: str | None
    variables: tuple[tuple[str, str, Loc], ...]
    inherit_variables: bool | tuple[str, ...] | None
    kctl: Kctl | None
    script: tuple[tuple[str, Loc], ...] | None
    loc: Loc
    locs: Locs = field(repr=False, compare=False)
    effect: str | None = None
    """`effect:` of a `runner: generic` job: what it declares it does (docs/effects.md)."""

    def loc_of(self, name: str) -> Loc:
        return self.locs.get(name, self.loc)


@record
class Environment:
    """One `environments/<name>.yml`."""

    name: str
    database: str
    upstream: str | None
    step: str
    since: dt.date
    variables: tuple[tuple[str, str, Loc], ...]
    jobs: tuple[Job, ...]
    path: str
    locs: Locs = field(repr=False, compare=False)

    @property
    def loc(self) -> Loc:
        return Loc(self.path)

    def loc_of(self, name: str) -> Loc:
        return self.locs.get(name, self.loc)

    @property
    def step_index(self) -> int:
        return names.step_index(self.step)

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)


def _kctl(path: str, job: Any) -> Kctl:
    data = job["kctl"]
    return Kctl(
        environment=str(data["environment"]),
        stage=str(data.get("stage", "main")),
        action=str(data["action"]),
        dry_run=bool(data.get("dry_run", False)),
        wait_for_jobs=bool(data.get("wait_for_jobs", False)),
        variables=_variables(path, data.get("variables", {})),
        loc=key_loc(path, job, "kctl"),
        locs=_locs(path, data),
    )


def _job(path: str, jobs: Any, name: str) -> Job:
    data = jobs[name]
    inherit = data.get("inherit_variables")
    script = data.get("script")
    return Job(
        name=str(name),
        runner=str(data["runner"]),
        stage=data.get("stage"),
        needs=tuple(str(n) for n in data["needs"]) if "needs" in data else None,
        when=data.get("when"),
        retry=data.get("retry"),
        allow_failure=data.get("allow_failure"),
        interruptible=data.get("interruptible"),
        resource_group=data.get("resource_group"),
        timeout=data.get("timeout"),
        variables=_variables(path, data.get("variables", {})),
        inherit_variables=tuple(str(v) for v in inherit) if isinstance(inherit, list) else inherit,
        kctl=_kctl(path, data) if "kctl" in data else None,
        script=(
            tuple((str(line), item_loc(path, script, i)) for i, line in enumerate(script))
            if script is not None
            else None
        ),
        loc=key_loc(path, jobs, name),
        locs=_locs(path, data),
        effect=str(data["effect"]) if "effect" in data else None,
    )


def build_environment(doc: Document) -> Environment:
    """The model of a document that passed `schema.validate_shape` and `check_references`."""
    data = doc.data
    rollout = data["rollout"]
    since = parse_date(rollout["since"])
    assert since is not None  # guaranteed by the schema
    locs = dict(_locs(doc.path, data))
    locs["step"] = value_loc(doc.path, rollout, "step")
    locs["since"] = value_loc(doc.path, rollout, "since")
    upstream = data.get("upstream")
    return Environment(
        name=str(data["environment"]),
        database=str(data["database"]),
        upstream=str(upstream) if upstream is not None else None,
        step=str(rollout["step"]),
        since=since,
        variables=_variables(doc.path, data.get("variables", {})),
        jobs=tuple(_job(doc.path, data["jobs"], name) for name in data["jobs"]),
        path=doc.path,
        locs=MappingProxyType(locs),
    )
