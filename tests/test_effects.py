"""Effects by what a job does: every spelling of a PDM command is recognised or unknown,
never "none"; declared effects are held to account; a toolchain override is recognised."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.analysis import (
    DECLARED,
    DRY_RUN,
    KUBERNETES,
    NONE,
    RAILS,
    UNKNOWN,
    VM,
    analyse,
)
from pdmpolicy.gitlab.effects import MAX_SCRIPT_DEPTH, MAX_SCRIPT_FILES
from pdmpolicy.policyset.toolchain import (
    DEFAULT,
    KubernetesExecutor,
    Toolchain,
    VmExecutor,
    WaitForMigrations,
)
from tests.builders import ci_job as job
from tests.builders import ci_pipeline
from tests.conftest import Repo

RUN = "SKIP_POST_DEPLOYMENT_MIGRATIONS=false"


def effect(
    *script: str, toolchain: Toolchain = DEFAULT, root: Path | None = None, **kw: Any
) -> Any:
    pipeline = ci_pipeline(job("j", *script, **kw))
    return analyse(pipeline, toolchain, root=root).effect("j")


# --- k-ctl, however spelled ---------------------------------------------------------------

HIDDEN_KCTL = [
    f"{RUN} bin/k-ctl -e gstg upgrade",
    f"{RUN} ./bin/k-ctl -e gstg upgrade",
    f"env {RUN} k-ctl -e gstg upgrade",
    f"export {RUN}; exec k-ctl -e gstg upgrade",
    f"{RUN} command k-ctl -e gstg upgrade",
    f"bash -c '{RUN} k-ctl -e gstg upgrade'",
    f'sh -ec "{RUN} k-ctl -e gstg upgrade"',
    f"{RUN} k-ctl \\\n  -e gstg \\\n  upgrade",
    f"{RUN} timeout 10h nice k-ctl -e gstg upgrade",
    f"if true; then {RUN} k-ctl -e gstg upgrade; fi",
    f"deploy() {{ {RUN} k-ctl -e gstg upgrade; }}; deploy",
    f'{RUN} "${{TOOLS}}/k-ctl" -e gstg upgrade',
]


@pytest.mark.parametrize("line", HIDDEN_KCTL)
def test_kctl_spellings_are_executors(line: str) -> None:
    assert effect(line).kind == KUBERNETES


@pytest.mark.parametrize(
    "line",
    [
        "$KCTL -e gstg upgrade",
        "$(which k-ctl) -e gstg upgrade",
        'eval "k-ctl -e gstg upgrade"',
        "source ./deploy.sh",
        ". ./deploy.sh",
        'sh -c "$DEPLOY"',
        "bash",
        "helm upgrade gitlab gitlab/gitlab",
        "helmfile -e gstg apply",
        "helmfile sync",
        "kubectl apply -f migrations-job.yml",
        "kubectl -n gitlab create job --from=cronjob/x y",
        "kubectl exec deploy/toolbox -- gitlab-rake db:migrate",
        "kubectl $VERB -f job.yml",
        "helm $ACTION gitlab gitlab/gitlab",
        "make deploy",
        "xargs k-ctl -e gstg upgrade",
        "trap 'k-ctl -e gstg upgrade' EXIT",
    ],
)
def test_what_cannot_be_seen_through_is_unknown(line: str) -> None:
    found = effect(line)
    assert found.effect == UNKNOWN, found.describe()
    assert not found.conditional
    reasons = found.unknown_reasons()
    assert reasons and all(loc == Loc("ci.yml", 1) and why for loc, why in reasons)


def test_a_k_ctl_upgrade_left_to_pipeline_variables_is_conditional() -> None:
    found = effect("k-ctl -e gstg upgrade")
    assert found.effect == UNKNOWN and found.conditional
    assert "pipeline variables" in found.unknown_reasons()[0][1]


# --- the VM tooling and Rails --------------------------------------------------------------


def test_any_program_with_the_vm_switch_is_a_vm_executor() -> None:
    run = {"RUN_POST_DEPLOY_MIGRATIONS": "true"}
    assert effect("ansible-playbook -i gstg deploy.yml", variables=run).kind == VM
    assert effect("RUN_POST_DEPLOY_MIGRATIONS=true ./scripts/anything.sh").kind == VM


@pytest.mark.parametrize(
    "line",
    [
        "gitlab-rake db:migrate",
        "gitlab-rails db:migrate",
        "bundle exec rake db:migrate",
        "bundle exec rails db:migrate",
        "bin/rails db:migrate",
        "rake --trace db:migrate RAILS_ENV=production",
        "gitlab-ctl reconfigure",
    ],
)
def test_rails_migrate_commands_run_pdms_unless_the_skip_variable_is_present(line: str) -> None:
    assert effect(line).kind == RAILS
    # presence counts, whatever the value (Rails reads ENV[...] presence)
    assert effect(f"SKIP_POST_DEPLOYMENT_MIGRATIONS=false {line}").effect == NONE
    skip = {"SKIP_POST_DEPLOYMENT_MIGRATIONS": ""}
    assert effect(line, variables=skip).effect == NONE
    assert effect(f"env -u SKIP_POST_DEPLOYMENT_MIGRATIONS {line}", variables=skip).kind == RAILS


# --- script files ----------------------------------------------------------------------------


def test_a_script_file_in_the_repository_is_read(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "deploy.sh").write_text(
        '#!/bin/bash\nset -euo pipefail\nif [ -n "$X" ]; then\n'
        "  k-ctl -e gstg \\\n    upgrade\nfi\n",
        encoding="utf-8",
    )
    # The caller's environment reaches the file's commands.
    found = effect(f"{RUN} ./scripts/deploy.sh", root=tmp_path)
    assert found.kind == KUBERNETES
    assert found.strongest.via == ("scripts/deploy.sh",)
    assert effect(f"{RUN} bash scripts/deploy.sh", root=tmp_path).kind == KUBERNETES
    # without the value the same file is conditional, never none
    assert effect("./scripts/deploy.sh", root=tmp_path).conditional


def test_script_files_that_cannot_be_read_are_unknown(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text("#!/usr/bin/env python3\nprint(1)\n", encoding="utf-8")
    (tmp_path / "bad.sh").write_bytes(b"echo \xff\n")
    (tmp_path / "open.sh").write_text("echo 'unbalanced\n", encoding="utf-8")
    for line in ("./missing.sh", "./tool.py", "./bad.sh", "./open.sh", "../outside.sh"):
        assert effect(line, root=tmp_path).effect == UNKNOWN, line
        assert effect(line).effect == UNKNOWN, line  # no repository given: unknown too
    assert effect("/usr/local/bin/deploy", root=tmp_path).effect == UNKNOWN


def test_script_files_nested_too_deep_are_unknown(tmp_path: Path) -> None:
    depth = MAX_SCRIPT_DEPTH + 1
    for level in range(depth):
        (tmp_path / f"s{level}.sh").write_text(f"./s{level + 1}.sh\n", encoding="utf-8")
    (tmp_path / f"s{depth}.sh").write_text("echo done\n", encoding="utf-8")
    found = effect("./s0.sh", root=tmp_path)
    assert found.effect == UNKNOWN
    assert "nested" in found.unknown_reasons()[0][1]
    (tmp_path / "s2.sh").write_text("echo done\n", encoding="utf-8")
    assert effect("./s0.sh", root=tmp_path).effect == NONE


def test_a_script_file_calling_itself_ends_as_unknown(tmp_path: Path) -> None:
    (tmp_path / "loop.sh").write_text("./loop.sh\n", encoding="utf-8")
    assert effect("./loop.sh", root=tmp_path).effect == UNKNOWN


# --- declared effects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "shown"), [("none", NONE), ("dry-run", DRY_RUN), ("executor", DECLARED)]
)
def test_a_declaration_stands_where_the_analysis_cannot_see(declared: str, shown: str) -> None:
    found = effect("./scripts/announce.sh", declared_effect=declared)
    assert found.recognised == UNKNOWN
    assert found.effect == shown
    assert found.is_declared
    assert found.contradiction is None
    assert "declared" in found.label()


@pytest.mark.parametrize("declared", ["none", "dry-run"])
def test_a_declaration_never_hides_an_executor(declared: str) -> None:
    found = effect(f"{RUN} k-ctl -e gstg upgrade", declared_effect=declared)
    assert found.kind == KUBERNETES
    assert not found.is_declared
    assert found.contradiction is not None and "runs PDMs" in found.contradiction


def test_an_incomplete_job_is_unknown() -> None:
    unreadable = dataclasses.replace(
        job("j", "echo ok"),
        incomplete="its definition comes from an include that could not be read",
    )
    pipeline = ci_pipeline(unreadable)
    found = analyse(pipeline).effect("j")
    assert found.effect == UNKNOWN
    assert "include" in found.unknown_reasons()[0][1]


# --- a toolchain override --------------------------------------------------------------------

ANSIBLE = Toolchain(
    kubernetes=KubernetesExecutor(
        command=("bin/k-ctl",),
        wait=WaitForMigrations(style="command"),
    ),
    vm=VmExecutor(
        command=("ansible-playbook",),
        switches=MappingProxyType({"POSTDEPLOY_MIGRATIONS": "true"}),
    ),
    harmless=(*DEFAULT.harmless, "curl"),
)


def test_a_toolchain_override_is_what_is_recognised() -> None:
    assert (
        effect("POSTDEPLOY_MIGRATIONS=true ansible-playbook pdm.yml", toolchain=ANSIBLE).kind == VM
    )
    assert effect("ansible-playbook pdm.yml", toolchain=ANSIBLE).conditional
    assert (
        effect("POSTDEPLOY_MIGRATIONS=false ansible-playbook x.yml", toolchain=ANSIBLE).effect
        == NONE
    )
    # the default switch means nothing to this team's tooling
    assert effect("RUN_POST_DEPLOY_MIGRATIONS=true echo", toolchain=ANSIBLE).effect == NONE
    assert effect("curl -sf https://example.com", toolchain=ANSIBLE).effect == NONE
    assert effect("curl -sf https://example.com").effect == UNKNOWN
    assert effect(f"{RUN} k-ctl -e gstg upgrade", toolchain=ANSIBLE).kind == KUBERNETES


def test_the_wait_is_recognised_in_the_toolchain_style() -> None:
    wait = "kubectl wait --for=condition=complete --timeout=36000s job -l app=migrations"
    upgrade = f"{RUN} k-ctl -e gstg upgrade"
    (call,) = effect(upgrade, wait, toolchain=ANSIBLE).executor_calls
    assert call.waits
    (call,) = effect(wait, upgrade, toolchain=ANSIBLE).executor_calls
    assert not call.waits  # a wait before the upgrade waits for nothing
    (call,) = effect(f"WAIT_FOR_JOBS=true {upgrade}", toolchain=ANSIBLE).executor_calls
    assert not call.waits  # the input style is not this toolchain's
    (call,) = effect(f"WAIT_FOR_JOBS=true {upgrade}").executor_calls
    assert call.waits
    assert effect(wait, toolchain=ANSIBLE).effect == NONE


# --- verify on hand-written pipelines ------------------------------------------------------


def verify(repo: Repo, run: Any, text: str, *files: tuple[str, str]) -> tuple[int, dict[str, Any]]:
    (repo.root / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
    for name, content in files:
        path = repo.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    result = run("verify", ".gitlab-ci.yml", "--format", "json")
    assert result.code != 2, result.err
    return result.code, json.loads(result.out)


ANSIBLE_TWICE = """\
stages: [deploy]
.vm: &vm
  stage: deploy
  resource_group: gstg-postdeploy-migrations
  variables:
    RUN_POST_DEPLOY_MIGRATIONS: "true"
  inherit:
    variables: false
