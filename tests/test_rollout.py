"""End to end: from the shipped environments, `advance` with --today moving forward takes
gstg and gprd to kubernetes-only; every state checks clean (also against the previous
state as the base), and every premature call is refused with the day it is allowed."""

from __future__ import annotations

import shutil

from tests.conftest import REPO_ROOT, Repo, Result

STEPS = [
    # (environment, today, allowed from: None when allowed)
    ("gstg", "2026-11-25", "2026-11-30"),
    ("gprd", "2026-11-25", None),
    ("gprd", "2026-11-26", "2026-12-02"),
    ("gstg", "2026-11-30", None),
    ("gprd", "2026-11-30", "2026-12-02"),
    ("gprd", "2026-12-02", None),
    ("gprd", "2026-12-08", "2026-12-09"),
    ("gprd", "2026-12-09", None),
]


def test_shipped_environments_reach_kubernetes_only(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    for directory in ("environments", "policies"):
        shutil.rmtree(repo.root / directory)
        shutil.copytree(REPO_ROOT / directory, repo.root / directory)
    assert run("render", "--today", "2026-11-25").code == 0
    repo.commit("shipped")
    for env, day, allowed in STEPS:
        before = (repo.root / f"environments/{env}.yml").read_text(encoding="utf-8")
        result: Result = run("advance", env, "--today", day)
        if allowed is not None:
            assert result.code == 1, result
            assert f"allowed from {allowed}" in result.err
            assert "one-step-at-a-time" in result.err
            assert (repo.root / f"environments/{env}.yml").read_text(encoding="utf-8") == before
            continue
        assert result.code == 0, result
        assert run("check", "--today", day, "--base", "HEAD").code == 0
        assert run("render", "--check", "--today", day).code == 0
        repo.commit(f"{env} on {day}")
    for env in ("gstg", "gprd"):
        text = (repo.root / f"environments/{env}.yml").read_text(encoding="utf-8")
        assert "step: kubernetes-only" in text and "runner: vm" not in text
    status = run("status", "--today", "2026-12-09")
    assert status.code == 0 and status.out.count("kubernetes-only") == 3


def test_moving_back_names_downstream_and_moves_it_when_asked(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    for directory in ("environments", "policies"):
        shutil.rmtree(repo.root / directory)
        shutil.copytree(REPO_ROOT / directory, repo.root / directory)
    assert run("advance", "gprd", "--today", "2026-11-25").code == 0
    refused = run("advance", "gstg", "--to", "kubernetes-after-vm", "--today", "2026-11-26")
    assert refused.code == 1 and "gprd (kubernetes-after-vm -> dry-run)" in refused.err
    moved = run(
        "advance", "gstg", "--to", "kubernetes-after-vm", "--today", "2026-11-26",
        "--with-downstream",
    )  # fmt: skip
    assert moved.code == 0 and "always allowed" in moved.out
    assert run("check", "--today", "2026-11-26").code == 0
    held = run("advance", "gprd", "--today", "2026-11-27")
    assert held.code == 1 and "promotion-order" in held.err and "2026-12-03" in held.err


def test_init_refuses_a_second_executor_on_a_database(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    for directory in ("environments", "policies"):
        shutil.rmtree(repo.root / directory)
        shutil.copytree(REPO_ROOT / directory, repo.root / directory)
    assert run("init", "gstg-cny", "--database", "gstg").code == 2
    assert run("init", "gstg", "--database", "x").code == 2
    assert run("init", "Bad", "--database", "x").code == 2
    made = run("init", "pre", "--database", "pre", "--today", "2026-12-01")
    assert made.code == 0, made
    assert run("check", "--today", "2026-12-01").code == 0
    # Editors validate the new file against the committed schema while people type.
    written = (repo.root / "environments/pre.yml").read_text(encoding="utf-8")
    assert (
        written.splitlines()[0]
        == "# yaml-language-server: $schema=../schemas/environment.schema.json"
    )
