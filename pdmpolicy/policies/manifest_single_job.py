"""manifest-single-job: exactly one migrations Job per database across the given manifests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pdmpolicy.core.location import Loc
from pdmpolicy.policies.base import (
    MANIFESTS_LAYER,
    Context,
    Documentation,
    Policy,
    Violation,
)
from pdmpolicy.policies.examples import GSTG_CNY
from pdmpolicy.policies.manifest_examples import (
    CNY_CHART_INFO,
    CNY_MIGRATIONS_JOB,
    MIGRATIONS_JOB,
)

if TYPE_CHECKING:
    from pdmpolicy.manifests.model import ManifestFile, MigrationsJob


def _where(file: ManifestFile, job: MigrationsJob) -> str:
    loc = job.resource.loc
    return f"{job.resource.describe()} ({loc.path}:{loc.line}, {file.environment})"


class ManifestSingleJob(Policy):
    name = "manifest-single-job"
    layers = MANIFESTS_LAYER
    summary = "exactly one migrations Job per database across the given manifests"
    documentation = Documentation(
        what="Across all the manifests given to one run of `pdmpolicy manifests`, each "
        "database has exactly one migrations Job. A Job's database is the `database:` of "
        "the environment its file was rendered for; a database whose manifests hold no "
        "migrations Job at all is a finding too.",
        why="PDMs run once per database. Staging-canary shares staging's PostgreSQL, and "
        "staging has zonal clusters: if two releases render a migrations Job for the same "
        "database, two clusters race to run the PDMs (one fails on Rails' migration lock, "
        "or both run one after the other). If none does, a real run would run no PDM at all, "
        "or the Job changed shape and pdmpolicy no longer recognises it (docs/manifests.md).",
        failing_example={
            "gstg.manifest.yaml": MIGRATIONS_JOB,
            "gstg-cny.yml": GSTG_CNY,
            "gstg-cny.manifest.yaml": CNY_CHART_INFO + "---\n" + CNY_MIGRATIONS_JOB,
        },
        fix="Render the migrations Job in one release per database: disable it in the "
        "others (chart value `gitlab.migrations.enabled: false` for the canary and zonal "
        "releases).",
        fixed_example={
            "gstg.manifest.yaml": MIGRATIONS_JOB,
            "gstg-cny.yml": GSTG_CNY,
            "gstg-cny.manifest.yaml": CNY_CHART_INFO,
        },
    )

    def check(self, context: Context) -> Iterator[Violation]:
        files_of: dict[str | None, list[ManifestFile]] = {}
        jobs_of: dict[str | None, list[tuple[ManifestFile, MigrationsJob]]] = {}
        for file in context.manifests:
            files_of.setdefault(file.database, []).append(file)
            for job in file.jobs:
                jobs_of.setdefault(file.database, []).append((file, job))
        for database, files in files_of.items():
            jobs = jobs_of.get(database, [])
            if database is None and not jobs and len(files_of) > 1:
                continue  # files of no environment beside files of one: nothing to count
            if not jobs:
                yield self._none(database, files)
            elif len(jobs) > 1:
                listed = "; ".join(_where(file, job) for file, job in jobs)
                for file, job in jobs:
                    yield Violation(
                        job.resource.loc,
                        f"{len(jobs)} migrations Jobs for database {database}: {listed}. PDMs "
                        "run once per database, from exactly one Job",
                        file.environment,
                        hint="disable the migrations Job in all releases of this database but "
                        "one (gitlab.migrations.enabled: false)",
                        subject=f"{database}:{file.path}:{job.resource.index}",
                    )

    def _none(self, database: str | None, files: list[ManifestFile]) -> Violation:
        first = files[0]
        shown = ", ".join(file.path for file in files)
        what = f"database {database}" if database is not None else "any database"
        return Violation(
            Loc(first.path),
            f"no migrations Job for {what} in {shown}: a real run would run no PDM, or the Job "
            "is not recognisable as the chart's (docs/manifests.md says how it is found)",
            first.environment,
            hint="enable the chart's migrations Job in one release of this database, or pass "
            "the manifests that hold it",
            subject=f"{database}:none",
        )
