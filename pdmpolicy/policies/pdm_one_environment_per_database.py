"""pdm-one-environment-per-database: one environment per database executes PDMs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from pdmpolicy.policies.base import (
    Context,
    Documentation,
    EnvironmentView,
    Policy,
    Violation,
    executors,
)
from pdmpolicy.policies.examples import GSTG, GSTG_CNY, GSTG_CNY_EXECUTOR


class PdmOneEnvironmentPerDatabase(Policy):
    name = "pdm-one-environment-per-database"
    summary = "among environments that share a database, at most one has executors"
    documentation = Documentation(
        what="Groups environments by `database` and checks that at most one environment of "
        "each group has jobs that execute PDMs.",
        why="PDMs run once per database, not once per cluster. Staging-canary (gstg-cny) and "
        "the zonal clusters share staging's PostgreSQL: a second environment with an "
        "executor runs the same migrations again, concurrently if nothing orders the two "
        "pipelines.",
        failing_example={
            "gstg.yml": GSTG,
            "gstg-cny.yml": GSTG_CNY_EXECUTOR,
        },
        fix="Run PDMs from one environment of the database only; the others may keep dry-run jobs.",
        fixed_example={"gstg.yml": GSTG, "gstg-cny.yml": GSTG_CNY},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        by_database: dict[str, list[EnvironmentView]] = defaultdict(list)
        for view in context.all_environments:
            if any(True for _ in executors(view)):
                by_database[view.environment.database].append(view)
        for database, views in sorted(by_database.items()):
            if len(views) < 2:
                continue
            names = [v.name for v in views]
            for view in views:
                others = ", ".join(n for n in names if n != view.name)
                yield Violation(
                    view.environment.loc_of("database"),
                    f"{view.name} executes PDMs on database {database}, and so does {others}: "
                    "PDMs would run more than once",
                    view.name,
                    hint="keep executors in one environment of the database",
                    subject=database,
                )
