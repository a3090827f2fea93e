"""Hypothesis proves the engine: properties over generated environment sets (issue 4).

Each property draws whole repositories of `environments/*.yml` (tests/strategies.py,
section "Environment sets for the property tests"). When one fails, hypothesis prints
(`note`) every file of the shrunk set, ready to paste into a repository.

Properties: soundness (check clean => prover finds nothing in what render emits, and the
files pass GitLab CI's JSON Schema), completeness on a catalogue of known mistakes, agreement
of the static policies with the prover, round trip and determinism of render, and the variety
of the safe strategy itself. Example counts scale with the hypothesis profile (docs/testing.md).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pdmpolicy.core.findings import Finding
from pdmpolicy.environments.lower import PARENT_PATH, lower, parent
from pdmpolicy.environments.project import Project, load_project
from pdmpolicy.gitlab import load_pipelines
from pdmpolicy.output.render import rendered_files
from pdmpolicy.policyset.engine import evaluate
from pdmpolicy.prover.prover import prove
from tests.conftest import REPO_ROOT
from tests.strategies import (
    ROLLOUT,
    SKIP,
    TODAY,
    EnvSet,
    environment_sets,
    executor_jobs,
    reordered,
    safe_environment_sets,
)
from tests.test_gitlab_loader import _assert_round_trip

GITLAB_SCHEMA = jsonschema.Draft7Validator(
    json.loads((REPO_ROOT / "tests/data/gitlab-ci-schema.json").read_text(encoding="utf-8"))
)
POLICIES = (REPO_ROOT / "policies/default.yml").read_text(encoding="utf-8")
DAY = dt.date.fromisoformat(TODAY)

# The static policies that cover the execution invariants `pdm-at-most-once` proves.
EXECUTION_POLICIES = frozenset(
    {
        "pdm-no-auto-retry",
        "rollout-step-shape",
        "kubernetes-waits-for-migrations",
        "pdm-one-environment-per-database",
    }
)


def examples(share: float) -> int:
    """`share` of the profile's max_examples (dev 50, ci 400), at least 5."""
    return max(5, round(settings.default.max_examples * share))


# --- a throwaway repository per example -----------------------------------------------


@contextmanager
def repository(env_set: EnvSet) -> Iterator[Path]:
    note(env_set.describe())
    with tempfile.TemporaryDirectory(prefix="pdm-prop-") as directory:
        root = Path(directory)
        (root / "environments").mkdir()
        (root / "policies").mkdir()
        (root / "policies/default.yml").write_text(POLICIES, encoding="utf-8")
        for path, text in env_set.files().items():
            (root / path).write_text(text, encoding="utf-8")
        yield root


def project_of(root: Path) -> Project:
    return load_project(root, root / "environments", root / "policies")


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error" and not f.waived]


def check(root: Path) -> tuple[Project, list[Finding]]:
    project = project_of(root)
    return project, errors(evaluate(project, DAY))


def write_rendered(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def record(env_set: EnvSet) -> None:
    """Coverage of a generated set, for hypothesis' statistics (--hypothesis-show-statistics)."""
    for doc in env_set.docs.values():
        event(f"step {doc['rollout']['step']}")
    databases = Counter(doc["database"] for doc in env_set.docs.values())
    event(f"{len(env_set.docs)} environments")
    if max(databases.values()) > 1:
        event("shared database")
    if any(doc["upstream"] for doc in env_set.docs.values()):
        event("upstream chain")


# --- 1. the safe strategy produces a variety ------------------------------------------


def test_safe_environment_sets_vary() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=max(100, examples(0.25)), database=None)
    @given(safe_environment_sets())
    def collect(env_set: EnvSet) -> None:
        databases = Counter(doc["database"] for doc in env_set.docs.values())
        seen[f"environments:{len(env_set.docs)}"] += 1
        seen["shared database"] += max(databases.values()) > 1
        seen["upstream"] += any(doc["upstream"] for doc in env_set.docs.values())
        seen["same step as upstream"] += any(
            doc["upstream"]
            and doc["rollout"]["step"] == env_set.docs[doc["upstream"]]["rollout"]["step"]
            for doc in env_set.docs.values()
        )
        for doc in env_set.docs.values():
            seen[f"step:{doc['rollout']['step']}"] += 1
            for job in doc["jobs"].values():
                seen[f"runner:{job['runner']}"] += 1
                seen["needs"] += "needs" in job
                seen["stage"] += "stage" in job
                seen[f"when:{job.get('when')}"] += 1
                seen["kctl wait false"] += job.get("kctl", {}).get("wait_for_jobs") is False
            executors = executor_jobs(doc)
            if len(executors) == 2:
                second = doc["jobs"][executors[1]]
                seen["second ordered by needs" if "needs" in second else "by stage"] += 1

    collect()
    wanted = [f"step:{s}" for s in ROLLOUT] + [
        "environments:1",
        "environments:4",
        "shared database",
        "upstream",
        "same step as upstream",
        "runner:vm",
        "runner:kubernetes",
        "runner:generic",
        "needs",
        "stage",
        "when:manual",
        "when:always",
        "kctl wait false",
        "second ordered by needs",
        "by stage",
    ]
    assert [w for w in wanted if not seen[w]] == [], seen


