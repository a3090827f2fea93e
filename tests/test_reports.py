"""Reports GitLab shows on a merge request: JUnit, Code Quality, the Markdown note."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG, changed
from tests.conftest import Repo

TODAY = "2026-11-26"
INTERRUPTIBLE = changed(
    GSTG,
    "    timeout: 10h\n  gstg-kubernetes",
    "    timeout: 10h\n    interruptible: true\n  gstg-kubernetes",
)
# Two findings of one policy on two subjects (both executors time out too early).
SHORT = INTERRUPTIBLE.replace("timeout: 10h", "timeout: 1h")
WAIVERS = """\
waivers:
  - policy: pdm-executor-timeout
    environment: gstg
    job: gstg-vm-post-deploy-migrations
    reason: "staging's VM migrations are short & <quick>"
    owner: "@release-managers"
    expires: 2026-12-31
"""


def _reports(repo: Repo, run, *extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    result = run(
        "check",
        "--today",
        TODAY,
        "--report",
        "junit=reports/junit.xml",
        "--report",
        "codequality=reports/cq.json",
        "--report",
        "markdown=reports/note.md",
        *extra,
    )
    assert result.code in (0, 1), result.err
    out = {p.name: p.read_text(encoding="utf-8") for p in (repo.root / "reports").iterdir()}
    out["stdout"] = result.out
    out["code"] = str(result.code)
    return out


def test_several_reports_from_one_run_beside_text(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", INTERRUPTIBLE)
    out = _reports(repo, run)
    assert out["code"] == "1"
    assert "error pdm-not-interruptible" in out["stdout"]
    assert {"junit.xml", "cq.json", "note.md"} <= set(out)


def test_junit_is_valid_xml_with_one_unique_case_per_policy_and_environment(
    repo: Repo, run
) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", SHORT)
    repo.env("gprd.yml", GSTG.replace("gstg", "gprd"))
    repo.policies(WAIVERS)
    root = ET.fromstring(_reports(repo, run)["junit.xml"])
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert len(names) == len(set(names)), "GitLab drops duplicate test names"
    checked = {name for name, policy in REGISTRY.items() if "environments" in policy.layers}
    assert len(cases) == len(checked) * 2
    assert {c.get("classname") for c in cases} == checked, "manifest-* run in `manifests` only"
    by_name = {c.get("name"): c for c in cases}
    interruptible = by_name["pdm-not-interruptible [gstg]"]
    failure = interruptible.find("failure")
    assert failure is not None
    assert "environments/gstg.yml:" in (failure.text or "")
    assert by_name["pdm-not-interruptible [gprd]"].find("failure") is None  # passing shows
    # The waived finding passes, the other timeout finding of the same case fails.
    timeout = by_name["pdm-executor-timeout [gstg]"]
    assert timeout.find("failure") is not None
    assert "(waived)" in (timeout.findtext("system-out") or "")
    suite = root.find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None for c in cases)


def test_junit_names_are_stable_across_runs_and_line_moves(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", INTERRUPTIBLE)
    first = [
        c.get("name") for c in ET.fromstring(_reports(repo, run)["junit.xml"]).iter("testcase")
    ]
    repo.env("gstg.yml", "# a comment moves every line\n\n" + INTERRUPTIBLE)
    second = [
        c.get("name") for c in ET.fromstring(_reports(repo, run)["junit.xml"]).iter("testcase")
    ]
    assert first == second


def test_codequality_has_gitlab_fields_and_stable_distinct_fingerprints(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", SHORT)
    raw = _reports(repo, run)["cq.json"]
    assert not raw.startswith("\ufeff")
    issues = json.loads(raw)
    assert len(issues) == 3  # interruptible + two timeouts
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["description"].startswith(f"{issue['check_name']}: ")
        assert issue["location"]["path"] == "environments/gstg.yml"
        assert issue["location"]["lines"]["begin"] >= 1
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == len(fingerprints)
    repo.env("gstg.yml", "# moved\n# moved again\n" + SHORT)
    moved = json.loads(_reports(repo, run)["cq.json"])
    assert sorted(i["fingerprint"] for i in moved) == sorted(fingerprints)
    assert [i["location"]["lines"]["begin"] for i in moved] == [
        i["location"]["lines"]["begin"] + 2 for i in issues
    ]


def test_codequality_is_an_empty_array_when_clean(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    assert json.loads(_reports(repo, run)["cq.json"]) == []


def test_markdown_note(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", SHORT)
    repo.policies(WAIVERS)
    note = _reports(repo, run, "--link-base", "https://gitlab.example/p/-/blob/abc")["note.md"]
    lines = note.splitlines()
    assert lines[0] == "<!-- pdmpolicy-note -->"
    assert lines[1].startswith("### :x: pdmpolicy check: 2 errors")
    assert "| gstg | gstg | kubernetes-after-vm | 2026-11-16 | — |" in note
    assert "gstg-vm-post-deploy-migrations (vm) → gstg-kubernetes-post-deploy-migrations" in note
    assert "(https://gitlab.example/p/-/blob/abc/environments/gstg.yml#L" in note
    assert "2026-12-31 (in 35 days)" in note
    assert "&amp; &lt;quick&gt;" in note  # user text cannot inject HTML
    assert "```mermaid" in note and "KUBERNETES EXECUTOR" in note


def test_markdown_verdict_when_clean(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    note = _reports(repo, run)["note.md"]
    assert note.splitlines()[1] == (
        "### :white_check_mark: pdmpolicy check: 0 errors, 0 warnings, 0 waived."
    )


def test_bad_report_spec_is_a_usage_error(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    repo.env("gstg.yml", GSTG)
    for spec in ("junit", "pdf=x.pdf", "junit="):
        try:
            code = run("check", "--report", spec).code
        except SystemExit as exc:
            code = int(exc.code or 0)
        assert code == 2, spec
    assert not Path(repo.root / "x.pdf").exists()
