"""The toolchain: a `toolchain:` section of the policy set, and what render makes of it.

- Bad sections are refused at file:line:col with exit 2, like the rest of the policy set.
- An override repository (an Ansible VM executor, a `kubectl wait` step) renders pipelines
  that call those tools, byte for byte the same on every run, valid for GitLab's schema; the
  default toolchain renders what it always did.
- A property: for generated toolchains (command words, flags, wait style), the rendered
  script lines, read back from the YAML as GitLab reads it, give back the declared calls.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pdmpolicy.core import names
from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import parse_document
from pdmpolicy.environments.lower import lower
from pdmpolicy.environments.model import build_environment
from pdmpolicy.environments.project import load_project
from pdmpolicy.gitlab import load_pipelines
from pdmpolicy.gitlab.analysis import KUBERNETES, VM, analyse
from pdmpolicy.gitlab.effects import is_wait_command, parse_kctl
from pdmpolicy.gitlab.shell import Command, commands
from pdmpolicy.output.render import emit, rendered_files
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG_FIRST
from pdmpolicy.policyset.config import load_policy_set
from pdmpolicy.policyset.toolchain import DEFAULT, KubernetesCall, Toolchain, expand, match_words
from tests.builders import ci_job, ci_pipeline
from tests.conftest import REPO_ROOT, Repo

TODAY = "2026-11-26"
SCHEMA = jsonschema.Draft7Validator(
    json.loads((REPO_ROOT / "tests/data/gitlab-ci-schema.json").read_text(encoding="utf-8"))
)
POLICIES = (REPO_ROOT / "policies/default.yml").read_text(encoding="utf-8")

ANSIBLE_AND_KUBECTL_WAIT = """\
# How this team's tools are called (docs/toolchain.md).
toolchain:
  kubernetes:
    wait:
      style: command
  vm:
    command: ansible-playbook -i inventory/{environment} post-migrations.yml
