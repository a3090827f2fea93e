"""`init`: a new environment file at rollout step `vm`, commented for the person who edits
it next, refused when its name or database would break a rule before anything is checked.
"""

from __future__ import annotations

import datetime as dt
import re

from pdmpolicy.core import names
from pdmpolicy.core.errors import UsageError
from pdmpolicy.docgen.formats import EDITOR_LINE, ENVIRONMENT_SCHEMA_PATH
from pdmpolicy.policies.base import EnvironmentView, executors
from pdmpolicy.policyset.config import PolicySet

TIMEOUT = "10h"
"""What PDMs historically needed on GitLab.com (raised to the policy's minimum if that is
longer)."""


def environment_text(
    name: str, database: str, upstream: str | None, today: dt.date, timeout: str
) -> str:
    return f"""\
{EDITOR_LINE.format(path=ENVIRONMENT_SCHEMA_PATH)}
# {name}: post-deployment migrations (PDMs) of database {database}.
# `pdmpolicy status` shows where it is in the rollout and when it may move on;
# `pdmpolicy advance {name}` rewrites this file for the next step (comments stay).
environment: {name}
# PDMs run once per database: one environment of a database runs them.
database: {database}
# The environment that must lead this one through the rollout (null: none).
upstream: {upstream if upstream is not None else "null"}
rollout:
  # vm | dry-run | kubernetes-after-vm | kubernetes-first | kubernetes-only
  step: vm
  # The day this step was entered: the soak clock.
  since: {today.isoformat()}
# Top-level variables of the emitted pipeline.
variables:
  DEPLOY_ENVIRONMENT: {name}
jobs:
  # The deploy VMs run the PDMs, through the deployer's tooling.
  {name}-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: {timeout}
"""


def refuse(
    name: str,
    database: str,
    upstream: str | None,
    views: tuple[EnvironmentView, ...],
    existing_files: list[str],
) -> None:
    """UsageError (exit 2) when the new environment cannot be one that checks clean."""
    pattern = re.compile(names.NAME_PATTERN)
    for what, value in (("environment", name), ("database", database)):
        if not pattern.match(value):
            raise UsageError(
                f"'{value}' is not a valid {what} name: lowercase letters, digits, '-' and "
                "'_', starting and ending with a letter or digit, at most 63 characters"
            )
    job = f"{name}-vm-post-deploy-migrations"
    if not pattern.match(job) or name in names.GITLAB_RESERVED:
        raise UsageError(f"'{name}' would give the job name '{job}', which is too long")
    if existing_files:
        raise UsageError(
            f"{existing_files[0]} exists already; `pdmpolicy advance {name}` moves an "
            "existing environment"
        )
    known = {view.name: view for view in views}
    if name in known:
        raise UsageError(
            f"environment '{name}' is already defined in {known[name].environment.path}"
        )
    if upstream is not None and upstream not in known:
        raise UsageError(
            f"upstream '{upstream}' is not an environment here (known: {', '.join(sorted(known))})"
        )
    runners = [
        view.name
        for view in views
        if view.environment.database == database and any(True for _ in executors(view))
    ]
    if runners:
        raise UsageError(
            f"database '{database}' already has its PDMs run by {', '.join(runners)}; a second "
            "environment with executors on it would run them twice "
            "(pdm-one-environment-per-database)"
        )


def timeout_for(policy_set: PolicySet) -> str:
    setting = policy_set.settings.get("pdm-executor-timeout")
    if setting is None:
        return TIMEOUT
    minimum = names.parse_duration(str(setting.options.get("minimum", TIMEOUT))) or 0
    if minimum > (names.parse_duration(TIMEOUT) or 0):
        return names.format_duration(minimum)
    return TIMEOUT