# --- 2. soundness ---------------------------------------------------------------------


@settings(max_examples=examples(0.2))
@given(st.one_of(safe_environment_sets(), environment_sets()))
def test_check_clean_means_emitted_pipelines_are_proven_and_valid(env_set: EnvSet) -> None:
    with repository(env_set) as root:
        project, found = check(root)
        if found:
            event("check refuses")
            return
        event("check clean")
        record(env_set)
        files = rendered_files(project)
        for path, text in files.items():
            problems = [
                f"{list(e.path)}: {e.message}"
                for e in GITLAB_SCHEMA.iter_errors(YAML(typ="safe", pure=True).load(text))
            ]
            assert problems == [], (path, problems)
        write_rendered(root, files)
        loaded = load_pipelines(root / PARENT_PATH, root)
        assert {p.path for p in loaded} == set(files)
        for pipeline in loaded:
            proof = prove(pipeline)
            assert proof.safe, (pipeline.path, [v.message for v in proof.violations])


# --- 3. completeness on known mistakes ------------------------------------------------

K_STEPS = ("kubernetes-after-vm", "kubernetes-first", "kubernetes-only")
TWO_STEPS = ("kubernetes-after-vm", "kubernetes-first")


@dataclass(frozen=True)
class Mutation:
    """A known mistake: applied to a safe set whose owner is at one of `steps`, `policy`
    must report an error."""

    name: str
    policy: str
    apply: Callable[[EnvSet], None]
    steps: tuple[str, ...] = ROLLOUT
    min_databases: int = 1


def _owner(env_set: EnvSet) -> dict[str, Any]:
    return env_set.docs[env_set.owner]


def _job(env_set: EnvSet, position: int) -> dict[str, Any]:
    """The owner's first (0) or second (1) executor."""
    doc = _owner(env_set)
    return doc["jobs"][executor_jobs(doc)[position]]


def _kube(env_set: EnvSet) -> dict[str, Any]:
    doc = _owner(env_set)
    return next(doc["jobs"][n] for n in executor_jobs(doc) if doc["jobs"][n]["runner"] != "vm")


def _set(position: int, key: str, value: Any) -> Callable[[EnvSet], None]:
    def apply(env_set: EnvSet) -> None:
        _job(env_set, position)[key] = value

    return apply


def _inherit_auto_deploy(env_set: EnvSet) -> None:
    doc = _owner(env_set)
    doc["variables"] = {**doc.get("variables", {}), "AUTO_DEPLOY": "true"}
    _job(env_set, 0)["inherit_variables"] = True


def _kctl_variable(name: str, value: str) -> Callable[[EnvSet], None]:
    def apply(env_set: EnvSet) -> None:
        _kube(env_set)["kctl"]["variables"][name] = value

    return apply


def _skip_in_job_variables(env_set: EnvSet) -> None:
    job = _kube(env_set)
    del job["kctl"]["variables"][SKIP]
    job["variables"] = {**job.get("variables", {}), SKIP: "false"}


def _skip_missing(env_set: EnvSet) -> None:
    del _kube(env_set)["kctl"]["variables"][SKIP]


def _unordered(when: str | None) -> Callable[[EnvSet], None]:
    """The second executor without needs, in the first one's stage."""

    def apply(env_set: EnvSet) -> None:
        first, second = _job(env_set, 0), _job(env_set, 1)
        second.pop("needs", None)
        second["stage"] = first.get("stage", "deploy")
        if when is not None:
            second["when"] = when

    return apply


def _no_wait(env_set: EnvSet) -> None:
    _job(env_set, 0)["kctl"]["wait_for_jobs"] = False


def _second_environment(env_set: EnvSet) -> None:
    doc = _owner(env_set)
    name = f"{env_set.owner}-second"
    env_set.docs[name] = {
        "environment": name,
        "database": doc["database"],
        "upstream": None,
        "rollout": {"step": "vm", "since": "2026-10-01"},
        "jobs": {
            f"{name}-vm-post-deploy-migrations": {
                "runner": "vm",
                "variables": {"RUN_POST_DEPLOY_MIGRATIONS": "true"},
                "timeout": "10h",
            }
        },
    }