vm-pdm-a:
  <<: *vm
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG ansible-playbook -i gstg post-deploy.yml
vm-pdm-b:
  <<: *vm
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG ./scripts/pdm.sh
"""


def test_vm_executors_calling_any_program_get_the_same_findings_as_rendered_ones(
    repo: Repo, run: Any
) -> None:
    code, report = verify(repo, run, ANSIBLE_TWICE, ("scripts/pdm.sh", "echo run\n"))
    assert code == 1
    starters = {f["job"] for f in report["findings"] if f["policy"] == "pdm-at-most-once"}
    assert starters & {"vm-pdm-a", "vm-pdm-b"}
    (entry,) = report["inventory"]
    assert {(e["job"], e["kind"]) for e in entry["executors"]} == {
        ("vm-pdm-a", "vm"),
        ("vm-pdm-b", "vm"),
    }


ORDINARY = """\
stages: [build, test, deploy]
build:
  stage: build
  image: node:20
  script:
    - npm ci
    - npm run build
test:
  stage: test
  script:
    - npm test
    - ./scripts/coverage.sh
deploy:
  stage: deploy
  script:
    - helm upgrade --install web ./chart
"""


def test_an_ordinary_pipeline_has_nothing_to_prove(repo: Repo, run: Any) -> None:
    code, report = verify(repo, run, ORDINARY)
    assert code == 0
    assert report["findings"] == []
    (entry,) = report["inventory"]
    assert not entry["proved"]
    text = run("verify", ".gitlab-ci.yml")
    assert "no PDM executor found: nothing to prove" in text.out
    assert text.code == 0


def test_a_pdm_pipeline_reports_each_job_it_cannot_see(repo: Repo, run: Any) -> None:
    pdm = (
        "pdm:\n  stage: deploy\n  resource_group: gstg-pdm\n  script:\n"
        f"    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG {RUN} k-ctl -e gstg upgrade\n"
    )
    code, report = verify(repo, run, ORDINARY.replace("stages: [build, test, deploy]\n", "") + pdm)
    assert code == 1
    unknown = [f for f in report["findings"] if f["policy"] == "effects-known"]
    assert {f["job"] for f in unknown} == {"build", "test", "deploy"}
    deploy = next(f for f in unknown if f["job"] == "deploy")
    assert "helm upgrade can create the migrations Job" in deploy["message"]
    (entry,) = report["inventory"]
    assert [e["job"] for e in entry["executors"]] == ["pdm"]
    assert {u["job"] for u in entry["unknown"]} == {"build", "test", "deploy"}


def test_a_declared_effect_is_shown_as_declared(repo: Repo, run: Any) -> None:
    from pdmpolicy.policies.examples import GSTG

    repo.env(
        "gstg.yml",
        GSTG + "  gstg-announce:\n    runner: generic\n    effect: none\n"
        "    needs: [gstg-kubernetes-post-deploy-migrations]\n"
        "    script:\n      - ./scripts/announce.sh\n",
    )
    result = run("check", "--today", "2026-11-26")
    assert result.code == 0, result.out
    assert "declared: gstg-announce (none)" in result.out
    explained = run("explain", "gstg")
    assert "gstg-announce: does not run PDMs (declared)" in explained.out
    assert "gstg-announce<br/>none (declared)" in explained.out  # the Mermaid graph
    note = run("check", "--today", "2026-11-26", "--format", "markdown").out
    assert "#### What was checked" in note
    assert "declared: gstg-announce (none)" in note


def test_effect_is_only_for_generic_jobs(repo: Repo, run: Any) -> None:
    from pdmpolicy.policies.examples import GSTG

    text = GSTG.replace("    runner: vm\n", "    runner: vm\n    effect: none\n")
    repo.env("gstg.yml", text)
    result = run("check", "--today", "2026-11-26")
    assert result.code == 2
    assert "'effect' does not apply to runner: vm" in result.err


def test_lowered_jobs_keep_their_declaration_apart_from_recognition() -> None:
    base = job("j", f"{RUN} k-ctl -e gstg upgrade")
    assert replace(base, declared_effect="executor").declared_effect == "executor"


PARENT = """\
stages: [migrate, after]
kubernetes:
  stage: migrate
  trigger:
    include: child.yml
    strategy: depend
