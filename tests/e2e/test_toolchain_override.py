"""Run what a toolchain override renders: an Ansible VM executor and a `kubectl wait` step.

The shipped environments and policy set, with a `toolchain:` section that calls the VM
tooling as `ansible-playbook -i inventory/<env> post-migrations.yml` and waits for the
migrations Job with `kubectl wait` after k-ctl. gitlab-ci-local runs the rendered child
pipeline with recording stubs of `k-ctl`, `kubectl` and `ansible-playbook`; the checks read
what each process received, not the YAML.

The files are rendered with the renderer's own functions (`rendered_files`), the bytes
`pdmpolicy render` writes. `render` itself refuses while the analysis cannot see the Ansible
call as the VM executor; that half of issue 11 is tested in tests/test_toolchain.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pdmpolicy.environments.project import load_project
from pdmpolicy.output.render import rendered_files
from tests.e2e.harness import TRIGGER_VARIABLES, Call, Run, Workspace
from tests.test_toolchain import override_repository

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PDMPOLICY_E2E") != "1",
        reason="end-to-end: run `nox -s e2e` (or PDMPOLICY_E2E=1 after tests/e2e/install.sh)",
    ),
]

CHILD = "ci/environments/gstg-postdeploy-migrations.yml"
KUBERNETES_JOB = "gstg-kubernetes-post-deploy-migrations"
VM_JOB = "gstg-vm-post-deploy-migrations"
PROGRAMS = ("k-ctl", "kubectl", "ansible-playbook")


def override_files(tmp_path: Path) -> dict[str, bytes]:
    root = override_repository(tmp_path / "source")
    project = load_project(root, root / "environments", root / "policies")
    return {path: text.encode("utf-8") for path, text in rendered_files(project).items()}


def calls_of(run: Run, program: str) -> list[Call]:
    return [call for call in run.calls if call.program == program]


def test_override_pipeline_calls_the_teams_tools_in_order(
    gitlab_ci_local: Path, tmp_path: Path
) -> None:
    workspace = Workspace(
        tmp_path / "run", override_files(tmp_path), gitlab_ci_local, programs=PROGRAMS
    )
    run = workspace.pipeline(CHILD)
    assert run.code == 0, run.explain()
    (kctl,) = calls_of(run, "k-ctl")
    (wait,) = calls_of(run, "kubectl")
    (ansible,) = calls_of(run, "ansible-playbook")
    assert (kctl.job, wait.job, ansible.job) == (KUBERNETES_JOB, KUBERNETES_JOB, VM_JOB)
    assert list(kctl.argv) == ["-e", "gstg", "upgrade"]
    assert kctl.env.get("SKIP_POST_DEPLOYMENT_MIGRATIONS") == "false"
    assert "WAIT_FOR_JOBS" not in kctl.env, "the wait is a step of its own here"
    assert list(wait.argv) == [
        "wait",
        "--for=condition=complete",
        "--timeout=36000s",
        "job",
        "-l",
        "app=migrations",
    ]
    assert list(ansible.argv) == ["-i", "inventory/gstg", "post-migrations.yml"]
    assert ansible.env.get("RUN_POST_DEPLOY_MIGRATIONS") == "true"
    # kubernetes-first: k-ctl, then the wait once k-ctl has ended, then the VM executor
    # once the wait has ended.
    assert kctl.end <= wait.start, run.explain()
    assert wait.end <= ansible.start, run.explain()
    # The trigger's variables never reach a tool that can run PDMs.
    for call in (kctl, ansible):
        for name in TRIGGER_VARIABLES:
            assert name not in call.env, call.describe()


def test_a_failing_wait_fails_the_job_and_the_vm_executor_never_starts(
    gitlab_ci_local: Path, tmp_path: Path
) -> None:
    workspace = Workspace(
        tmp_path / "run",
        override_files(tmp_path),
        gitlab_ci_local,
        fail_jobs=[f"{KUBERNETES_JOB}/kubectl"],
        programs=PROGRAMS,
    )
    run = workspace.pipeline(CHILD)
    assert run.code != 0, run.explain()
    assert [call.program for call in run.calls] == ["k-ctl", "kubectl"], run.explain()
    assert calls_of(run, "kubectl")[0].exit == 1