"""
PREFIX = "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG"


def policy_errors(repo: Repo, run: Any, text: str) -> list[str]:
    """The `file:line:col: error: message` lines of `check` on a repository whose policy
    set holds `text` as policies/toolchain.yml."""
    repo.env("gstg.yml", GSTG_FIRST)
    repo.policies(text, "toolchain.yml")
    result = run("check", "--today", TODAY)
    assert result.code == 2, (result.out, result.err)
    assert result.out == "", "nothing is checked when the policy set is bad"
    assert "Traceback" not in result.err
    return [line for line in result.err.splitlines() if ": error: " in line]


# --- validation ---------------------------------------------------------------------------

BAD_SECTIONS = [
    (
        "toolchain:\n  kubernets: {}\n",
        "policies/toolchain.yml:2:3: error: unknown key 'kubernets' in toolchain",
    ),
    (
        "toolchain:\n  kubernetes:\n    flags: -e\n",
        "policies/toolchain.yml:3:5: error: unknown key 'flags' in toolchain.kubernetes",
    ),
    (
        "toolchain:\n  kubernetes:\n    run_value: false\n",
        "policies/toolchain.yml:3:16: error: toolchain.kubernetes.run_value must be a string; "
        "YAML reads the unquoted false as a boolean",
    ),
    (
        "toolchain:\n  vm:\n    switches:\n      RUN_POST_DEPLOY_MIGRATIONS: yes\n",
        "policies/toolchain.yml:4:35: error: toolchain.vm.switches.RUN_POST_DEPLOY_MIGRATIONS "
        "must be a string; YAML reads the unquoted yes as a boolean",
    ),
    (
        'toolchain:\n  vm:\n    command: ""\n',
        "policies/toolchain.yml:3:14: error: toolchain.vm.command must not be empty",
    ),
    (
        "toolchain:\n  vm:\n    command: []\n",
        "policies/toolchain.yml:3:14: error: toolchain.vm.command must not be empty",
    ),
    (
        "toolchain:\n  vm:\n    command: [ansible-playbook, '']\n",
        "policies/toolchain.yml:3:33: error: word 2 of toolchain.vm.command is empty",
    ),
    (
        "toolchain:\n  vm:\n    command: {program: x}\n",
        "policies/toolchain.yml:3:14: error: toolchain.vm.command must be a string",
    ),
    (
        "toolchain:\n  vm:\n    command: ansible-playbook -i 'inventory\n",
        "policies/toolchain.yml:3:14: error: toolchain.vm.command cannot be split into words",
    ),
    (
        "toolchain:\n  vm:\n    command: ansible-playbook -i inventory/{env} pdm.yml\n",
        "policies/toolchain.yml:3:14: error: toolchain.vm.command: unknown placeholder {env}",
    ),
    (
        "toolchain:\n  kubernetes:\n    wait: {style: kubectl}\n",
        "policies/toolchain.yml:3:19: error: toolchain.kubernetes.wait.style must be one of "
        "input, command, found 'kubectl'",
    ),
    (
        "toolchain:\n  kubernetes:\n    wait: {default_timeout: 600}\n",
        "policies/toolchain.yml:3:29: error: toolchain.kubernetes.wait.default_timeout must be "
        "a duration",
    ),
    (
        "toolchain:\n  kubernetes:\n    environment_flag: e\n",
        "policies/toolchain.yml:3:23: error: toolchain.kubernetes.environment_flag must be one "
        "option word",
    ),
    (
        "toolchain:\n  kubernetes:\n    dry_run_flag: -s\n",
        "policies/toolchain.yml:3:19: error: toolchain.kubernetes.dry_run_flag is '-s', the "
        "same as toolchain.kubernetes.stage_flag",
    ),
    (
        "toolchain:\n  kubernetes:\n    apply_actions: [upgrade, template]\n",
        "policies/toolchain.yml:3:20: error: action 'template' is in "
        "toolchain.kubernetes.show_actions and in toolchain.kubernetes.apply_actions",
    ),
    (
        "toolchain:\n  kubernetes:\n    skip_variable: SKIP-PDM\n",
        "policies/toolchain.yml:3:20: error: toolchain.kubernetes.skip_variable must be a "
        "variable name",
    ),
    (
        "toolchain:\n  rails:\n    migrate_commands: [gitlab-rake db:migrate, '']\n",
        "policies/toolchain.yml:3:48: error: toolchain.rails.migrate_commands, item 2, must "
        "not be empty",
    ),
    (
        "toolchain:\n  harmless: [echo, true]\n",
        "policies/toolchain.yml:2:20: error: toolchain.harmless, item 2, must be a string; "
        "YAML reads the unquoted true as a boolean",
    ),
    (
        "toolchain: [kubernetes]\n",
        "policies/toolchain.yml:1:12: error: toolchain must be a mapping",
    ),
    # Calls that cannot be told apart: at the later of the two keys this file wrote.
    (
        "toolchain:\n  kubernetes:\n    command: k-ctl\n  vm:\n    command: bin/k-ctl\n",
        "policies/toolchain.yml:5:14: error: toolchain.vm.command and "
        "toolchain.kubernetes.command both call 'k-ctl': the k-ctl call 'k-ctl -e gstg upgrade' "
        "would also read as a VM executor call, so a job's calls could not be told apart",
    ),
    (
        "toolchain:\n  kubernetes:\n    command: kubectl\n    wait: {style: command}\n",
        "policies/toolchain.yml:3:14: error: toolchain.kubernetes.wait.command and "
        "toolchain.kubernetes.command both call 'kubectl': the wait step 'kubectl wait "
        "--for=condition=complete --timeout=3600s job -l app=migrations' would also read as a "
        "k-ctl call",
    ),
    (
        "toolchain:\n  kubernetes:\n    wait: {style: command}\n  vm: {command: kubectl}\n",
        "policies/toolchain.yml:4:17: error: toolchain.vm.command and "
        "toolchain.kubernetes.wait.command both call 'kubectl': the wait step",
    ),
    (
        "toolchain:\n  kubernetes:\n    wait:\n      style: command\n"
        "      command: deploy-vms --wait\n",
        "policies/toolchain.yml:5:16: error: toolchain.vm.command and "
        "toolchain.kubernetes.wait.command both call 'deploy-vms': the wait step "
        "'deploy-vms --wait' would also read as a VM executor call",
    ),
    (
        # Only `style: command` turns the (default) wait command on: pointed at.
        "toolchain:\n  kubernetes:\n    wait: {style: command}\n  vm:\n"
        "    command: kubectl wait --for=condition=complete --timeout=600s job -l app=migrations\n",
        "policies/toolchain.yml:5:14: error: toolchain.vm.command and "
        "toolchain.kubernetes.wait.command both call 'kubectl': the VM executor call",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SECTIONS, ids=lambda v: str(v)[:40])
def test_a_bad_toolchain_section_is_refused_at_its_line(
    repo: Repo, run: Any, text: str, expected: str
) -> None:
    errors = policy_errors(repo, run, text)
    assert any(line.startswith(expected) for line in errors), errors


def test_unknown_keys_list_the_valid_ones(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG_FIRST)
    repo.policies("toolchain:\n  vm:\n    comand: x\n", "toolchain.yml")
    result = run("check", "--today", TODAY)
    assert result.code == 2
    assert "hint: valid keys: command, switches" in result.err


def test_every_problem_of_a_section_is_reported_at_once(repo: Repo, run: Any) -> None:
    text = "toolchain:\n  vm:\n    command: ''\n  kubernetes:\n    run_value: no\n  bogus: 1\n"
    errors = policy_errors(repo, run, text)
    assert [line.split(": error: ")[0] for line in errors] == [
        "policies/toolchain.yml:3:14",
        "policies/toolchain.yml:5:16",
        "policies/toolchain.yml:6:3",
    ]


def test_one_program_for_k_ctl_wait_and_vm_is_refused_once_per_pair(repo: Repo, run: Any) -> None:
    text = (
        "toolchain:\n  kubernetes:\n    command: k-ctl\n    wait:\n      style: command\n"
        "      command: k-ctl status --wait\n  vm:\n    command: k-ctl\n"
    )
    errors = policy_errors(repo, run, text)
    assert [line.split(": error: ")[0] for line in errors] == [
        "policies/toolchain.yml:6:16",
        "policies/toolchain.yml:8:14",
        "policies/toolchain.yml:8:14",
    ]
    assert [line.split(": error: ")[1].split(": ")[0] for line in errors] == [
        "toolchain.kubernetes.wait.command and toolchain.kubernetes.command both call 'k-ctl'",
        "toolchain.vm.command and toolchain.kubernetes.command both call 'k-ctl'",
        "toolchain.vm.command and toolchain.kubernetes.wait.command both call 'k-ctl'",
    ]
    result = run("check", "--today", TODAY)
    assert "hint: give each its own program, or make the words after the program differ" in (
        result.err
    )


def test_a_collision_is_reported_only_once_the_commands_read(repo: Repo, run: Any) -> None:
    """A refused VM command keeps its default, `deploy-vms`, which would collide with this
    wait command: only the real problem is reported."""
    text = (
        "toolchain:\n  kubernetes:\n    wait: {style: command, command: deploy-vms --wait}\n"
        "  vm:\n    command: ''\n"
    )
    errors = policy_errors(repo, run, text)
    assert errors == ["policies/toolchain.yml:5:14: error: toolchain.vm.command must not be empty"]


SHARED_PROGRAMS = {
    "a kubectl plugin, kubectl wait and a kubectl VM executor": (
        "toolchain:\n  kubernetes:\n    command: kubectl pdm\n    wait: {style: command}\n"
        "  vm:\n    command: kubectl apply -f vm-migrations.yml\n"
    ),
    "one deploy script, a subcommand each": (
        "toolchain:\n  kubernetes:\n    command: bin/deploy kubernetes\n"
        "  vm:\n    command: bin/deploy vms {environment}\n"
    ),
    "kubectl as k-ctl, waiting by input (no wait command is run)": (
        "toolchain:\n  kubernetes:\n    command: kubectl\n"
    ),
}


@pytest.mark.parametrize("text", SHARED_PROGRAMS.values(), ids=SHARED_PROGRAMS.keys())
def test_a_shared_program_is_accepted_when_the_words_tell_the_calls_apart(
    tmp_path: Path, text: str
) -> None:
    """Accepted, and the analysis then recognises each call as what it is."""
    root = override_repository(tmp_path, text)
    project = load_project(root, root / "environments", root / "policies")
    toolchain = project.policy_set.toolchain
    files = rendered_files(project)
    (root / "ci").mkdir()
    child = root / "ci/gstg.yml"
    child.write_text(files["ci/environments/gstg-postdeploy-migrations.yml"], encoding="utf-8")
    (pipeline,) = load_pipelines(child, root)
    analysis = analyse(pipeline, toolchain)
    kubernetes, vm = "gstg-kubernetes-post-deploy-migrations", "gstg-vm-post-deploy-migrations"
    assert {e.job.name: e.kind for e in analysis.executors} == {kubernetes: KUBERNETES, vm: VM}
    (call,) = analysis.effect(kubernetes).executor_calls
    assert call.waits
    # Every line of the Kubernetes job is read as what it is: no unknown, no second k-ctl.
    effects = [c.effect for c in analysis.effect(kubernetes).commands]
    assert effects[0] == KUBERNETES and set(effects[1:]) <= {"none"}, effects


def test_the_refused_toolchain_is_really_ambiguous() -> None:
    """What the refusal prevents: with k-ctl called as `kubectl`, the analysis reads the
    default `kubectl wait` step as one more k-ctl call, with an action it does not know."""
    kubernetes = replace(
        DEFAULT.kubernetes,
        command=("kubectl",),
        wait=replace(DEFAULT.kubernetes.wait, style="command"),
    )
    toolchain = Toolchain(kubernetes=kubernetes)
    kctl = {
        "environment": "gstg",
        "stage": "main",
        "action": "upgrade",
        "dry_run": False,
        "wait_for_jobs": True,
        "timeout": None,
    }
    doc = parse_document("environments/gstg.yml", environment_text(kctl).encode())
    with tempfile.TemporaryDirectory() as directory:
        ci = Path(directory) / "ci.yml"
        ci.write_text(emit(lower(build_environment(doc), toolchain)), encoding="utf-8")
        (pipeline,) = load_pipelines(ci, Path(directory))
    commands_ = analyse(pipeline, toolchain).effect("k8s").commands
    assert [c.command.program for c in commands_] == ["kubectl", "kubectl"]
    wait_step = commands_[1]
    assert wait_step.kctl is not None and wait_step.kctl.action == "wait"
    assert wait_step.effect == "unknown"


def test_a_toolchain_in_two_files_names_both_places(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG_FIRST)
    repo.policies("toolchain:\n  vm: {command: a}\n", "a.yml")
    repo.policies("policies: {}\ntoolchain:\n  vm: {command: b}\n", "b.yml")
    result = run("check", "--today", TODAY)
    assert result.code == 2
    assert (
        "policies/b.yml:2:1: error: the toolchain is configured twice: here and at "
        "policies/a.yml:1:1"
    ) in result.err


def test_quoted_values_are_accepted_where_booleans_are_refused(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/t.yml").write_text(
        "toolchain:\n"
        "  kubernetes:\n"
        '    run_value: "false"\n'
        "    wait: {style: input, variable: HELM_WAIT_FOR_JOBS, value: 'yes'}\n"
        "  vm:\n"
        "    switches: {POSTDEPLOY_MIGRATIONS: 'true', RUN_POST_DEPLOY_MIGRATIONS: 'true'}\n",
        encoding="utf-8",
    )
    toolchain = load_policy_set(tmp_path / "policies", tmp_path, REGISTRY).toolchain
    assert toolchain.kubernetes.run_value == "false"
    assert toolchain.kubernetes.wait.assignment() == "HELM_WAIT_FOR_JOBS=yes"
    assert dict(toolchain.vm.switches) == {
        "POSTDEPLOY_MIGRATIONS": "true",
        "RUN_POST_DEPLOY_MIGRATIONS": "true",
    }


def test_overrides_replace_the_defaults_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/t.yml").write_text(
        "toolchain:\n"
        "  kubernetes:\n"
        "    command: [bin/k-ctl]\n"
        "    wait: {style: command}\n"
        "  rails:\n"
        "    migrate_commands: ['gitlab-rake db:migrate', [bundle, exec, rake, 'db:migrate']]\n"
        "  harmless: [echo]\n",
        encoding="utf-8",
    )
    toolchain = load_policy_set(tmp_path / "policies", tmp_path, REGISTRY).toolchain
    kubernetes = toolchain.kubernetes
    assert kubernetes.command == ("bin/k-ctl",)
    # Keys not written keep their defaults, inside `wait:` too.
    assert (kubernetes.environment_flag, kubernetes.stage_flag) == ("-e", "-s")
    assert kubernetes.wait.style == "command"
    assert kubernetes.wait.command == DEFAULT.kubernetes.wait.command
    assert toolchain.vm == DEFAULT.vm
    # Lists are replaced, never extended.
    assert toolchain.rails.migrate_commands == (
        ("gitlab-rake", "db:migrate"),
        ("bundle", "exec", "rake", "db:migrate"),
    )
    assert toolchain.harmless == ("echo",)


def test_no_toolchain_section_is_the_default(tmp_path: Path) -> None:
    assert load_policy_set(tmp_path / "none", tmp_path, REGISTRY).toolchain == DEFAULT
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/t.yml").write_text("toolchain:\n", encoding="utf-8")
    assert load_policy_set(tmp_path / "policies", tmp_path, REGISTRY).toolchain == Toolchain()


# --- rendering ----------------------------------------------------------------------------


def override_repository(root: Path, toolchain_text: str = ANSIBLE_AND_KUBECTL_WAIT) -> Path:
    """The shipped environments and policy set, with a toolchain override."""
    (root / "environments").mkdir(parents=True)
    (root / "policies").mkdir()
    for path in (REPO_ROOT / "environments").glob("*.yml"):
        shutil.copy(path, root / "environments" / path.name)
    (root / "policies/default.yml").write_text(POLICIES, encoding="utf-8")
    (root / "policies/toolchain.yml").write_text(toolchain_text, encoding="utf-8")
    return root


def render_files(root: Path) -> dict[str, str]:
    return rendered_files(load_project(root, root / "environments", root / "policies"))


def scripts(text: str) -> dict[str, list[str]]:
    """Job name -> script lines, as GitLab's reading of the file has them."""
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "ci.yml").write_text(text, encoding="utf-8")
        (pipeline,) = load_pipelines(Path(directory) / "ci.yml", Path(directory))
    return {job.name: [line.text for line in job.script] for job in pipeline.jobs}


