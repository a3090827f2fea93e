"""Properties of `advance` over generated environment sets (tests/strategies.py).

For any set `check` accepts: moving an environment that `status` says may advance gives a
set that checks clean (the current files as the base, as on the merge request) and differs
from the input only where the step requires; every comment outside the jobs the step
removes survives, in order; a refusal names the rule and the day `status` gave, and on that
day the move is allowed; and moving back gives an equivalent environment.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from pdmpolicy.core import names
from pdmpolicy.core.names import ROLLOUT_STEPS, SKIP_VARIABLE
from pdmpolicy.environments.lower import lower
from pdmpolicy.environments.model import Environment, Job
from pdmpolicy.environments.project import Project, load_project
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.policyset.engine import evaluate
from pdmpolicy.rollout.advance import Outcome, plan_moves
from pdmpolicy.rollout.plan import status
from tests.conftest import REPO_ROOT
from tests.strategies import EnvSet, safe_environment_sets

POLICIES = (REPO_ROOT / "policies/default.yml").read_text(encoding="utf-8")


def examples(share: float) -> int:
    return max(5, round(settings.default.max_examples * share))


_KEY = re.compile(r"^( *)([A-Za-z0-9_.\-\"]+):")


def commented(text: str) -> str:
    """`text` with a marked comment line above every key and a marked end-of-line comment
    on every line that holds a scalar value: `# c<n> <indent>`."""
    out = []
    for number, line in enumerate(text.splitlines()):
        match = _KEY.match(line)
        if match:
            out.append(f"{match.group(1)}# above{number}")
        if match and not line.rstrip().endswith(":"):
            line += f"  # eol{number}"
        out.append(line)
    return "\n".join(out) + "\n"


def markers(text: str) -> list[str]:
    return re.findall(r"# ((?:above|eol)\d+)", text)


def marker_owners(text: str) -> dict[str, tuple[str | None, str]]:
    """Marker -> (the job, the key) of the line it is on or directly above; job None
    outside `jobs:`."""
    owners: dict[str, tuple[str | None, str]] = {}
    job: str | None = None
    in_jobs = False
    pending: list[str] = []
    for line in text.splitlines():
        found = markers(line)
        if line.lstrip().startswith("#"):
            pending += found
            continue
        key = line.strip().split(":")[0].strip('"')
        if not line.startswith(" "):
            in_jobs = line.startswith("jobs:")
            job = None
        elif in_jobs and re.match(r"^  [^ #]", line):
            job = key
        for marker in pending + found:
            owners[marker] = (job, key)
        pending = []
    return owners


REMOVABLE_KEYS = frozenset({"needs", "stage", "timeout", "wait_for_jobs"})
"""Keys a step may remove from an executor or dry-run job (their comments go with them)."""


@contextmanager
def repository(env_set: EnvSet, comments: bool = False) -> Iterator[Path]:
    note(env_set.describe())
    with tempfile.TemporaryDirectory(prefix="pdm-rollout-") as directory:
        root = Path(directory)
        (root / "environments").mkdir()
        (root / "policies").mkdir()
        (root / "policies/default.yml").write_text(POLICIES, encoding="utf-8")
        for path, text in env_set.files().items():
            (root / path).write_text(commented(text) if comments else text, encoding="utf-8")
        yield root


def project_of(root: Path) -> Project:
    return load_project(root, root / "environments", root / "policies")


def clean_day(project: Project) -> dt.date:
    """A day on which no `since` lies in the future."""
    return max(e.since for e in project.environments)


def apply(root: Path, outcome: Outcome) -> None:
    for move in outcome.moves:
        (root / move.path).write_text(move.after, encoding="utf-8")


def errors(project: Project, day: dt.date, base: Project | None = None) -> list[str]:
    found = evaluate(project, day, base.views if base else None)
    return [
        f"{f.loc}: {f.policy}: {f.message}" for f in found if f.severity == "error" and not f.waived
    ]


# --- what a step may change ---------------------------------------------------------

_STEP_KEYS = frozenset({"needs", "stage", "timeout"})
"""Keys of the executors (and the dry-run job becoming one) a step may set."""


def _job_view(job: Job, loose: bool) -> dict[str, Any]:
    """The settings of a job; `loose` leaves out what a step may change."""
    kctl = job.kctl
    view: dict[str, Any] = {
        "runner": job.runner,
        "when": job.when,
        "retry": job.retry,
        "allow_failure": job.allow_failure,
        "interruptible": job.interruptible,
        "resource_group": job.resource_group,
        "variables": [(n, v) for n, v, _ in job.variables],
        "inherit_variables": job.inherit_variables,
        "script": [line for line, _ in job.script] if job.script else None,
    }
    if not loose:
        view.update(needs=job.needs, stage=job.stage, timeout=job.timeout)
    if kctl is not None:
        view["kctl"] = {
            "environment": kctl.environment,
            "stage": kctl.stage,
            "action": kctl.action,
            "variables": [(n, v) for n, v, _ in kctl.variables if not loose or n != SKIP_VARIABLE],
        }
        if not loose:
            view["kctl"].update(dry_run=kctl.dry_run, wait_for_jobs=kctl.wait_for_jobs)
    return view


def _top(env: Environment) -> dict[str, Any]:
    return {
        "environment": env.name,
        "database": env.database,
        "upstream": env.upstream,
        "variables": [(n, v) for n, v, _ in env.variables],
    }


def assert_only_step_changes(before: Environment, after: Environment) -> None:
    """Jobs the step does not touch are unchanged but for needs naming a job it renamed or
    removed; executors and the dry-run job they come from keep all but `_STEP_KEYS`,
    k-ctl's dry_run/wait_for_jobs and the skip variable."""
    assert _top(before) == _top(after)
    old = {job.name: job for job in before.jobs}
    new = {job.name: job for job in after.jobs}
    touched = set(old) ^ set(new)
    for name in sorted(set(old) & set(new)):
        if _job_view(old[name], loose=False) == _job_view(new[name], loose=False):
            continue
        if old[name].runner in ("vm", "kubernetes"):
            assert _job_view(old[name], loose=True) == _job_view(new[name], loose=True), name
        else:
            # A helper changes only by the needs that named a job the step renamed/removed.
            assert set(old[name].needs or ()) ^ set(new[name].needs or ()) <= touched, name
            assert {**_job_view(old[name], True), "needs": None} == {
                **_job_view(new[name], True),
                "needs": None,
            }, name


