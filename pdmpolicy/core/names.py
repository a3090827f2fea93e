"""Vocabulary of the domain: rollout steps, runners, name rules, durations.

Kept in one place so the schema, the model and the policies agree on spelling and order.
"""

from __future__ import annotations

import re

ROLLOUT_STEPS: tuple[str, ...] = (
    "vm",
    "dry-run",
    "kubernetes-after-vm",
    "kubernetes-first",
    "kubernetes-only",
)
"""The rollout steps, in the order an environment moves through them."""

RUNNERS = ("vm", "kubernetes", "generic")
KCTL_STAGES = ("main", "cny")


def named_stage(name: str) -> str | None:
    """The k-ctl stage an environment or cluster name says (`gstg-cny` -> `cny`), or None
    when it says none (the main stage, or any)."""
    for stage in KCTL_STAGES[1:]:
        if name.endswith(f"-{stage}"):
            return stage
    return None


KCTL_ACTIONS = ("upgrade", "template", "list")
JOB_WHEN = ("on_success", "manual", "always", "on_failure")

STAGES: tuple[str, ...] = (".pre", "build", "test", "deploy", ".post")
"""GitLab's default stages. Environment files pick from these, so stage order never depends
on the order keys happen to be written in."""
DEFAULT_STAGE = "deploy"

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$"
"""Environment, database and job names: lowercase letters, digits, '-' and '_', at most 63
characters. Narrower than GitLab allows on purpose: names become file names, resource groups
and shell words, so nothing that could be a path, an option or a YAML special is accepted."""
VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""A variable name that every shell accepts."""
RESOURCE_GROUP_PATTERN = r"^[A-Za-z0-9_.-]{1,255}$"

GITLAB_RESERVED = frozenset(
    {
        "image", "services", "stages", "types", "before_script", "after_script",
        "variables", "cache", "include", "default", "workflow", "pages", "spec",
    }
)  # fmt: skip
"""Top-level keywords of a GitLab CI file: a job with one of these names would not be a job.
(`pages` is a job name with special meaning; refused so a PDM job is never published.
`spec` opens a file's header: the GitLab loader, and so `verify`, would not see the job.)"""

AUTO_DEPLOY_VARIABLES = ("AUTO_DEPLOY", "GITLAB_IMAGE_TAG")
SKIP_VARIABLE = "SKIP_POST_DEPLOYMENT_MIGRATIONS"

# How the tools are called is the toolchain's (pdmpolicy/policyset/toolchain.py, docs/toolchain.md):
# read `toolchain.DEFAULT` or the policy set's toolchain, not these. They remain only as the
# toolchain's built-in values while analysis.py and gitlab/loader.py still import them
# (issue 11, the recognition half); remove them once nothing else does.
VM_RUN_VARIABLE = "RUN_POST_DEPLOY_MIGRATIONS"
KCTL = "k-ctl"
VM_TOOL = "deploy-vms"
"""A placeholder for the Deployer's VM tooling: no program has this name (docs/toolchain.md)."""

_DURATION_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_DURATION_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


def parse_duration(text: str) -> int | None:
    """Seconds in a GitLab-style duration ('10h', '3h 30m', '90 minutes'); None if invalid."""
    text = text.strip().lower()
    if not text:
        return None
    total = 0
    position = 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if not match or match.group(2) not in _DURATION_UNITS:
            return None
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return total


def format_duration(seconds: int) -> str:
    """'3h', '1h 30m', '45m': the short form used in messages."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"


def step_index(step: str) -> int:
    return ROLLOUT_STEPS.index(step)