vm:
  stage: after
  resource_group: gstg-vm-pdm
  variables:
    RUN_POST_DEPLOY_MIGRATIONS: "true"
  inherit:
    variables: false
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG ansible-playbook post-deploy.yml
"""
CHILD = f"""\
pdm:
  stage: deploy
  resource_group: gstg-k8s-pdm
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG {RUN} k-ctl -e gstg upgrade
"""


@pytest.mark.parametrize(
    ("after", "wait", "found"),
    [
        (PARENT, "", True),
        (PARENT, "WAIT_FOR_JOBS=true ", False),
        (PARENT.replace("ansible-playbook post-deploy.yml", "echo done"), "", True),
        (
            PARENT.replace('    RUN_POST_DEPLOY_MIGRATIONS: "true"\n', "").replace(
                "ansible-playbook post-deploy.yml", "echo done"
            ),
            "",
            False,
        ),
        (PARENT.replace("    strategy: depend\n", ""), "", False),
    ],
)
def test_the_last_executor_waits_when_the_parent_goes_on(
    repo: Repo, run: Any, after: str, wait: str, found: bool
) -> None:
    child = CHILD.replace(f"{RUN} k-ctl", f"{wait}{RUN} k-ctl")
    _, report = verify(repo, run, after, ("child.yml", child))
    waits = [f for f in report["findings"] if f["policy"] == "kubernetes-waits-for-migrations"]
    assert bool(waits) == found, waits
    if found:
        assert waits[0]["path"] == "child.yml"
        assert "vm in .gitlab-ci.yml" in waits[0]["message"]


GITLAB_FIXTURES = Path(__file__).parent / "fixtures" / "gitlab"
VM_FIXTURES = sorted(
    p.name for p in GITLAB_FIXTURES.glob("*.yml") if "deploy-vms" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", VM_FIXTURES)
@pytest.mark.parametrize(
    "program", ["ansible-playbook -i inventory/gstg post-deploy-migrations.yml", "./pdm.sh"]
)
def test_any_vm_program_gets_the_findings_the_placeholder_gets(
    repo: Repo, run: Any, name: str, program: str
) -> None:
    """The Deployer's real tooling, or a wrapper, in place of `deploy-vms`: the same
    pdm-at-most-once verdict, counterexamples and lines."""
    text = (GITLAB_FIXTURES / name).read_text(encoding="utf-8")
    (repo.root / "pdm.sh").write_text("ansible-playbook post-deploy-migrations.yml\n")
    (repo.root / "placeholder.yml").write_text(text, encoding="utf-8")
    (repo.root / "tooling.yml").write_text(text.replace("deploy-vms", program), encoding="utf-8")

    def proved(path: str) -> list[tuple[str, int, str | None, str]]:
        report = json.loads(run("verify", path, "--format", "json").out)
        return [
            (f["policy"], f["line"], f["job"], f["message"])
            for f in report["findings"]
            if f["policy"] == "pdm-at-most-once"
        ]

    assert proved("tooling.yml") == proved("placeholder.yml")


AUTO_DEPLOY = """\
stages: [deploy]
.auto-deploy:
  stage: deploy
  script:
    - bin/k-ctl -s cny upgrade