# --- properties ---------------------------------------------------------------------


@settings(max_examples=examples(0.3))
@given(safe_environment_sets(), st.data())
def test_advance_of_an_environment_that_may_advance_checks_clean(
    env_set: EnvSet, data: st.DataObject
) -> None:
    with repository(env_set, comments=True) as root:
        project = project_of(root)
        day = clean_day(project) + dt.timedelta(days=data.draw(st.integers(0, 20)))
        assume(not errors(project, day))
        rows = {
            row.environment: row for row in status(project.environments, project.policy_set, day)
        }
        movable = sorted(name for name, row in rows.items() if row.may_advance)
        assume(movable)
        name = data.draw(st.sampled_from(movable))
        before = project.views[[v.name for v in project.views].index(name)].environment
        event(f"advance {before.step}")
        outcome = plan_moves(project, name, before.step_index + 1, day)
        assert outcome.refusals == [] and outcome.findings == [], (
            outcome.refusals,
            outcome.findings,
        )
        texts = {p: (root / p).read_text(encoding="utf-8") for p in [before.path]}
        apply(root, outcome)
        after_project = project_of(root)
        assert errors(after_project, day, base=project) == []
        after = {e.name: e for e in after_project.environments}
        assert after[name].step == ROLLOUT_STEPS[before.step_index + 1]
        assert after[name].since == day
        assert_only_step_changes(before, after[name])
        for other in project.environments:
            if other.name != name:
                assert other == after[other.name] or other.path != before.path
        # Comments: all survive, in order, but those on, in or above a job the step removed.
        old_text, new_text = texts[before.path], (root / before.path).read_text(encoding="utf-8")
        removed = {job.name for job in before.jobs} - {job.name for job in after[name].jobs}
        owners = marker_owners(old_text)
        gone = set(markers(old_text)) - set(markers(new_text))
        for marker in gone:
            job, key = owners[marker]
            assert job in removed or key in REMOVABLE_KEYS, (marker, job, key)
        kept = [m for m in markers(old_text) if m not in gone]
        assert markers(new_text) == kept
        if gone:
            event("comments of a removed job went with it")


