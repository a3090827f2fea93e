"""What the e2e tests run: every shipped environment, and one environment per rollout step.

Each case is rendered with `pdmpolicy render` in a repository of its own (environments/,
the project's policies/, then ci/), so the files executed are exactly what the renderer
emits today, and the expectations come from the environment as declared, the policy
statement in SPEC.md, and `pdmpolicy.gitlab.analysis`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pdmpolicy.environments.model import Environment
from pdmpolicy.environments.project import load_project
from pdmpolicy.policies.base import EnvironmentView
from pdmpolicy.policies.examples import GSTG, GSTG_CNY_EXECUTOR, GSTG_FIRST
from pdmpolicy.policyset.toolchain import DEFAULT
from tests.e2e import harness

TODAY = "2026-11-26"
"""A fixed date for the soak and expiry rules, as in the other tests."""

STEP_EXECUTORS: dict[str, tuple[str, ...]] = {
    "vm": ("vm",),
    "dry-run": ("vm",),
    "kubernetes-after-vm": ("vm", "kubernetes"),
    "kubernetes-first": ("kubernetes", "vm"),
    "kubernetes-only": ("kubernetes",),
}
"""SPEC.md, "Rollout steps": the executors each step runs, in the order they must run."""

VM_ONLY = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: vm
  since: 2026-11-16
variables:
  DEPLOY_ENVIRONMENT: gstg
jobs:
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""

DRY_RUN = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: dry-run
  since: 2026-11-16
variables:
  DEPLOY_ENVIRONMENT: gstg
jobs:
  gstg-kubernetes-post-deploy-migrations-dry-run:
    runner: kubernetes
    stage: test
    kctl:
      environment: gstg
      stage: main
      action: upgrade
      dry_run: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""
"""Unlike the shipped gprd (both jobs `needs: []`), the VM job waits for the dry run by
stage order, so stage ordering is exercised too."""

STEPS: dict[str, tuple[str, str]] = {
    "vm": ("gstg", VM_ONLY),
    "dry-run": ("gstg", DRY_RUN),
    "kubernetes-after-vm": ("gstg", GSTG),
    "kubernetes-first": ("gstg", GSTG_FIRST),
    "kubernetes-only": ("gstg-cny", GSTG_CNY_EXECUTOR),
}
"""One environment per rollout step: (environment name, file text)."""

PARENT = "ci/postdeploy-migrations.yml"
WAIT = DEFAULT.kubernetes.wait


def shipped_environments() -> list[str]:
    return sorted(path.stem for path in (harness.REPO_ROOT / "environments").glob("*.yml"))


def case_ids() -> list[str]:
    return [f"shipped-{name}" for name in shipped_environments()] + [
        f"step-{step}" for step in STEPS
    ]


@dataclass(frozen=True)
class Case:
    id: str
    source: Path
    """A repository with environments/, policies/ and the rendered ci/."""
    environment_name: str

    @cached_property
    def view(self) -> EnvironmentView:
        project = load_project(self.source, self.source / "environments", self.source / "policies")
        for view in project.views:
            if view.name == self.environment_name:
                return view
        raise AssertionError(f"no environment {self.environment_name} in {self.source}")

    @property
    def environment(self) -> Environment:
        return self.view.environment

    @property
    def child(self) -> str:
        return self.view.pipeline.path

    @cached_property
    def files(self) -> dict[str, bytes]:
        return harness.ci_files(self.source)

    @property
    def expected_executors(self) -> list[tuple[str, str]]:
        """(kind, job) of each executor, in the order pdmpolicy's analysis says they run."""
        analysis = self.view.analysis
        order = analysis.execution_order()
        executors = sorted(analysis.executors, key=lambda e: order.index(e.job.name))
        result = []
        for effect in executors:
            assert effect.kind is not None
            result.append((effect.kind, effect.job.name))
        return result


class Sources:
    """Renders each case's repository once per test session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cases: dict[str, Case] = {}

    def case(self, case_id: str) -> Case:
        if case_id not in self._cases:
            self._cases[case_id] = self._build(case_id)
        return self._cases[case_id]

    def _build(self, case_id: str) -> Case:
        kind, _, name = case_id.partition("-")
        source = self.root / case_id
        (source / "environments").mkdir(parents=True)
        shutil.copytree(harness.REPO_ROOT / "policies", source / "policies")
        if kind == "shipped":
            for path in (harness.REPO_ROOT / "environments").glob("*.yml"):
                shutil.copy(path, source / "environments" / path.name)
            environment = name
        else:
            environment, text = STEPS[name]
            (source / "environments" / f"{environment}.yml").write_text(text, encoding="utf-8")
        result = harness.render(source, TODAY)
        if result.returncode != 0:
            raise AssertionError(
                f"`pdmpolicy render` refused or failed for {case_id} (exit "
                f"{result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return Case(case_id, source, environment)


def kctl_argv(environment: Environment, job: str) -> list[str]:
    """k-ctl's arguments as the environment file declares them (SPEC.md, domain.md:
    `k-ctl -e <env> [-s <stage>] [-D] <action>`)."""
    kctl = environment.job(job).kctl
    assert kctl is not None
    argv = ["-e", kctl.environment]
    if kctl.stage != "main":
        argv += ["-s", kctl.stage]
    if kctl.dry_run:
        argv.append("-D")
    return [*argv, kctl.action]


def kctl_variables(environment: Environment, job: str) -> dict[str, str]:
    """What k-ctl's environment must hold, as declared."""
    kctl = environment.job(job).kctl
    assert kctl is not None
    expected = {name: value for name, value, _ in kctl.variables}
    if kctl.wait_for_jobs:
        expected[WAIT.variable] = WAIT.value
    return expected