gprd-cny:auto-deploy:
  extends: .auto-deploy
  resource_group: gprd-cny
gprd-us-east1-b:auto-deploy:
  extends: .auto-deploy
  resource_group: gprd-us-east1-b
"""
PDM_JOB = f"""\
gprd:post-deploy-migrations:
  stage: deploy
  needs: []
  resource_group: gprd-postdeploy-migrations
  timeout: 10h
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG {RUN} bin/k-ctl -e gprd upgrade
"""


def test_a_deploy_pipeline_is_not_buried_in_findings_about_its_auto_deploy_jobs(
    repo: Repo, run: Any
) -> None:
    # Auto-deploy alone (k-ctl without the skip value): no executor, nothing to prove.
    code, report = verify(repo, run, AUTO_DEPLOY)
    assert code == 0 and report["findings"] == []
    # With a PDM job beside them, each auto-deploy job is one effects-known finding (its
    # skip value is left to pipeline variables), not a list of overlap counterexamples.
    code, report = verify(repo, run, AUTO_DEPLOY + PDM_JOB)
    assert code == 1
    assert {f["policy"] for f in report["findings"]} == {"effects-known"}
    assert sorted(f["job"] for f in report["findings"]) == [
        "gprd-cny:auto-deploy",
        "gprd-us-east1-b:auto-deploy",
    ]
    assert all("pipeline variables" in f["message"] for f in report["findings"])
    # Told to skip on the command line, they are none, and the pipeline checks clean.
    told = AUTO_DEPLOY.replace(
        "bin/k-ctl -s cny", "SKIP_POST_DEPLOYMENT_MIGRATIONS=true bin/k-ctl -s cny"
    )
    code, report = verify(repo, run, told + PDM_JOB)
    assert report["findings"] == [] and code == 0


def test_script_files_calling_each_other_many_times_stay_bounded(tmp_path: Path) -> None:
    # Every file calls the next one 50 times: 50**4 calls if nothing bounded them.
    for level in range(MAX_SCRIPT_DEPTH + 1):
        (tmp_path / f"s{level}.sh").write_text(f"./s{level + 1}.sh\n" * 50, encoding="utf-8")
    found = effect("./s0.sh", root=tmp_path)
    assert found.effect == UNKNOWN
    assert len(found.commands) < 50 * MAX_SCRIPT_FILES
    assert any("read per job" in why for _, why in found.unknown_reasons())


RAILS_APP = """\
rspec:
  stage: test
  variables:
    RAILS_ENV: test
  script:
    - bundle exec rake db:create db:migrate
    - bundle exec rspec
