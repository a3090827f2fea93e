"""`pdmpolicy verify`: the execution invariants proven on GitLab CI files, with counterexamples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, Repo

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "gitlab"

# Each mechanism of issue 3 that runs PDMs twice, and words its counterexample must use.
UNSAFE = {
    "unsafe-auto-retry.yml": ("retried automatically", "PDMs run a second time after a failure"),
    "unsafe-default-retry.yml": ("retried automatically", "retry:"),
    "unsafe-extends-retry.yml": ("retried automatically", "retry:"),
    "unsafe-anchor-retry.yml": ("retried automatically", "retry:"),
    "unsafe-when-always.yml": ("when: always", "PDMs start again after"),
    "unsafe-on-failure.yml": ("when: on_failure", "PDMs start again after"),
    "unsafe-allow-failure.yml": ("allow_failure: true", "fails"),
    "unsafe-same-stage.yml": ("same stage", "fails"),
    "unsafe-manual-unordered.yml": ("manual", "is played"),
    "unsafe-missing-needs.yml": ("does not wait for", "fails"),
}
SAFE = sorted(p.name for p in FIXTURES.glob("safe-*.yml"))


@pytest.fixture
def fixtures(repo: Repo) -> Path:
    """The GitLab fixtures copied into the temporary repository (paths relative to it)."""
    target = repo.root / "gitlab"
    shutil.copytree(FIXTURES, target)
    return target


def verify_json(run: Any, *paths: str) -> tuple[int, dict[str, Any]]:
    result = run("verify", "--today", "2026-11-26", "--format", "json", *paths)
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_each_way_of_running_pdms_twice_is_rejected_with_a_counterexample(
    fixtures: Path, run: Any, name: str
) -> None:
    result = run("verify", "--today", "2026-11-26", f"gitlab/{name}")
    assert result.code == 1, result.out
    mechanism, step = UNSAFE[name]
    proofs = [line for line in result.out.splitlines() if " error pdm-at-most-once: " in line]
    assert proofs, result.out
    assert any(mechanism in line for line in proofs), proofs
    assert any("1. " in line and step in line for line in proofs), proofs
    # Every counterexample points at a line of the file, where the responsible setting is.
    for line in proofs:
        assert line.startswith(f"gitlab/{name}:")
        assert int(line.split(":")[1]) >= 1


@pytest.mark.parametrize("name", SAFE)
def test_the_safe_ordering_of_each_rollout_step_is_accepted(
    fixtures: Path, run: Any, name: str
) -> None:
    code, report = verify_json(run, f"gitlab/{name}")
    assert report["findings"] == []
    assert code == 0


def test_rendered_parent_and_children_verify_clean(
    monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    code, report = verify_json(run, "ci/postdeploy-migrations.yml")
    assert report["findings"] == []
    assert report["summary"] == {"errors": 0, "warnings": 0, "waived": 0}
    assert code == 0
    # what was proved about what: the parent triggers, the children hold the executors
    found = {entry["pipeline"]: entry for entry in report["inventory"]}
    assert found["ci/postdeploy-migrations.yml"]["executors"] == []
    assert not found["ci/postdeploy-migrations.yml"]["proved"]
    gstg = found["ci/environments/gstg-postdeploy-migrations.yml"]
    assert [(e["job"], e["kind"]) for e in gstg["executors"]] == [
        ("gstg-kubernetes-post-deploy-migrations", "kubernetes"),
        ("gstg-vm-post-deploy-migrations", "vm"),
    ]


def test_json_findings_have_no_environment(fixtures: Path, run: Any) -> None:
    code, report = verify_json(run, "gitlab/unsafe-auto-retry.yml")
    assert code == 1
    for finding in report["findings"]:
        assert finding["environment"] is None
        assert finding["path"] == "gitlab/unsafe-auto-retry.yml"


PARENT = """\
deploy-gstg:
  stage: deploy
  resource_group: gstg-postdeploy-migrations
  trigger:
    include: child.yml
    strategy: depend
"""
CHILD = """\
migrate:
  stage: deploy
  resource_group: gstg-postdeploy-migrations
  variables:
    RUN_POST_DEPLOY_MIGRATIONS: "true"
  script:
    - env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG deploy-vms
"""


def test_parent_and_child_holding_the_same_resource_group_is_a_deadlock(
    repo: Repo, run: Any
) -> None:
    (repo.root / "parent.yml").write_text(PARENT, encoding="utf-8")
    (repo.root / "child.yml").write_text(CHILD, encoding="utf-8")
    code, report = verify_json(run, "parent.yml")
    assert code == 1
    (deadlock,) = [f for f in report["findings"] if "deadlock" in f["message"]]
    assert deadlock["policy"] == "pdm-locked"
    assert (deadlock["path"], deadlock["line"]) == ("parent.yml", 3)


def test_a_trigger_variable_reaching_k_ctl_is_caught(repo: Repo, run: Any) -> None:
    (repo.root / "p.yml").write_text(
        CHILD.replace(
            "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG deploy-vms",
            "SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade",
        ),
        encoding="utf-8",
    )
    code, report = verify_json(run, "p.yml")
    assert code == 1
    policies = {f["policy"] for f in report["findings"]}
    assert "no-auto-deploy-variables" in policies


def test_unmodelled_constructs_are_reported_not_ignored(repo: Repo, run: Any) -> None:
    on_stop = "  environment:\n    name: gstg\n    on_stop: stop\n"
    (repo.root / "p.yml").write_text(CHILD + on_stop, encoding="utf-8")
    code, report = verify_json(run, "p.yml")
    assert code == 1
    assert any(
        f["policy"] == "pdm-at-most-once" and "not modelled" in f["message"]
        for f in report["findings"]
    ), report


def test_a_parallel_executor_runs_pdms_in_each_instance(repo: Repo, run: Any) -> None:
    (repo.root / "p.yml").write_text(CHILD + "  parallel: 2\n", encoding="utf-8")
    code, report = verify_json(run, "p.yml")
    assert code == 1
    breaches = [f for f in report["findings"] if f["policy"] == "pdm-at-most-once"]
    assert {f["job"] for f in breaches} == {"migrate 1/2", "migrate 2/2"}, report


def test_bad_ci_file_is_an_input_error(repo: Repo, run: Any) -> None:
    (repo.root / "p.yml").write_text("job: [\n", encoding="utf-8")
    result = run("verify", "p.yml")
    assert result.code == 2
    assert result.err.startswith("p.yml:")
    assert "Traceback" not in result.err