def test_override_renders_calls_of_the_teams_tools(tmp_path: Path) -> None:
    files = render_files(override_repository(tmp_path))
    gstg = scripts(files["ci/environments/gstg-postdeploy-migrations.yml"])
    assert gstg == {
        "gstg-kubernetes-post-deploy-migrations": [
            f"{PREFIX} SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade",
            # The job's own timeout (10h), so the wait ends no later than the job would.
            "kubectl wait --for=condition=complete --timeout=36000s job -l app=migrations",
        ],
        "gstg-vm-post-deploy-migrations": [
            f"{PREFIX} ansible-playbook -i inventory/gstg post-migrations.yml"
        ],
    }
    gprd = scripts(files["ci/environments/gprd-postdeploy-migrations.yml"])
    # A dry run applies nothing, so there is nothing to wait for.
    assert gprd["gprd-kubernetes-post-deploy-migrations-dry-run"] == [
        "mkdir -p dry-run",
        f"{PREFIX} SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gprd -D upgrade"
        " > dry-run/gprd-kubernetes-post-deploy-migrations-dry-run.yaml",
        "cat dry-run/gprd-kubernetes-post-deploy-migrations-dry-run.yaml",
    ]
    assert gprd["gprd-vm-post-deploy-migrations"] == [
        f"{PREFIX} ansible-playbook -i inventory/gprd post-migrations.yml"
    ]
    assert "WAIT_FOR_JOBS" not in "".join(files.values())
    assert "deploy-vms" not in "".join(files.values())


