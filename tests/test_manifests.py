"""`pdmpolicy manifests`: reading rendered Kubernetes YAML, tying files to environments, reports.

The policies' own cases are fixtures (tests/fixtures/policies/manifest-*/, run by
test_policies.py); this module covers the reader, the environment of each file, the command
line and the dry-run artifact of the rendered pipeline.
"""

from __future__ import annotations

import io
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from pdmpolicy.manifests import read
from pdmpolicy.manifests.read import parse_manifests
from pdmpolicy.manifests.recognise import recognise
from pdmpolicy.policies.examples import GSTG, GSTG_CNY, changed
from pdmpolicy.policies.manifest_examples import MIGRATIONS_JOB
from tests.conftest import Repo, Result

TODAY = "2026-11-26"
FIXTURES = Path(__file__).parent / "fixtures" / "policies"
CHART_DEFAULTS = FIXTURES / "manifest-no-job-retry" / "fail-chart-defaults" / "gstg.manifest.yaml"
CORRECTED = FIXTURES / "manifest-no-job-retry" / "pass-corrected-full-output" / "gstg.manifest.yaml"
SKIP = "SKIP_POST_DEPLOYMENT_MIGRATIONS"
WITH_SKIP = changed(
    MIGRATIONS_JOB,
    "          env:\n",
    f'          env:\n            - name: {SKIP}\n              value: "false"\n',
)
SKIP_LINE = WITH_SKIP.splitlines().index(f"            - name: {SKIP}") + 1


def manifests(run: Any, *args: str) -> Result:
    result: Result = run("manifests", "--today", TODAY, *args)
    return result


def as_json(run: Any, *args: str) -> tuple[Result, dict[str, Any]]:
    result = manifests(run, "--format", "json", *args)
    assert result.code in (0, 1), result.err
    return result, json.loads(result.out)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def policies_of(report: dict[str, Any]) -> list[str]:
    return sorted({f["policy"] for f in report["findings"]})


# --- what the issue says "done" means -------------------------------------------------------


