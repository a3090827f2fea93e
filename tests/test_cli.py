"""The command line: formats, output files, exit codes, help."""

from __future__ import annotations

import json
import subprocess
import sys

from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import REPO_ROOT, Repo

INTERRUPTIBLE = changed(
    GSTG,
    "    timeout: 10h\n  gstg-kubernetes",
    "    timeout: 10h\n    interruptible: true\n  gstg-kubernetes",
)
INTERRUPTIBLE_LINE = INTERRUPTIBLE.splitlines().index("    interruptible: true") + 1


def test_text_format_names_file_line_column_severity_policy(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", INTERRUPTIBLE)
    result = run("check", "--today", "2026-11-26")
    assert result.code == 1
    first = result.out.splitlines()[0]
    assert first.startswith(
        f"environments/gstg.yml:{INTERRUPTIBLE_LINE}:20: error pdm-not-interruptible: "
    )
    assert result.out.rstrip().endswith("1 error, 0 warnings, 0 waived")


def test_json_format_is_exactly_the_spec_shape(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", INTERRUPTIBLE)
    result = run("check", "--today", "2026-11-26", "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    # The documented keys, plus the inventory of what was found (docs/effects.md).
    assert set(report) == {"findings", "summary", "inventory"}
    assert report["summary"] == {"errors": 1, "warnings": 0, "waived": 0}
    (entry,) = report["inventory"]
    assert entry["environment"] == "gstg"
    assert [e["job"] for e in entry["executors"]] == [
        "gstg-vm-post-deploy-migrations",
        "gstg-kubernetes-post-deploy-migrations",
    ]
    (finding,) = report["findings"]
    assert finding == {
        "policy": "pdm-not-interruptible",
        "severity": "error",
        "environment": "gstg",
        "job": "gstg-vm-post-deploy-migrations",
        "path": "environments/gstg.yml",
        "line": INTERRUPTIBLE_LINE,
        "column": 20,
        "message": finding["message"],
        "waived": False,
    }
    assert "interruptible" in finding["message"]


def test_output_writes_the_report_to_a_file(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    result = run(
        "check", "--today", "2026-11-26", "--format", "json", "--output", "reports/check.json"
    )
    assert result.code == 0
    assert result.out == ""
    report = json.loads((repo.root / "reports/check.json").read_text(encoding="utf-8"))
    assert report["summary"]["errors"] == 0


def test_bad_today_is_a_usage_error(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    try:
        code = run("check", "--today", "26/11/2026").code
    except SystemExit as exc:  # argparse exits 2 on usage errors
        code = int(exc.code or 0)
    assert code == 2


def test_explain_unknown_environment_lists_known(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    result = run("explain", "gprd")
    assert result.code == 2
    assert "known: gstg" in result.err


def test_explain_shows_order_effects_and_graph(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    result = run("explain", "gstg")
    assert result.code == 0
    lines = result.out.splitlines()
    vm = next(i for i, line in enumerate(lines) if "1. gstg-vm-post-deploy-migrations" in line)
    assert "VM executor" in lines[vm]
    assert (
        "2. gstg-kubernetes-post-deploy-migrations: Kubernetes executor (runs PDMs"
        in (lines[vm + 2])
    )
    assert "starts only after gstg-vm-post-deploy-migrations succeeded" in lines[vm + 3]
    assert "```mermaid" in result.out and "j0 --> j1" in result.out


def test_policies_lists_every_policy_and_documents_one(run) -> None:  # type: ignore[no-untyped-def]
    listed = run("policies")
    assert listed.code == 0
    assert [line.split()[0] for line in listed.out.splitlines()] == sorted(REGISTRY)
    one = run("policies", "skip-flag-false")
    for section in ("### What it checks", "### Why it matters", "### Failing example", "### Fix"):
        assert section in one.out
    assert run("policies", "no-such-policy").code == 2


def test_python_dash_m_and_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pdmpolicy", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0
    for command in ("check", "render", "explain", "schema", "policies"):
        assert command in done.stdout
    assert "exit codes" in done.stdout


def test_report_formats_known_to_the_parser_are_the_reporters() -> None:
    from pdmpolicy.cli.common import REPORT_FORMATS
    from pdmpolicy.reports import REPORTERS

    assert tuple(sorted(REPORTERS)) == REPORT_FORMATS