rubocop:
  stage: test
  script:
    - bundle exec rubocop
"""


def test_a_rails_application_migrating_its_test_database_has_nothing_to_prove(
    repo: Repo, run: Any
) -> None:
    code, report = verify(repo, run, RAILS_APP)
    assert (code, report["findings"]) == (0, [])
    (entry,) = report["inventory"]
    assert not entry["proved"]
    assert [e["kind"] for e in entry["executors"]] == ["rails"]  # still shown for what it is
    # In production, or with GitLab's own command, the same pipeline is a PDM pipeline.
    for changed in (
        RAILS_APP.replace("RAILS_ENV: test", "RAILS_ENV: production"),
        RAILS_APP.replace("bundle exec rake db:create db:migrate", "gitlab-rake db:migrate"),
    ):
        code, report = verify(repo, run, changed)
        assert code == 1
        # rspec is the executor now; the job beside it cannot be seen through
        found = {f["job"] for f in report["findings"] if f["policy"] == "effects-known"}
        assert found == {"rubocop"}


@pytest.mark.parametrize(
    "line",
    [
        "kubectl -n gitlab logs -f $POD",
        'kubectl get job "$JOB" -o yaml',
        "helm status gitlab --namespace $NAMESPACE",
        "helmfile -e gstg diff",
        "kubectl wait --for=condition=complete job -l app=migrations",
    ],
)
def test_read_only_cluster_calls_are_none(line: str) -> None:
    assert effect(line).effect == NONE


def test_a_job_declared_executor_is_held_to_every_executor_policy(repo: Repo, run: Any) -> None:
    from pdmpolicy.policies.examples import GSTG

    repo.env(
        "gstg.yml",
        GSTG + "  gstg-extra-pdm:\n    runner: generic\n    effect: executor\n"
        "    script:\n      - ./scripts/run-pdms.sh\n",
    )
    result = run("check", "--today", "2026-11-26", "--format", "json")
    report = json.loads(result.out)
    policies = {f["policy"] for f in report["findings"] if f["job"] == "gstg-extra-pdm"}
    # unordered beside the other executors, and no timeout of its own
    assert {"pdm-at-most-once", "pdm-executor-timeout"} <= policies
    assert "effects-known" not in policies  # the declaration answers what was unknown
    (entry,) = report["inventory"]
    assert {"job": "gstg-extra-pdm", "kind": "declared", "declared": True} in entry["executors"]
    text = run("check", "--today", "2026-11-26").out
    assert "gstg-extra-pdm (executor (declared))" in text


def test_the_text_inventory_marks_conditional_jobs(repo: Repo, run: Any) -> None:
    _, _ = verify(repo, run, AUTO_DEPLOY + PDM_JOB)
    text = run("verify", ".gitlab-ci.yml").out
    assert "gprd:post-deploy-migrations (Kubernetes executor)" in text
    assert "unknown: gprd-cny:auto-deploy (conditional), gprd-us-east1-b:auto-deploy" in text


def test_the_text_inventory_counts_unknown_jobs_by_cause(repo: Repo, run: Any) -> None:
    # Many findings, few fixes: the inventory says which cause covers how many jobs.
    notify = "".join(
        f"notify-{n}:\n  stage: deploy\n  script:\n    - bin/notify-slack {n}\n"
        for n in ("a", "b", "c")
    )
    lint = "lint:\n  stage: test\n  script:\n    - yamllint .\n    - bin/notify-slack lint\n"
    _, report = verify(repo, run, PDM_JOB + notify + lint)
    unknown = {f["job"] for f in report["findings"] if f["policy"] == "effects-known"}
    assert unknown == {"notify-a", "notify-b", "notify-c", "lint"}  # still one finding a job
    text = run("verify", ".gitlab-ci.yml").out
    assert (
        "unknown, by cause: bin/notify-slack is not a file in the repository (4 jobs); "
        "yamllint is not in the toolchain and not known to be harmless (1 job)\n"
    ) in text