def test_skip_variable_false_is_rejected_at_its_line_with_the_reason(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    write(repo.root, "gstg.yaml", WITH_SKIP)
    result = manifests(run, "gstg.yaml")
    assert result.code == 1
    first = result.out.splitlines()[0]
    assert first.startswith(f"gstg.yaml:{SKIP_LINE}:21: error manifest-no-skip-variable: ")
    assert "whenever the variable is present" in first
    assert '"false" included' in first


def test_chart_defaults_fail_retry_and_deadline_and_the_corrected_one_passes(
    repo: Repo, run: Any
) -> None:
    repo.env("gstg.yml", GSTG)
    write(repo.root, "defaults/gstg.yaml", CHART_DEFAULTS.read_text(encoding="utf-8"))
    write(repo.root, "corrected/gstg.yaml", CORRECTED.read_text(encoding="utf-8"))
    result, report = as_json(run, "defaults/gstg.yaml")
    assert result.code == 1
    assert policies_of(report) == ["manifest-deadline", "manifest-no-job-retry"]
    messages = " ".join(f["message"] for f in report["findings"])
    assert "backoffLimit 6" in messages and "'OnFailure'" in messages
    assert "activeDeadlineSeconds 3600" in messages and "10h" in messages
    result, report = as_json(run, "corrected/gstg.yaml")
    assert (result.code, report["findings"]) == (0, [])


# --- reading files, directories and stdin ---------------------------------------------------


def test_directories_are_read_recursively_sorted_skipping_hidden_and_other_files(
    repo: Repo, run: Any
) -> None:
    repo.env("gstg.yml", GSTG)
    write(repo.root, "out/gstg/b.yaml", MIGRATIONS_JOB)
    write(repo.root, "out/gstg/a/job.yml", MIGRATIONS_JOB.replace("5d2c1f0", "aaaaaaa"))
    write(repo.root, "out/gstg/.git/config.yaml", "not: [a manifest")
    write(repo.root, "out/gstg/notes.txt", "not yaml at all: [")
    _, report = as_json(run, "out", "--report", "markdown=note.md")
    single = [f for f in report["findings"] if f["policy"] == "manifest-single-job"]
    assert [f["path"] for f in single] == ["out/gstg/a/job.yml", "out/gstg/b.yaml"]
    note = (repo.root / "note.md").read_text(encoding="utf-8")
    assert note.index("`out/gstg/a/job.yml`") < note.index("`out/gstg/b.yaml`")
    assert "gstg (its path names environment gstg)" in note


def test_stdin(repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.env("gstg.yml", GSTG)
    stdin = io.TextIOWrapper(io.BytesIO(WITH_SKIP.encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    result, report = as_json(run, "-")
    assert result.code == 1
    [finding] = report["findings"]
    assert (finding["path"], finding["line"], finding["environment"]) == (
        "<stdin>",
        SKIP_LINE,
        "gstg",  # the only environment
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.yaml"], "manifest path 'missing.yaml' does not exist"),
        (["empty"], "no *.yaml or *.yml files under 'empty'"),
        (["-", "-"], "'-' (standard input) is given twice"),
        (["--environment", "gprd", "gstg.yaml"], "--environment gprd: no such environment"),
    ],
)
def test_usage_errors_exit_2(repo: Repo, run: Any, args: list[str], words: str) -> None:
    repo.env("gstg.yml", GSTG)
    (repo.root / "empty").mkdir()
    write(repo.root, "gstg.yaml", MIGRATIONS_JOB)
    result = manifests(run, *args)
    assert result.code == 2
    assert words in result.err
    assert "Traceback" not in result.err


BAD_INPUT = {
    "syntax in a later document": (
        MIGRATIONS_JOB + "---\napiVersion: v1\nkind: ConfigMap\ndata: {a: [1, 2}\n",
        (MIGRATIONS_JOB.count("\n") + 4, 11),
        "'[' opened here is not closed",
    ),
    "log text instead of YAML": (
        "Comparing release=gitlab, chart=gitlab/gitlab\nNo affected releases\n",
        (1, 1),
        "not a Kubernetes object",
    ),
    "a list": ("- a\n- b\n", (1, 1), "YAML document 1 is a list"),
    "no kind": ("apiVersion: v1\nmetadata: {name: x}\n", (1, 1), "has no 'kind'"),
    "duplicate key in the Job": (
        changed(MIGRATIONS_JOB, "  backoffLimit: 0\n", "  backoffLimit: 0\n  backoffLimit: 6\n"),
        (15, 3),
        "duplicate key 'backoffLimit' (first written at line 14)",
    ),
    "undefined alias": ("apiVersion: v1\nkind: ConfigMap\ndata: *nothing\n", (3, 7), "alias"),
    "tab indentation": ("apiVersion: v1\nkind: Job\nspec:\n\tbackoffLimit: 0\n", (4, 1), "tab"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_manifests_are_input_errors_at_their_line(repo: Repo, run: Any, case: str) -> None:
    text, (line, column), words = BAD_INPUT[case]
    repo.env("gstg.yml", GSTG)
    write(repo.root, "gstg.yaml", text)
    result = manifests(run, "gstg.yaml")
    assert result.code == 2, result.out
    assert result.err.startswith(f"gstg.yaml:{line}:{column}: error: "), result.err
    assert words in result.err
    assert "Traceback" not in result.err


def test_unreadable_bytes_are_refused_with_their_position(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    (repo.root / "gstg.yaml").write_bytes(b"apiVersion: v1\nkind: \xff\n")
    result = manifests(run, "gstg.yaml")
    assert result.code == 2
    assert result.err.startswith("gstg.yaml:2:7: error: not valid UTF-8")


def test_duplicate_keys_elsewhere_are_tolerated() -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata:\n  labels: {a: 1, a: 2}\n"
    [resource] = parse_manifests("x.yaml", service.encode())
    assert resource.kind == "Service"


def test_yaml_is_read_as_kubernetes_reads_it() -> None:
    """go-yaml follows YAML 1.1: `0400` is octal, `on` a boolean; dates stay text."""
    text = "apiVersion: v1\nkind: ConfigMap\ndata: {mode: 0400, flag: on, day: 2026-11-26}\n"
    [resource] = parse_manifests("x.yaml", text.encode())
    assert dict(resource.data["data"]) == {"mode": 256, "flag": True, "day": "2026-11-26"}


def test_empty_documents_and_files_hold_no_objects() -> None:
    assert parse_manifests("x.yaml", b"") == ()
    assert parse_manifests("x.yaml", b"---\n# Source: nothing\n---\n") == ()


def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read, "MAX_FILE_BYTES", 100)
    with pytest.raises(read.InputError, match="more than the 100 allowed"):
        parse_manifests("x.yaml", MIGRATIONS_JOB.encode())
    monkeypatch.setattr(read, "MAX_FILE_BYTES", 10_000_000)
    monkeypatch.setattr(read, "MAX_DOCUMENTS", 3)
    with pytest.raises(read.InputError, match="more than 3 YAML documents"):
        parse_manifests("x.yaml", b"".join([b"---\nkind: A\n"] * 5))


def test_alias_bomb_costs_nothing_and_deep_nesting_is_an_input_error() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "apiVersion: v1\nkind: ConfigMap\ndata:\n" + "".join(f"  {lv}\n" for lv in levels)
    # Processor time, not wall-clock time: a shared machine must not fail the test, a
    # billion-node expansion would.
    start = time.process_time()
    [resource] = parse_manifests("bomb.yaml", bomb.encode())
    assert recognise(resource) is None
    assert time.process_time() - start < 5
    deep = "apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 1000 + "]" * 1000 + "\n"
    with pytest.raises(read.InputError, match="nested more than 100 levels deep"):
        parse_manifests("deep.yaml", deep.encode())
    assert time.process_time() - start < 5


# --- helm-diff output (`k-ctl -D`) ----------------------------------------------------------


def _as_added(text: str, colour: bool = False) -> str:
    green, reset = ("\x1b[32m", "\x1b[0m") if colour else ("", "")
    lines = "".join(f"{green}+ {line}{reset}\n" for line in text.rstrip("\n").split("\n"))
    header = "gitlab, gitlab-migrations-5d2c1f0, Job (batch) has been added:"
    return f"Comparing release=gitlab, chart=gitlab/gitlab\n{header}\n- \n{lines}"


@pytest.mark.parametrize("colour", [False, True])
def test_a_helm_diff_gives_the_findings_of_the_manifest_at_its_own_lines(
    repo: Repo, run: Any, colour: bool
) -> None:
    """Every finding on the plain manifest, shifted by the diff's 3 header lines and the
    2-character `+ ` prefix (colour codes are removed first)."""
    repo.env("gstg.yml", GSTG)
    text = CHART_DEFAULTS.read_text(encoding="utf-8")
    write(repo.root, "plain/gstg.yaml", text)
    write(repo.root, "diff/gstg.yaml", _as_added(text, colour))
    _, plain = as_json(run, "plain/gstg.yaml")
    _, diff = as_json(run, "diff/gstg.yaml")
    assert plain["findings"]
    assert [(f["policy"], f["line"] + 3, f["column"] + 2) for f in plain["findings"]] == [
        (f["policy"], f["line"], f["column"]) for f in diff["findings"]
    ]


def test_a_helm_diff_that_leaves_lines_of_the_job_out_is_refused(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    entry = (
        "gitlab, gitlab-migrations-5d2c1f0, Job (batch) has changed:\n"
        "...\n"
        "    spec:\n"
        "-     restartPolicy: OnFailure\n"
        "+     restartPolicy: Never\n"
        "...\n"
    )
    write(repo.root, "gstg.yaml", entry)
    result = manifests(run, "gstg.yaml")
    assert result.code == 2
    assert result.err.startswith("gstg.yaml:2:1: error: the diff of Job gitlab-migrations-5d2c1f0")
    assert "--context" in result.err


# --- which environment a file was rendered for ----------------------------------------------


def _two_environments(repo: Repo) -> None:
    repo.env("gstg.yml", GSTG)
    repo.env("gstg-cny.yml", GSTG_CNY)


def test_a_saved_dry_run_is_tied_to_the_environment_of_its_job(repo: Repo, run: Any) -> None:
    _two_environments(repo)
    write(repo.root, "artifacts/dry-run/gstg-cny-kubernetes-dry-run.yaml", MIGRATIONS_JOB)
    _, report = as_json(run, "artifacts", "--report", "markdown=note.md")
    assert report["findings"] == []
    note = (repo.root / "note.md").read_text(encoding="utf-8")
    how = "named after job gstg-cny-kubernetes-dry-run of environments/gstg-cny.yml"
    assert f"gstg-cny ({how})" in note


def test_undecidable_environment_asks_for_the_flag(repo: Repo, run: Any) -> None:
    _two_environments(repo)
    write(repo.root, "rendered.yaml", MIGRATIONS_JOB)
    result = manifests(run, "rendered.yaml")
    assert result.code == 2
    assert "cannot tell which environment rendered.yaml was rendered for" in result.err
    assert "--environment ENV (known: gstg, gstg-cny)" in result.err
    # Objects that are not a migrations Job need no environment.
    write(repo.root, "rendered.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
    write(repo.root, "gstg.yaml", MIGRATIONS_JOB)
    assert manifests(run, "rendered.yaml", "gstg.yaml").code == 0


def test_the_flag_decides_for_every_file(repo: Repo, run: Any) -> None:
    _two_environments(repo)
    short = changed(MIGRATIONS_JOB, "36000", "7200")
    write(repo.root, "rendered.yaml", short)
    # gstg-cny declares no executor: GitLab's default timeout of 60 minutes applies.
    assert manifests(run, "rendered.yaml", "--environment", "gstg-cny").code == 0
    result, report = as_json(run, "rendered.yaml", "--environment", "gstg")
    assert result.code == 1
    assert [f["environment"] for f in report["findings"]] == ["gstg"]


# --- reports, scope and waivers -------------------------------------------------------------


def test_every_report_format_and_several_from_one_run(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    write(repo.root, "gstg.yaml", CHART_DEFAULTS.read_text(encoding="utf-8"))
    result = manifests(
        run,
        "gstg.yaml",
        "--report",
        "junit=junit.xml",
        "--report",
        "codequality=cq.json",
        "--report",
        "markdown=note.md",
        "--output",
        "out.txt",
    )
    assert (result.code, result.out) == (1, "")
    text = (repo.root / "out.txt").read_text(encoding="utf-8")
    assert text.startswith("gstg.yaml:252:26: error manifest-deadline: ")
    cases = ET.fromstring((repo.root / "junit.xml").read_text(encoding="utf-8")).findall(
        ".//testcase"
    )
    names = {c.get("name"): c for c in cases}
    assert sorted(names) == [
        "manifest-deadline [gstg]",
        "manifest-no-job-retry [gstg]",
        "manifest-no-skip-variable [gstg]",
        "manifest-single-job [gstg]",
    ]
    assert names["manifest-no-skip-variable [gstg]"].find("failure") is None
    assert names["manifest-no-job-retry [gstg]"].find("failure") is not None
    issues = json.loads((repo.root / "cq.json").read_text(encoding="utf-8"))
    assert len({issue["fingerprint"] for issue in issues}) == len(issues) == 3
    assert {issue["location"]["path"] for issue in issues} == {"gstg.yaml"}
    note = (repo.root / "note.md").read_text(encoding="utf-8")
    assert "### :x: pdmpolicy manifests: 3 errors" in note
    assert "The migrations Job must not run as rendered." in note
    assert "| Job gitlab/gitlab-migrations-5d2c1f0 | `gstg.yaml:242` |" in note


def test_waivers_and_scopes_apply_by_environment(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.env("gprd.yml", GSTG.replace("gstg", "gprd"))
    short = changed(MIGRATIONS_JOB, "36000", "3600")
    write(repo.root, "gstg.yaml", short)
    write(repo.root, "gprd.yaml", short)
    repo.policies(
        "policies:\n  manifest-deadline: {environments: [gstg, gprd]}\n"
        "waivers:\n  - policy: manifest-deadline\n    environment: gstg\n"
        "    reason: staging PDMs are short\n    owner: '@release-managers'\n"
        "    expires: 2026-12-31\n"
    )
    result, report = as_json(run, "gstg.yaml", "gprd.yaml")
    assert result.code == 1
    found = sorted((f["environment"], f["waived"]) for f in report["findings"])
    assert found == [("gprd", False), ("gstg", True)]
    repo.policies("policies:\n  manifest-deadline: {environments: [gstg]}\n")
    result, report = as_json(run, "gprd.yaml", "gstg.yaml")
    assert [f["environment"] for f in report["findings"]] == ["gstg"]


def test_check_does_not_run_the_manifest_policies(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    result = run("check", "--today", TODAY, "--format", "junit")
    assert result.code == 0
    assert "manifest-" not in result.out


# --- recognising the migrations Job ---------------------------------------------------------


def test_only_the_migrations_job_of_a_full_chart_output_is_recognised() -> None:
    resources = parse_manifests("gstg.yaml", CORRECTED.read_bytes())
    kinds = {r.kind for r in resources}
    assert {"ConfigMap", "Service", "Deployment", "CronJob", "Job"} <= kinds
    jobs = [job for r in resources if (job := recognise(r))]
    assert [(job.name, job.reason) for job in jobs] == [
        ("gitlab-migrations-5d2c1f0", "runs db-migrate in container migrations")
    ]
    assert [c.describe() for c in jobs[0].containers] == [
        "init container configure",
        "container migrations",
    ]


SCRIPT = "            - /scripts/db-migrate\n"


def _recognised(text: str) -> str | None:
    [resource] = parse_manifests("x.yaml", text.encode())
    job = recognise(resource)
    return job.reason if job is not None else None


def test_recognised_by_the_chart_label_when_the_arguments_are_overridden() -> None:
    text = changed(MIGRATIONS_JOB, SCRIPT, "            - /scripts/custom-entry\n")
    assert _recognised(text) == "labelled app: migrations"


def test_recognised_by_the_rails_task_in_a_shell_string() -> None:
    text = changed(MIGRATIONS_JOB, SCRIPT, "            - sh -c 'bundle exec rake db:migrate'\n")
    assert _recognised(text.replace("app: migrations", "app: other")) == (
        "runs db:migrate in container migrations"
    )


@pytest.mark.parametrize(
    "word", ["/scripts/geo-db-migrate", "gitlab-rake db:migrate:status", "/scripts/db-migrated"]
)
def test_other_commands_are_not_the_migrations_job(word: str) -> None:
    text = changed(MIGRATIONS_JOB, SCRIPT, f"            - {word}\n")
    assert _recognised(text.replace("app: migrations", "app: x")) is None


# --- the rendered pipeline keeps the dry run ------------------------------------------------


def test_the_rendered_dry_run_job_saves_its_output_for_this_command(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", GSTG)
    repo.env("gstg-cny.yml", GSTG_CNY)
    assert run("render", "--today", TODAY).code == 0
    child = YAML(typ="safe", pure=True).load(
        (repo.root / "ci/environments/gstg-cny-postdeploy-migrations.yml").read_text()
    )
    job = child["gstg-cny-kubernetes-dry-run"]
    saved = "dry-run/gstg-cny-kubernetes-dry-run.yaml"
    assert job["script"][0] == "mkdir -p dry-run"
    assert job["script"][1].endswith(f"k-ctl -e gstg-cny -s cny -D upgrade > {saved}")
    assert "|" not in job["script"][1], "a pipe would hide k-ctl's exit status"
    assert job["script"][2] == f"cat {saved}"
    assert job["artifacts"] == {"paths": [saved], "when": "always", "expire_in": "30 days"}
    # Jobs that run for real save nothing.
    gstg = YAML(typ="safe", pure=True).load(
        (repo.root / "ci/environments/gstg-postdeploy-migrations.yml").read_text()
    )
    assert all("artifacts" not in job for job in gstg.values() if isinstance(job, dict))
    # What the job saves is what `pdmpolicy manifests` reads, tied to the job's environment.
    write(repo.root, saved, WITH_SKIP)
    _, report = as_json(run, "dry-run")
    assert [(f["path"], f["environment"]) for f in report["findings"]] == [(saved, "gstg-cny")]
