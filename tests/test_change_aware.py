"""--base: the change-aware policies and the behavioural diff, read from git, writing nothing."""

from __future__ import annotations

import json
import subprocess

from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import REPO_ROOT, Repo

TODAY = "2026-11-26"


def _shipped(repo: Repo) -> None:
    for path in sorted((REPO_ROOT / "environments").glob("*.yml")):
        repo.env(path.name, path.read_text(encoding="utf-8"))
    repo.commit("shipped environments")


def _gprd_at(step_block: str) -> str:
    text = (REPO_ROOT / "environments" / "gprd.yml").read_text(encoding="utf-8")
    return text.replace("  step: dry-run\n  since: 2026-11-09\n", step_block)


def test_moving_gprd_to_kubernetes_first_fails_both_rules_with_lines(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    _shipped(repo)
    moved = _gprd_at("  step: kubernetes-first\n  since: 2026-11-26\n")
    repo.env("gprd.yml", moved)
    status_before = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo.root, capture_output=True, text=True, check=True
    ).stdout
    result = run(
        "check",
        "--today",
        TODAY,
        "--base",
        "HEAD",
        "--report",
        "markdown=note.md",
        "--report",
        "junit=junit.xml",
        "--report",
        "codequality=cq.json",
    )
    assert result.code == 1
    lines = result.out.splitlines()
    step_line = moved.splitlines().index("  step: kubernetes-first") + 1
    since_line = step_line + 1
    assert any(
        line.startswith(f"environments/gprd.yml:{step_line}:9: error one-step-at-a-time:")
        and "skipping kubernetes-after-vm" in line
        for line in lines
    )
    assert any(
        line.startswith(f"environments/gprd.yml:{since_line}:10: error promotion-order:")
        and "3 days after gstg" in line
        for line in lines
    )
    note = (repo.root / "note.md").read_text(encoding="utf-8")
    assert "rollout step **dry-run → kubernetes-first** (forward)" in note
    assert "**newly failing:** one-step-at-a-time, promotion-order" in note
    junit = (repo.root / "junit.xml").read_text(encoding="utf-8")
    assert 'name="one-step-at-a-time [gprd]"' in junit
    assert 'name="promotion-order [gprd]"' in junit
    issues = json.loads((repo.root / "cq.json").read_text(encoding="utf-8"))
    lines = {
        (i["check_name"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues
    }
    assert ("one-step-at-a-time", "environments/gprd.yml", step_line) in lines
    assert ("promotion-order", "environments/gprd.yml", since_line) in lines
    # Reading the base wrote nothing and checked nothing out.
    status_after = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo.root, capture_output=True, text=True, check=True
    ).stdout
    for report in ("cq.json", "junit.xml", "note.md"):
        status_after = status_after.replace(f"?? {report}\n", "")
    assert status_after == status_before


def test_promotion_order_works_without_a_base(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    _shipped(repo)
    repo.env("gprd.yml", _gprd_at("  step: kubernetes-first\n  since: 2026-11-26\n"))
    result = run("check", "--today", TODAY)
    assert result.code == 1
    assert "promotion-order" in result.out
    assert "one-step-at-a-time" not in result.out


def test_diff_names_reordered_executors_flags_and_variables(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    repo.commit("base")
    first = (REPO_ROOT / "environments" / "gstg.yml").read_text(encoding="utf-8")
    first = changed(first, "  since: 2026-11-23\n", "  since: 2026-11-26\n")
    first = changed(
        first, "  DEPLOY_ENVIRONMENT: gstg\n", '  DEPLOY_ENVIRONMENT: gstg\n  NEW: "1"\n'
    )
    first = changed(first, "      stage: main\n", "      stage: cny\n")
    repo.env("gstg.yml", first)
    result = run("check", "--today", TODAY, "--base", "HEAD", "--report", "markdown=note.md")
    note = (repo.root / "note.md").read_text(encoding="utf-8")
    assert "rollout step **kubernetes-after-vm → kubernetes-first** (forward)" in note
    assert "executors reordered: gstg-vm-post-deploy-migrations (vm) → " in note
    assert "variable added: top-level NEW = '1'" in note
    assert "`env -u AUTO_DEPLOY" not in note  # the diff shows what k-ctl receives
    assert "k-ctl -e gstg upgrade` → `" in note and "k-ctl -e gstg -s cny upgrade`" in note
    # One step, after 10 days at the old one, with since updated: the change is allowed.
    assert result.code == 0, result.out


def test_unchanged_environments_say_so(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    _shipped(repo)
    result = run("check", "--today", TODAY, "--base", "HEAD", "--report", "markdown=note.md")
    assert result.code == 0
    assert "No environment changes behaviour." in (repo.root / "note.md").read_text("utf-8")


def test_unknown_base_ref_is_a_usage_error(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    _shipped(repo)
    result = run("check", "--base", "no-such-branch")
    assert result.code == 2
    assert "no-such-branch" in result.err
    assert "Traceback" not in result.err


def test_invalid_environment_at_the_base_is_reported_there(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG.replace('"false"', "false"))
    repo.commit("broken base")
    repo.env("gstg.yml", GSTG)
    result = run("check", "--today", TODAY, "--base", "HEAD")
    assert result.code == 2
    assert "HEAD:environments/gstg.yml:" in result.err


def test_a_step_left_on_the_day_it_was_entered_keeps_since(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    # gstg entered kubernetes-first today; an incident the same day moves it back. since is
    # already today, the day of the change: nothing to update, nothing to flag.
    _shipped(repo)
    gstg = (REPO_ROOT / "environments" / "gstg.yml").read_text(encoding="utf-8")
    today = gstg.replace("since: 2026-11-23", f"since: {TODAY}")
    repo.env("gstg.yml", today)
    repo.commit("gstg entered kubernetes-first today")
    repo.env("gstg.yml", today.replace("step: kubernetes-first", "step: kubernetes-after-vm"))
    result = run("check", "--today", TODAY, "--base", "HEAD", "--format", "json")
    policies = {f["policy"] for f in json.loads(result.out)["findings"]}
    assert "one-step-at-a-time" not in policies, result.out
    # On a later day the same unchanged since is a mistake again.
    later = run("check", "--today", "2026-11-27", "--base", "HEAD", "--format", "json")
    assert "one-step-at-a-time" in {f["policy"] for f in json.loads(later.out)["findings"]}