@settings(max_examples=examples(0.3))
@given(safe_environment_sets(), st.data())
def test_refusal_names_the_rule_and_the_day_status_gives(
    env_set: EnvSet, data: st.DataObject
) -> None:
    with repository(env_set) as root:
        project = project_of(root)
        day = clean_day(project) + dt.timedelta(days=data.draw(st.integers(0, 8)))
        assume(not errors(project, day))
        rows = status(project.environments, project.policy_set, day)
        held = [row for row in rows if row.next_step and row.rule and not row.planned]
        assume(held)
        row = data.draw(st.sampled_from(held))
        assert row.earliest is not None and row.earliest > day
        target = ROLLOUT_STEPS.index(row.next_step or "")
        outcome = plan_moves(project, row.environment, target, day)
        assert outcome.moves == []
        first = outcome.refusals[0]
        assert (first.rule, first.allowed_from) == (row.rule, row.earliest)
        event(f"refused by {first.rule}")
        # On that day the rules allow it, and the result checks clean.
        later = plan_moves(project, row.environment, target, row.earliest)
        assert later.refusals == [] and later.findings == [], (later.refusals, later.findings)


@settings(max_examples=examples(0.3))
@given(safe_environment_sets(), st.data())
def test_advance_then_back_gives_an_equivalent_environment(
    env_set: EnvSet, data: st.DataObject
) -> None:
    with repository(env_set) as root:
        project = project_of(root)
        day = clean_day(project) + dt.timedelta(days=30)
        assume(not errors(project, day))
        rows = status(project.environments, project.policy_set, day)
        movable = sorted(row.environment for row in rows if row.may_advance)
        assume(movable)
        name = data.draw(st.sampled_from(movable))
        before = {e.name: e for e in project.environments}[name]
        forward = plan_moves(project, name, before.step_index + 1, day)
        assert forward.refusals == [] and forward.findings == []
        apply(root, forward)
        moved = project_of(root)
        back = plan_moves(moved, name, before.step_index, day + dt.timedelta(days=1), True)
        assert back.refusals == [] and back.findings == [], (back.refusals, back.findings)
        assert any("always allowed" in n for n in back.notes)
        apply(root, back)
        after = {e.name: e for e in project_of(root).environments}[name]
        event(f"round trip from {before.step}")
        assert after.step == before.step
        assert _top(after) == _top(before)
        dry = {
            job.name
            for job in before.jobs
            if job.kctl is not None and job.kctl.dry_run and job.runner == "kubernetes"
        }
        old = pipeline_view(before)
        new = pipeline_view(after)
        if before.step == "vm" and set(old) - dry:
            # Back at vm, advance keeps no Kubernetes dry run (the step runs none), unless
            # the dry runs are all the file has.
            old = {n: v for n, v in old.items() if n not in dry}
        if before.step == "kubernetes-first":
            # The VM executor comes back new: after the Kubernetes executor, running PDMs.
            # The file at kubernetes-only no longer says what else the old one had.
            vm = f"{name}-vm-post-deploy-migrations"
            if vm in old:
                kube = f"{name}-kubernetes-post-deploy-migrations"
                assert analyse(lower(after)).ordered_after_success(kube, vm)
                for views in (old, new):
                    views[vm] = {"runs": (names.VM_RUN_VARIABLE, "true") in views[vm]["variables"]}
        for job_name in dry & set(old):
            # A dry-run job's needs, timeout and k-ctl line are its own business: it runs
            # nothing. What it shows (environment, stage, action) must come back.
            for views in (old, new):
                views[job_name] = {"kctl": views[job_name]["kctl"]}
        assert old == new


def pipeline_view(env: Environment) -> dict[str, dict[str, Any]]:
    """Each job as GitLab would run it (the lowered pipeline): defaults made explicit."""
    pipeline = lower(env)
    out = {}
    for ci in pipeline.jobs:
        job = env.job(ci.name)
        kctl = job.kctl
        out[ci.name] = {
            "stage": ci.stage,
            "needs": sorted(n.job for n in ci.needs) if ci.needs is not None else None,
            "when": ci.when,
            "allow_failure": ci.allow_failure,
            "retry": ci.retry,
            "interruptible": ci.interruptible,
            "resource_group": ci.resource_group,
            "timeout": names.parse_duration(ci.timeout) if ci.timeout else None,
            "variables": [(v.name, v.value) for v in ci.variables],
            "inherit_variables": ci.inherit_variables,
            # k-ctl jobs by their settings: advance sets wait_for_jobs when something runs
            # after the Kubernetes executor and never clears it (waiting is never less safe).
            "script": [line.text for line in ci.script] if kctl is None else None,
            "kctl": (kctl.environment, kctl.stage, kctl.action) if kctl else None,
            "kctl_run": ((kctl.dry_run, [(n, v) for n, v, _ in kctl.variables]) if kctl else None),
        }
    return out