def test_override_render_is_deterministic(tmp_path: Path) -> None:
    first = render_files(override_repository(tmp_path / "a"))
    # The same toolchain written in another key order and spelling renders the same bytes.
    reordered = (
        "toolchain:\n"
        "  vm:\n"
        "    command: [ansible-playbook, -i, 'inventory/{environment}', post-migrations.yml]\n"
        "  kubernetes:\n"
        "    wait:\n"
        '      style: "command"\n'
    )
    second = render_files(override_repository(tmp_path / "b", reordered))
    assert first == second
    assert render_files(tmp_path / "a") == first


def test_override_render_passes_gitlab_ci_json_schema(tmp_path: Path) -> None:
    for path, text in render_files(override_repository(tmp_path)).items():
        document = YAML(typ="safe", pure=True).load(text)
        errors = sorted(SCHEMA.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, (path, [f"{list(e.path)}: {e.message}" for e in errors])


def test_default_toolchain_renders_the_shipped_ci_byte_for_byte() -> None:
    files = render_files(REPO_ROOT)
    for path, text in files.items():
        assert (REPO_ROOT / path).read_text(encoding="utf-8") == text, path


def test_every_word_is_shell_quoted(tmp_path: Path) -> None:
    text = (
        "toolchain:\n"
        "  vm:\n"
        "    command: [deploy tool, '--note=$(id); rm -rf /', '{environment}']\n"
        "  kubernetes:\n"
        "    command: [bin/k ctl]\n"
        "    wait:\n"
        "      style: command\n"
        "      command: [kubectl, wait, '--for=jsonpath={{.status}}', 'job/migrations $x']\n"
    )
    files = render_files(override_repository(tmp_path, text))
    gstg = scripts(files["ci/environments/gstg-postdeploy-migrations.yml"])
    kubernetes, wait = gstg["gstg-kubernetes-post-deploy-migrations"]
    (vm,) = gstg["gstg-vm-post-deploy-migrations"]
    assert shlex.split(vm)[5:] == ["deploy tool", "--note=$(id); rm -rf /", "gstg"]
    assert shlex.split(kubernetes)[6:] == ["bin/k ctl", "-e", "gstg", "upgrade"]
    # `{{`/`}}` write one brace, for kubectl's jsonpath.
    assert shlex.split(wait) == [
        "kubectl",
        "wait",
        "--for=jsonpath={.status}",
        "job/migrations $x",
    ]
    # One command per line, as the shell reads it: nothing in a value starts another.
    for line in (kubernetes, wait, vm):
        assert len(commands([(line, Loc("ci.yml"))])) == 1


def test_the_wait_step_is_what_kubernetes_waits_for_migrations_accepts(
    repo: Repo, run: Any
) -> None:
    """With `style: command`, the policy accepts the wait step and misses it when it is gone."""
    repo.env("gstg.yml", GSTG_FIRST)
    repo.policies(POLICIES, "default.yml")
    repo.policies("toolchain:\n  kubernetes:\n    wait: {style: command}\n", "toolchain.yml")
    assert run("check", "--today", TODAY).code == 0
    assert run("render", "--today", TODAY).code == 0
    child = repo.root / "ci/environments/gstg-postdeploy-migrations.yml"
    assert "kubectl wait" in child.read_text(encoding="utf-8")
    result = run("verify", str(child), "--today", TODAY, "--format", "json")
    assert result.code == 0, result.out
    text = child.read_text(encoding="utf-8")
    kctl = f"{PREFIX} SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade"
    step = "kubectl wait --for=condition=complete --timeout=36000s job -l app=migrations"
    assert f"    - {kctl}\n    - {step}\n" in text

    def findings(script: str) -> set[str]:
        child.write_text(text.replace(f"    - {kctl}\n    - {step}\n", script), encoding="utf-8")
        result = run("verify", str(child), "--today", TODAY, "--format", "json")
        return {f["policy"] for f in json.loads(result.out)["findings"]}

    assert "kubernetes-waits-for-migrations" not in findings(f"    - {kctl}\n    - {step}\n")
    # A wait on a later line, with other commands between, still waits.
    assert "kubernetes-waits-for-migrations" not in findings(
        f"    - {kctl}\n    - echo applied\n    - /usr/bin/{step}\n"
    )
    not_waiting = {
        "no wait step": f"    - {kctl}\n",
        "the wait runs before k-ctl": f"    - {step}\n    - {kctl}\n",
        "a failed wait is ignored": f"    - {kctl}\n    - {step} || true\n",
        "the wait runs in the background": f"    - {kctl}\n    - {step} &\n",
        "a failing k-ctl skips an && wait": f"    - {kctl} && {step}\n",
        "another selector": f"    - {kctl}\n    - {step.replace('app=migrations', 'app=web')}\n",
    }
    for why, script in not_waiting.items():
        assert "kubernetes-waits-for-migrations" in findings(script), why


def test_override_repository_checks_clean_and_renders(repo: Repo, run: Any) -> None:
    override_repository(repo.root / "x")
    for path in (repo.root / "x/environments").iterdir():
        shutil.copy(path, repo.root / "environments" / path.name)
    for path in (repo.root / "x/policies").iterdir():
        shutil.copy(path, repo.root / "policies" / path.name)
    result = run("check", "--today", TODAY)
    assert result.code == 0, result.out
    assert run("render", "--today", TODAY).code == 0
    assert run("render", "--check", "--today", TODAY).code == 0


@pytest.mark.parametrize("style", ["input", "command"])
@pytest.mark.parametrize("action", ["upgrade", "template", "list"])
@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("wait_for_jobs", [False, True])
def test_the_wait_follows_only_a_call_that_applies(
    style: str, action: str, dry_run: bool, wait_for_jobs: bool
) -> None:
    """Every combination: the wait step comes after a call that applies the chart, when the
    job asks to wait; the input variable is given whenever the job asks (as always)."""
    toolchain = Toolchain(
        kubernetes=replace(DEFAULT.kubernetes, wait=replace(DEFAULT.kubernetes.wait, style=style))
    )
    kctl = {
        "environment": "gstg",
        "stage": "main",
        "action": action,
        "dry_run": dry_run,
        "wait_for_jobs": wait_for_jobs,
        "timeout": None,
    }
    doc = parse_document("environments/gstg.yml", environment_text(kctl).encode())
    (k8s, _) = lower(build_environment(doc), toolchain).jobs
    lines = [line.text for line in k8s.script]
    step = "kubectl wait --for=condition=complete --timeout=3600s job -l app=migrations"
    applies = action == "upgrade" and not dry_run
    assert (step in lines) == (style == "command" and wait_for_jobs and applies), lines
    if step in lines:
        assert lines.index(step) == len(lines) - 1 and "k-ctl" in lines[-2]
    assert ("WAIT_FOR_JOBS=true" in " ".join(lines)) == (style == "input" and wait_for_jobs)


# --- render and analysis read a call alike ------------------------------------------------


def test_a_flag_that_starts_another_flag_is_read_as_itself() -> None:
    """`--simulate` is the dry-run flag, not the stage flag `--s` with the value `imulate`;
    a long flag takes a joined value only after `=`, a flag of two characters right after
    it. The analysis and `read_call` read every call alike."""
    kubernetes = replace(DEFAULT.kubernetes, stage_flag="--s", dry_run_flag="--simulate")
    toolchain = Toolchain(kubernetes=kubernetes)
    cases = {
        "k-ctl -e gstg --simulate upgrade": ("gstg", "main", True),
        "k-ctl -egstg --s=cny upgrade": ("gstg", "cny", False),
        "k-ctl -e gstg --s cny --simulate upgrade": ("gstg", "cny", True),
        "k-ctl --s cny -e gstg upgrade --simulate": ("gstg", "cny", True),
    }
    for line, (environment, stage, dry_run) in cases.items():
        (command,) = commands([(f"SKIP_POST_DEPLOYMENT_MIGRATIONS=false {line}", Loc("ci.yml"))])
        call = parse_kctl(command, command.args, kubernetes)
        assert (call.environment, call.stage, call.dry_run, call.action) == (
            environment,
            stage,
            dry_run,
            "upgrade",
        ), line
        assert kubernetes.read_call(shlex.split(line)) == KubernetesCall(
            environment, stage, dry_run, "upgrade"
        )
        assert is_kubernetes_executor(command, toolchain) == (not dry_run), line


def is_kubernetes_executor(command: Command, toolchain: Toolchain) -> bool:
    from pdmpolicy.gitlab.effects import Classifier, file_reader

    (effect,) = Classifier(toolchain, {}, file_reader(None)).job([command])
    return effect.effect == KUBERNETES


def test_every_placeholder_of_the_wait_command_matches_its_value() -> None:
    """`{database}` too, and `{{`/`}}` as one brace: the analysis recognises the wait step
    that render writes from this command."""
    wait = replace(
        DEFAULT.kubernetes.wait,
        style="command",
        command=(
            "kubectl",
            "wait",
            "--context={environment}-{stage}",
            "--for=jsonpath={{.status.succeeded}}=1",
            "job/{database}-migrations",
        ),
    )
    toolchain = Toolchain(kubernetes=replace(DEFAULT.kubernetes, wait=wait))
    values = {"environment": "gstg", "stage": "cny", "database": "main", "timeout": "60"}
    line = shlex.join(wait.step(values))
    assert line == (
        "kubectl wait --context=gstg-cny '--for=jsonpath={.status.succeeded}=1' job/main-migrations"
    )
    (command,) = commands([(line, Loc("ci.yml"))])
    assert is_wait_command(command, toolchain)
    (other,) = commands([(line.replace("{.status.succeeded}", "{.status.failed}"), Loc("ci.yml"))])
    assert not is_wait_command(other, toolchain)


# --- placeholders -------------------------------------------------------------------------


def test_placeholders_expand_once_and_match_back() -> None:
    template = ("ansible-playbook", "-i", "inventory/{environment}", "{environment}-{stage}.yml")
    words = expand(template, {"environment": "gstg", "stage": "cny"})
    assert words == ("ansible-playbook", "-i", "inventory/gstg", "gstg-cny.yml")
    assert match_words(template, words) == {"environment": "gstg", "stage": "cny"}
    # One placeholder, one value: gstg here and gprd there is no call of this template.
    assert (
        match_words(template, ("ansible-playbook", "-i", "inventory/gstg", "gprd-cny.yml")) is None
    )
    assert match_words(template, words[:3]) is None
    # A value that holds braces is not expanded again.
    assert expand(("{environment}",), {"environment": "{stage}", "stage": "x"}) == ("{stage}",)


# --- property: generated toolchains render calls that read back as declared ---------------

LOWER = "abcdefghijklmnopqrstuvwxyz"
# Built from small alphabets rather than `from_regex`, which costs most of a run's time.
NAME_TAIL = st.text(LOWER + "0123456789_.-", max_size=8)
PROGRAM = st.builds(
    lambda directory, first, rest: directory + first + rest,
    st.sampled_from(("", "bin/", "/usr/local/bin/", "./scripts/")),
    st.sampled_from(LOWER),
    NAME_TAIL,
)
SHORT_FLAG = st.sampled_from([f"-{c}" for c in LOWER + LOWER.upper()])
LONG_FLAG = st.builds(
    lambda first, rest: f"--{first}{rest}",
    st.sampled_from(LOWER),
    st.text(LOWER + "-", max_size=10),
)
FLAG = SHORT_FLAG | LONG_FLAG
ENV_NAME = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LOWER),
    st.text(LOWER + "0123456789", max_size=8),
)
VARIABLE = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LOWER.upper()),
    st.text(LOWER.upper() + "_", max_size=10),
)
TEMPLATE_WORD = st.one_of(
    PROGRAM,
    FLAG,
    st.sampled_from(("{environment}", "inventory/{environment}", "{database}.yml", "-v")),
)