def _other_database(env_set: EnvSet) -> None:
    doc = _owner(env_set)
    other = next(n for n, d in env_set.docs.items() if d["database"] != doc["database"])
    job = next(j for j in doc["jobs"].values() if j["runner"] == "kubernetes")
    job["kctl"]["environment"] = other


def _downstream(ahead: int) -> Callable[[EnvSet], None]:
    """A new environment following the owner: at its step on the same day, or ahead."""

    def apply(env_set: EnvSet) -> None:
        doc = _owner(env_set)
        name = f"{env_set.owner}-next"
        step = ROLLOUT.index(doc["rollout"]["step"]) + ahead
        env_set.docs[name] = {
            "environment": name,
            "database": f"{name}-db",
            "upstream": env_set.owner,
            "rollout": {"step": ROLLOUT[step], "since": doc["rollout"]["since"]},
            "jobs": {f"{name}-notify": {"runner": "generic", "script": ["echo hello"]}},
        }

    return apply


def _expired_waiver(env_set: EnvSet) -> None:
    env_set.policy_files["waivers-extra.yml"] = (
        "waivers:\n"
        "  - policy: pdm-executor-timeout\n"
        f"    environment: {env_set.owner}\n"
        "    reason: staging migrations are short\n"
        '    owner: "@release-managers"\n'
        "    expires: 2026-11-01\n"
    )


def _drop_dry_run(env_set: EnvSet) -> None:
    jobs = _owner(env_set)["jobs"]
    # `k-ctl template` shows the manifest too: it counts as the dry run.
    shows = [
        n
        for n, j in jobs.items()
        if "kctl" in j and (j["kctl"].get("dry_run") or j["kctl"]["action"] == "template")
    ]
    for name in shows:
        del jobs[name]


def _kubernetes_executor_at_vm_step(env_set: EnvSet) -> None:
    name = env_set.owner
    _owner(env_set)["jobs"][f"{name}-kubernetes-extra"] = {
        "runner": "kubernetes",
        "needs": [executor_jobs(_owner(env_set))[0]],
        "kctl": {
            "environment": name,
            "action": "upgrade",
            "wait_for_jobs": True,
            "variables": {SKIP: "false"},
        },
        "timeout": "10h",
    }


MUTATIONS = [
    Mutation("add-retry", "pdm-no-auto-retry", _set(0, "retry", 1)),
    Mutation("retry-2-on-second", "pdm-no-auto-retry", _set(1, "retry", 2), TWO_STEPS),
    Mutation("inherit-auto-deploy", "no-auto-deploy-variables", _inherit_auto_deploy),
    Mutation(
        "image-tag-job-variable",
        "no-auto-deploy-variables",
        _set(0, "variables", {"RUN_POST_DEPLOY_MIGRATIONS": "true", "GITLAB_IMAGE_TAG": "v1"}),
        ("vm", "dry-run", "kubernetes-after-vm"),
    ),
    Mutation(
        "auto-deploy-in-kctl-variables",
        "no-auto-deploy-variables",
        _kctl_variable("AUTO_DEPLOY", "true"),
        K_STEPS,
    ),
    Mutation("skip-zero", "skip-flag-false", _kctl_variable(SKIP, "0"), K_STEPS),
    Mutation("skip-empty", "skip-flag-false", _kctl_variable(SKIP, ""), K_STEPS),
    Mutation("skip-only-in-job-variables", "skip-flag-false", _skip_in_job_variables, K_STEPS),
    Mutation("skip-missing", "skip-flag-false", _skip_missing, K_STEPS),
    Mutation("drop-needs", "rollout-step-shape", _unordered(None), TWO_STEPS),
    Mutation("manual-second-without-needs", "rollout-step-shape", _unordered("manual"), TWO_STEPS),
    Mutation(
        "allow-failure-first", "rollout-step-shape", _set(0, "allow_failure", True), TWO_STEPS
    ),
    Mutation("when-always-second", "rollout-step-shape", _set(1, "when", "always"), TWO_STEPS),
    Mutation(
        "when-on-failure-second", "rollout-step-shape", _set(1, "when", "on_failure"), TWO_STEPS
    ),
    Mutation("dry-run-step-without-dry-run", "rollout-step-shape", _drop_dry_run, ("dry-run",)),
    Mutation(
        "kubernetes-executor-at-vm-step",
        "rollout-step-shape",
        _kubernetes_executor_at_vm_step,
        ("vm", "dry-run"),
    ),
    Mutation(
        "drop-wait-for-jobs",
        "kubernetes-waits-for-migrations",
        _no_wait,
        ("kubernetes-first",),
    ),
    Mutation(
        "second-environment-of-database-executes",
        "pdm-one-environment-per-database",
        _second_environment,
    ),
    Mutation(
        "kctl-targets-other-database",
        "kctl-environment-match",
        _other_database,
        ROLLOUT[1:],
        min_databases=2,
    ),
    Mutation(
        "downstream-same-step-no-soak", "promotion-order", _downstream(0), ROLLOUT[1:]
    ),  # step vm is the status quo: nothing to soak
    Mutation("downstream-ahead-of-upstream", "promotion-order", _downstream(1), ROLLOUT[:-1]),
    Mutation("interruptible", "pdm-not-interruptible", _set(0, "interruptible", True)),
    Mutation("resource-group-not-database", "pdm-locked", _set(0, "resource_group", "shared")),
    Mutation("timeout-below-minimum", "pdm-executor-timeout", _set(0, "timeout", "1h")),
    Mutation("expired-waiver", "waiver-valid", _expired_waiver),
]
BY_NAME = {m.name: m for m in MUTATIONS}