@st.composite
def toolchain_sections(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A `toolchain:` section as YAML (every word a JSON string) and what it declares. The
    wait and VM commands often call k-ctl's program (or each other's): the section refuses
    those whose calls cannot be told apart, and accepts those whose words tell them apart."""
    flags = draw(st.lists(FLAG, min_size=3, max_size=3, unique=True))
    kctl = [draw(PROGRAM), *draw(st.lists(PROGRAM, max_size=1))]
    wait_program = draw(PROGRAM | st.just(kctl[0]))
    vm_program = draw(PROGRAM | st.sampled_from((kctl[0], wait_program)))
    declared = {
        "kubernetes": {
            "command": kctl,
            "environment_flag": flags[0],
            "stage_flag": flags[1],
            "dry_run_flag": flags[2],
            "wait": {
                "style": draw(st.sampled_from(("input", "command"))),
                "variable": draw(VARIABLE),
                "value": draw(st.sampled_from(("true", "1", "yes", "no", ""))),
                "command": [wait_program, *draw(st.lists(TEMPLATE_WORD, max_size=4))],
            },
        },
        "vm": {"command": [vm_program, *draw(st.lists(TEMPLATE_WORD, max_size=4))]},
    }
    return "toolchain: " + json.dumps(declared) + "\n", declared


def read_or_assume_unambiguous(root: Path) -> Toolchain:
    """The toolchain of `root`'s policy set; a generated section may only be refused for
    calls that cannot be told apart, and is then not an example."""
    try:
        return load_policy_set(root / "policies", root, REGISTRY).toolchain
    except InputError as exc:
        messages = [problem.message for problem in exc.problems]
        assert all("could not be told apart" in m for m in messages), messages
        event("refused: calls cannot be told apart")
        assume(False)
        raise  # pragma: no cover - assume(False) ends the example


@st.composite
def kubernetes_jobs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "environment": draw(ENV_NAME),
        "stage": draw(st.sampled_from(names.KCTL_STAGES)),
        "action": draw(st.sampled_from(("upgrade", "template", "list"))),
        "dry_run": draw(st.booleans()),
        "wait_for_jobs": draw(st.booleans()),
        "timeout": draw(st.sampled_from((None, "10h", "3h 30m"))),
    }


def environment_text(kctl: dict[str, Any]) -> str:
    timeout = f"    timeout: {kctl['timeout']}\n" if kctl["timeout"] else ""
    return (
        "environment: gstg\ndatabase: maindb\nupstream: null\n"
        "rollout: {step: kubernetes-first, since: 2026-11-16}\n"
        "jobs:\n"
        "  k8s:\n    runner: kubernetes\n" + timeout + "    kctl:\n"
        f"      environment: {kctl['environment']}\n      stage: {kctl['stage']}\n"
        f"      action: {kctl['action']}\n      dry_run: {str(kctl['dry_run']).lower()}\n"
        f"      wait_for_jobs: {str(kctl['wait_for_jobs']).lower()}\n"
        "      variables: {SKIP_POST_DEPLOYMENT_MIGRATIONS: 'false'}\n"
        "  vm:\n    runner: vm\n    needs: [k8s]\n"
        "    variables: {RUN_POST_DEPLOY_MIGRATIONS: 'true'}\n"
    )


def called_words(line: str) -> list[str]:
    """The words of a rendered line after `env -u NAME...` and `NAME=value` assignments
    (and before a `> file` redirection)."""
    words = shlex.split(line)
    assert words[:5] == ["env", "-u", "AUTO_DEPLOY", "-u", "GITLAB_IMAGE_TAG"], line
    words = words[5:]
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words = words[1:]
    if ">" in words:
        words = words[: words.index(">")]
    return words


@settings(max_examples=max(50, settings.default.max_examples // 4))  # dev 50, ci 100
@given(toolchain_sections(), kubernetes_jobs())
def test_generated_toolchains_render_calls_that_read_back_as_declared(
    section: tuple[str, dict[str, Any]], kctl: dict[str, Any]
) -> None:
    text, declared = section
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "policies").mkdir()
        (root / "policies/toolchain.yml").write_text(text, encoding="utf-8")
        toolchain = read_or_assume_unambiguous(root)
        doc = parse_document("environments/gstg.yml", environment_text(kctl).encode())
        environment = build_environment(doc)
        (root / "ci.yml").write_text(emit(lower(environment, toolchain)), encoding="utf-8")
        (pipeline,) = load_pipelines(root / "ci.yml", root)
    script = {job.name: [line.text for line in job.script] for job in pipeline.jobs}
    kubernetes = toolchain.kubernetes
    wait = declared["kubernetes"]["wait"]
    seconds = {None: "3600", "10h": "36000", "3h 30m": "12600"}[kctl["timeout"]]
    values = {
        "environment": "gstg",
        "database": "maindb",
        "stage": kctl["stage"],
        "timeout": seconds,
    }

    saves = kctl["dry_run"] or kctl["action"] == "template"
    line = script["k8s"][1] if saves else script["k8s"][0]
    words = called_words(line)
    assert words[: len(declared["kubernetes"]["command"])] == declared["kubernetes"]["command"]
    assert kubernetes.read_call(words) == KubernetesCall(
        kctl["environment"], kctl["stage"], kctl["dry_run"], kctl["action"]
    )
    (command,) = commands([(line, Loc("ci.yml"))])
    waits_by_input = wait["style"] == "input" and kctl["wait_for_jobs"]
    expected_assigned = {"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}
    if waits_by_input:
        expected_assigned[wait["variable"]] = wait["value"]
    assert dict(command.assigned) == expected_assigned
    # The wait step: only after a call that applies the chart, only when asked for.
    wait_step = (
        wait["style"] == "command"
        and kctl["wait_for_jobs"]
        and kctl["action"] == "upgrade"
        and not kctl["dry_run"]
    )
    event(f"wait {wait['style']}, step {wait_step}")
    expected_lines = 3 if saves else 1 + wait_step
    assert len(script["k8s"]) == expected_lines
    if wait_step:
        step = shlex.split(script["k8s"][1])
        assert step == list(expand(wait["command"], values))
        assert match_words(wait["command"], step) is not None
    later = [shlex.split(other) for other in script["k8s"][1:]] if not saves else []
    assert kubernetes.wait.waits(command.assigned, later) == (waits_by_input or wait_step)

    (vm_line,) = script["vm"]
    vm_words = called_words(vm_line)
    assert vm_words == list(expand(declared["vm"]["command"], values))
    assert toolchain.vm.is_call(vm_words)

    # And the analysis, reading the same toolchain, recognises what was declared: the VM
    # executor, the Kubernetes executor when the call applies for real, the dry run, and
    # whether the call waits for the migrations Job. Shared programs included: the section
    # accepted this toolchain, so its words tell the calls apart.
    programs = {
        posixpath.basename(declared["kubernetes"]["command"][0]),
        posixpath.basename(wait["command"][0]),
        posixpath.basename(declared["vm"]["command"][0]),
    }
    event(f"distinct programs: {len(programs)}")
    analysis = analyse(pipeline, toolchain)
    applies = kctl["action"] == "upgrade" and not kctl["dry_run"]
    expected = {"vm": VM, **({"k8s": KUBERNETES} if applies else {})}
    assert {e.job.name: e.kind for e in analysis.executors} == expected
    assert analysis.effect("k8s").is_dry_run == saves
    if applies:
        (call,) = analysis.effect("k8s").executor_calls
        assert call.waits == (waits_by_input or wait_step)


# --- property: any section is read or refused at a line, never a crash --------------------

SCALAR = st.one_of(
    st.sampled_from(
        ("true", "no", "~", "1h", "0", "-e", "{environment}", "{nope}", "'a b'", '"x"', "{{")
    ),
    st.integers(-3, 5000),
    st.booleans(),
    st.none(),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=12),
)
KEYS = st.sampled_from(
    (
        "kubernetes", "vm", "rails", "harmless", "command", "environment_flag", "stage_flag",
        "dry_run_flag", "apply_actions", "show_actions", "harmless_actions", "skip_variable",
        "run_value", "wait", "style", "variable", "value", "default_timeout", "switches",
        "migrate_commands", "RUN_POST_DEPLOY_MIGRATIONS", "bogus", "1",
    )
)  # fmt: skip
TREE = st.recursive(
    SCALAR,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=max(50, settings.default.max_examples // 4))  # dev 50, ci 100
@given(st.dictionaries(KEYS, TREE, max_size=5) | TREE)
def test_any_toolchain_section_is_read_or_refused_at_a_line(section: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "policies").mkdir()
        text = "toolchain: " + json.dumps(section) + "\n"
        (root / "policies/t.yml").write_text(text, encoding="utf-8")
        try:
            toolchain = load_policy_set(root / "policies", root, REGISTRY).toolchain
        except InputError as exc:
            event("refused")
            for problem in exc.problems:
                assert problem.loc.path == "policies/t.yml"
                assert problem.loc.line == 1 and problem.loc.column >= 1, problem
                assert problem.message
            return
    event("read")
    assert isinstance(toolchain, Toolchain)
    assert toolchain.kubernetes.command and toolchain.vm.command
    assert all(toolchain.kubernetes.wait.command)


def test_a_toolchain_change_alone_is_no_behaviour_change_against_the_base(
    repo: Repo, run: Any
) -> None:
    """`check --base` lowers the base with the current toolchain: changing only how the
    tools are called moves no environment and breaks no change-aware rule."""
    repo.env("gstg.yml", GSTG_FIRST)
    repo.policies(POLICIES, "default.yml")
    repo.commit("base")
    repo.policies("toolchain:\n  kubernetes:\n    wait: {style: command}\n", "toolchain.yml")
    result = run("check", "--today", TODAY, "--base", "HEAD", "--format", "markdown")
    assert result.code == 0, result.out
    # Lowered with the default toolchain, the base's k-ctl line would carry WAIT_FOR_JOBS=true
    # and the current one would not: a change of the k-ctl command line.
    assert "No environment changes behaviour." in result.out, result.out


# --- `pdmpolicy toolchain`: the toolchain in effect, as a section that reads back ----------


def read_back_section(text: str) -> Toolchain:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "policies").mkdir()
        (root / "policies/t.yml").write_text(text, encoding="utf-8")
        return load_policy_set(root / "policies", root, REGISTRY).toolchain


def test_toolchain_command_prints_the_toolchain_in_effect(repo: Repo, run: Any) -> None:
    result = run("toolchain")
    assert result.code == 0, result.err
    assert "(no toolchain: section in the policy set)" in result.out
    assert read_back_section(result.out) == DEFAULT
    repo.policies(ANSIBLE_AND_KUBECTL_WAIT, "toolchain.yml")
    result = run("toolchain")
    assert "with policies/toolchain.yml over them" in result.out
    assert "command: ansible-playbook -i 'inventory/{environment}' post-migrations.yml" in (
        result.out
    )
    printed = read_back_section(result.out)
    assert printed == load_policy_set(repo.root / "policies", repo.root, REGISTRY).toolchain
    assert printed.kubernetes.wait.style == "command"
    assert run("toolchain").out == result.out  # the same bytes every time
    repo.policies("toolchain:\n  vm: {command: ''}\n", "toolchain.yml")
    refused = run("toolchain")
    assert refused.code == 2 and refused.out == ""
    assert "policies/toolchain.yml:2:17: error: toolchain.vm.command must not be empty" in (
        refused.err
    )


@settings(max_examples=max(25, settings.default.max_examples // 8))  # dev 25, ci 50
@given(toolchain_sections())
def test_printed_toolchains_read_back_to_themselves(section_and_declared: tuple[str, Any]) -> None:
    from pdmpolicy.output.render import dump_yaml
    from pdmpolicy.policyset.toolchain_section import section

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "policies").mkdir()
        (root / "policies/t.yml").write_text(section_and_declared[0], encoding="utf-8")
        toolchain = read_or_assume_unambiguous(root)
    assert read_back_section(dump_yaml({"toolchain": section(toolchain)})) == toolchain


@pytest.mark.parametrize(
    ("assignment", "effect"),
    [
        ("RUN_POST_DEPLOY_MIGRATIONS=true ", VM),
        ("RUN_POST_DEPLOY_MIGRATIONS=false ", "none"),
        ("", "unknown"),  # the switch left to pipeline variables: conditional
    ],
)
def test_a_vm_command_with_placeholders_after_its_program_is_recognised(
    assignment: str, effect: str
) -> None:
    # `-i inventory/{environment}` matches `-i inventory/gstg`: the call is the VM tooling,
    # and its switch decides, not "ansible-playbook is not in the toolchain".
    command = ("ansible-playbook", "-i", "inventory/{environment}", "post-migrations.yml")
    toolchain = replace(DEFAULT, vm=replace(DEFAULT.vm, command=command))
    script = f"{assignment}ansible-playbook -i inventory/gstg post-migrations.yml"
    found = analyse(ci_pipeline(ci_job("v", script)), toolchain).effect("v")
    assert found.effect == effect
    if effect == "unknown":
        assert found.conditional