@st.composite
def mutated_sets(draw: st.DrawFn, mutation: Mutation | None = None) -> EnvSet:
    """A safe set with one known mistake applied (any mutation unless one is given)."""
    if mutation is None:
        mutation = draw(st.sampled_from(MUTATIONS))
    env_set = draw(safe_environment_sets(mutation.steps, mutation.min_databases)).copy()
    mutation.apply(env_set)
    note(f"mutation: {mutation.name} (caught by {mutation.policy})")
    return env_set


def test_catalogue_has_a_mutation_per_mechanism() -> None:
    assert len(MUTATIONS) >= 15
    assert len({m.policy for m in MUTATIONS}) >= 11


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_known_mistake_is_caught_by_its_policy(name: str) -> None:
    mutation = BY_NAME[name]

    @settings(max_examples=examples(0.015))
    @given(mutated_sets(mutation))
    def caught(env_set: EnvSet) -> None:
        with repository(env_set) as root:
            _, found = check(root)
        assert mutation.policy in {f.policy for f in found}, [(f.policy, f.message) for f in found]

    caught()


# --- 4. agreement of the static policies and the prover ------------------------------


@settings(max_examples=examples(0.25))
@given(
    st.one_of(
        safe_environment_sets(),
        environment_sets(),
        mutated_sets(),
    )
)
def test_static_policies_and_prover_agree(env_set: EnvSet) -> None:
    with repository(env_set) as root:
        project, found = check(root)
    for view in project.views:
        proof = prove(view.pipeline)
        mine = [f for f in found if f.environment == view.name]
        static = {f.policy for f in mine} & EXECUTION_POLICIES
        if not proof.safe:
            event("prover: violation")
            note(f"prover on {view.name}: {[v.message for v in proof.violations]}")
            assert static, (view.name, [(f.policy, f.message) for f in mine])
        for finding in mine:
            if finding.policy == "pdm-no-auto-retry":
                event("retry finding")
                assert not proof.safe, (view.name, finding.message)
        at_most_once = any(f.policy == "pdm-at-most-once" for f in mine)
        assert at_most_once == (not proof.safe), view.name


# --- 5. round trip and determinism ----------------------------------------------------


@settings(max_examples=examples(0.1))
@given(st.one_of(safe_environment_sets(), environment_sets()))
def test_rendered_files_load_back_to_the_lowered_model(env_set: EnvSet) -> None:
    with repository(env_set) as root:
        project = project_of(root)
        files = rendered_files(project)
        assert rendered_files(project_of(root)) == files  # twice: the same bytes
        write_rendered(root, files)
        loaded = load_pipelines(root / PARENT_PATH, root)
        environments = list(project.environments)
        lowered = sorted((lower(e) for e in environments), key=lambda p: p.path)
        # The parent triggers children in its own order; compare them by path.
        children = sorted(loaded[1:], key=lambda p: p.path)
        _assert_round_trip((loaded[0], *children), [parent(environments), *lowered])
    # Keys and jobs written in another order: the same bytes. (Variable mappings are
    # reordered by test_rendered_bytes_ignore_variable_order.)
    shuffled = EnvSet(
        {n: reordered(d, variables=False) for n, d in reversed(env_set.docs.items())},
        env_set.owner,
    )
    with repository(shuffled) as root:
        assert rendered_files(project_of(root)) == files


@settings(max_examples=examples(0.1))
@given(safe_environment_sets())
def test_rendered_bytes_ignore_variable_order(env_set: EnvSet) -> None:
    with repository(env_set) as root:
        files = rendered_files(project_of(root))
    shuffled = EnvSet({n: reordered(d) for n, d in env_set.docs.items()}, env_set.owner)
    with repository(shuffled) as root:
        assert rendered_files(project_of(root)) == files
