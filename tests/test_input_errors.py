"""Bad input through `pdmpolicy check`: exit 2, no traceback, the exact place and clear words.

Each case is a directory `tests/fixtures/invalid/<case>/environments/` holding the bad file
(and, for cross-file problems, its companion). `EXPECTED` says where the first problem must
be reported and which words its message and hint must contain. Cases that cannot live in
git (symbolic links, a file over the size limit, a missing directory) are built in the tests below.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pdmpolicy.environments.load import MAX_BYTES
from tests.conftest import Repo, Result

FIXTURES = Path(__file__).parent / "fixtures" / "invalid"
TODAY = "2026-12-01"
PROBLEM = re.compile(r"^(?P<loc>\S+:\d+:\d+): error: (?P<message>.*)$")


@dataclass(frozen=True)
class Reported:
    loc: str
    message: str
    hint: str


@dataclass(frozen=True)
class Expect:
    loc: str
    """`path:line:col` of the first problem reported."""
    message: tuple[str, ...]
    """Words its message must contain."""
    hint: tuple[str, ...] = ()
    """Words its hint must contain."""
    count: int = 1
    """How many problems the run reports in all."""


def gstg(line: int, column: int) -> str:
    return f"environments/gstg.yml:{line}:{column}"


NAME_HINT = ("lowercase letters, digits, '-' and '_'",)
VARIABLE_NAME_HINT = ("letters, digits and '_'",)
SPELLING = ("spelling", "pdmpolicy schema")

EXPECTED: dict[str, Expect] = {
    # YAML syntax and encoding
    "duplicate-key": Expect(gstg(15, 5), ("duplicate key 'timeout'", "line 14"), ("once",)),
    "unclosed-bracket": Expect(gstg(12, 12), ("'['", "not closed", "line 13, column 14"), ("']'",)),
    "bad-indentation": Expect(
        gstg(14, 4), ("bad indentation", "column 4", "line 10", "column 3"), ("spaces",)
    ),
    "tab-indentation": Expect(gstg(14, 1), ("tab",), ("spaces",)),
    "unclosed-quote": Expect(gstg(2, 11), ("quoted string", "not closed"), ("quote",)),
    "second-document": Expect(gstg(15, 1), ("second YAML document",), ("one document",)),
    # Column 22 counts characters: the 'ü' before the bad byte is two bytes in UTF-8.
    "non-utf8": Expect(gstg(2, 22), ("not valid UTF-8", "0xe9"), ("UTF-8",)),
    "byte-order-mark": Expect(gstg(1, 1), ("byte-order mark",), ("without a BOM",)),
    "control-character": Expect(gstg(3, 23), ("U+000C",), ("remove it",)),
    "empty": Expect(gstg(1, 1), ("file is empty",), ("mapping",)),
    "whitespace-only": Expect(gstg(1, 1), ("file is empty",), ("mapping",)),
    "comment-only": Expect(gstg(1, 1), ("only comments",), ("mapping",)),
    "top-level-list": Expect(gstg(1, 1), ("mapping at the top", "found a list"), ("'jobs:'",)),
    "top-level-scalar": Expect(
        gstg(1, 1), ("mapping at the top", "found the text 'gstg'"), ("'environment:'",)
    ),
    "anchor": Expect(gstg(2, 11), ("anchor '&db'", "not allowed"), ("in full",)),
    "alias": Expect(gstg(8, 23), ("alias '*gstg'", "not allowed"), ("in full",)),
    "python-tag": Expect(
        gstg(2, 11), ("tag '!!python/object/apply:os.system'", "not allowed"), ("remove the tag",)
    ),
    # Unknown keys
    "unknown-top-level-key": Expect(gstg(4, 1), ("unknown key 'owner'", "the file"), SPELLING),
    "unknown-job-key": Expect(
        gstg(14, 5), ("unknown key 'retries'", "job 'gstg-vm-post-deploy-migrations'"), SPELLING
    ),
    "unknown-kctl-key": Expect(
        gstg(20, 7), ("unknown key 'dryrun'", "'kctl' of job 'gstg-kubernetes-dry-run'"), SPELLING
    ),
    # Wrong types and ranges
    "retry-string": Expect(gstg(14, 12), ("'retry'", "whole number", "the string '1'")),
    "retry-boolean": Expect(gstg(14, 12), ("'retry'", "whole number", "the boolean true")),
    "retry-out-of-range": Expect(gstg(14, 12), ("'retry'", "at most 2", "found 3"), ("0, 1 or 2",)),
    "dry-run-string": Expect(gstg(20, 16), ("'dry_run'", "true or false", "the string 'yes'")),
    "needs-string": Expect(
        gstg(15, 12), ("'needs'", "a list"), ("needs: [gstg-vm-post-deploy-migrations]",)
    ),
    "jobs-list": Expect(gstg(10, 3), ("'jobs'", "a mapping", "a list"), ("keyed by job name",)),
    "job-without-settings": Expect(gstg(15, 3), ("job 'gstg-cleanup'", "no settings"), ("runner",)),
    # Enumerations
    "bad-rollout-step": Expect(
        gstg(5, 9), ("'step'", "vm, dry-run, kubernetes-after-vm", "'kubernetes'")
    ),
    "bad-runner": Expect(gstg(11, 13), ("'runner'", "vm, kubernetes, generic", "'docker'")),
    "bad-when": Expect(gstg(15, 11), ("'when'", "on_success, manual, always", "'later'")),
    "bad-kctl-stage": Expect(gstg(18, 14), ("'stage'", "main, cny", "'canary'")),
    "bad-kctl-action": Expect(gstg(19, 15), ("'action'", "upgrade, template, list", "'deploy'")),
    "bad-stage": Expect(gstg(15, 12), ("'stage'", ".pre, build, test, deploy, .post", "'migrate'")),
    # Variables
    "variable-yaml-literals": Expect(
        gstg(9, 6), ("variable 'A'", "string", "unquoted false", "boolean"), ('A: "false"',), 7
    ),
    "variable-without-value": Expect(
        gstg(9, 3), ("variable 'CHANNEL'", "no value"), ('CHANNEL: ""',)
    ),
    "variable-names": Expect(
        gstg(14, 7), ("'1ST_RUN'", "not a valid variable name"), VARIABLE_NAME_HINT, 3
    ),
    # needs
    "unknown-needs": Expect(
        gstg(15, 13),
        ("job 'gstg-kubernetes-dry-run'", "'gstg-vm-post-deploy-migration'", "not a job"),
        ("gstg-vm-post-deploy-migrations",),
    ),
    "needs-itself": Expect(gstg(15, 13), ("job 'gstg-kubernetes-dry-run' needs itself",)),
    "needs-cycle-two": Expect(gstg(17, 12), ("cycle", "a -> b -> a"), ("itself",)),
    "needs-cycle-three": Expect(gstg(17, 12), ("cycle", "a -> c -> b -> a"), ("itself",)),
    # Job names
    "job-name-space": Expect(gstg(10, 3), ("'gstg vm'", "job name", "' '"), NAME_HINT),
    "job-name-uppercase": Expect(gstg(10, 3), ("'Gstg-VM'", "job name", "uppercase"), NAME_HINT),
    "job-name-colon": Expect(gstg(10, 3), ("'gstg:vm'", "job name", "':'"), NAME_HINT),
    "job-name-dot-dot": Expect(gstg(10, 3), ("'..'", "job name", "'.'"), NAME_HINT),
    "job-name-slash": Expect(gstg(10, 3), ("'gstg/vm'", "job name", "'/'"), NAME_HINT),
    "job-name-leading-dash": Expect(
        gstg(10, 3), ("'-gstg-vm'", "job name", "start and end with a letter or digit"), NAME_HINT
    ),
    "job-name-too-long": Expect(gstg(10, 3), ("job name", "64 characters", "63"), NAME_HINT),
    "job-name-keyword-variables": Expect(gstg(10, 3), ("'variables'", "GitLab CI keyword")),
    "job-name-keyword-default": Expect(gstg(10, 3), ("'default'", "GitLab CI keyword")),
    # File name and required keys
    "environment-file-mismatch": Expect(
        "environments/gprd.yml:1:14",
        ("environment 'gstg'", "file name 'gprd.yml'"),
        ("gstg.yml", "environment: gprd"),
    ),
    "file-name-not-a-name": Expect(
        "environments/Gstg.yml:1:14", ("environment 'gstg'", "file name 'Gstg.yml'"), ("gstg.yml",)
    ),
    "duplicate-environment": Expect(
        gstg(1, 14),
        ("environment 'gstg'", "also defined in environments/gstg.yaml"),
        ("remove environments/gstg.yml or environments/gstg.yaml",),
    ),
    "missing-database": Expect(gstg(1, 1), ("missing", "'database'")),
    "missing-runner": Expect(
        gstg(10, 3), ("job 'gstg-vm-post-deploy-migrations'", "missing", "'runner'")
    ),
    "missing-rollout-since": Expect(gstg(4, 1), ("'rollout'", "missing", "'since'")),
    # Dates and durations
    "date-month-13": Expect(gstg(6, 10), ("'since'", "2026-13-01", "not a day", "month")),
    "date-february-30": Expect(gstg(6, 10), ("'since'", "2026-02-30", "not a day", "day")),
    "date-with-time": Expect(
        gstg(6, 10), ("'since'", "without a time", "YYYY-MM-DD", "2026-11-16T09:30:00")
    ),
    "timeout-text": Expect(gstg(14, 14), ("'timeout'", "duration", "'10h'")),
    # Keys that belong to another runner
    "kctl-on-vm-job": Expect(gstg(15, 5), ("'kctl'", "runner: vm")),
    "script-on-kubernetes-job": Expect(gstg(23, 5), ("'script'", "runner: kubernetes")),
    "kubernetes-without-kctl": Expect(
        gstg(13, 3), ("job 'gstg-kubernetes-dry-run'", "runner: kubernetes", "no 'kctl'")
    ),
    "generic-without-script": Expect(
        gstg(15, 3), ("job 'gstg-notify'", "runner: generic", "no 'script'")
    ),
    "script-line-break": Expect(gstg(18, 9), ("script line", "line break"), ("one command",)),
    "script-unbalanced-quote": Expect(
        gstg(18, 9), ("shell cannot read", "No closing quotation"), ("quotes",)
    ),
    # Upstream
    "upstream-unknown": Expect(gstg(3, 11), ("upstream 'gcny'", "not an environment"), ("gstg",)),
    "upstream-itself": Expect(gstg(3, 11), ("'gstg'", "itself", "upstream")),
    "upstream-cycle": Expect(
        "environments/gprd.yml:3:11", ("upstream", "cycle", "gprd -> gstg -> gprd"), count=2
    ),
    # Several problems
    "several-errors": Expect(gstg(4, 1), ("unknown key 'team'",), SPELLING, 4),
    "errors-in-two-files": Expect(
        "environments/gprd.yml:11:13", ("'runner'", "'bare-metal'"), count=2
    ),
}


def problems(err: str) -> list[Reported]:
    """The problems printed on stderr, with their hints, in order."""
    found: list[Reported] = []
    for line in err.splitlines():
        match = PROBLEM.match(line)
        if match:
            found.append(Reported(match["loc"], match["message"], ""))
        elif line.startswith("  hint: ") and found:
            last = found[-1]
            found[-1] = Reported(last.loc, last.message, line.removeprefix("  hint: "))
    return found


def check_case(repo: Repo, run: Any, case: str) -> Result:
    shutil.copytree(
        FIXTURES / case / "environments", repo.root / "environments", dirs_exist_ok=True
    )
    result: Result = run("check", "--today", TODAY)
    return result


def assert_input_error(result: Result) -> list[Reported]:
    assert result.code == 2, result.err + result.out
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    assert result.out == ""
    reported = problems(result.err)
    assert reported, result.err
    assert result.err.rstrip().endswith(f"{len(reported)} input error(s); nothing was checked")
    return reported


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_invalid_input_is_reported_at_its_place(repo: Repo, run: Any, case: str) -> None:
    expect = EXPECTED[case]
    reported = assert_input_error(check_case(repo, run, case))
    first = reported[0]
    assert first.loc == expect.loc, reported
    for words in expect.message:
        assert words in first.message, first
    for words in expect.hint:
        assert words in first.hint, first
    assert len(reported) == expect.count, reported


def test_a_file_name_that_is_no_environment_name_is_not_suggested(repo: Repo, run: Any) -> None:
    (first,) = assert_input_error(check_case(repo, run, "file-name-not-a-name"))
    assert "environment: Gstg" not in first.hint


def test_several_problems_of_one_file_are_all_reported_in_line_order(repo: Repo, run: Any) -> None:
    reported = assert_input_error(check_case(repo, run, "several-errors"))
    assert [p.loc for p in reported] == [gstg(4, 1), gstg(6, 9), gstg(15, 12), gstg(16, 5)]
    assert "'vm-first'" in reported[1].message
    assert "at most 2, found 5" in reported[2].message
    assert "unknown key 'colour'" in reported[3].message


def test_problems_of_two_files_are_both_reported(repo: Repo, run: Any) -> None:
    reported = assert_input_error(check_case(repo, run, "errors-in-two-files"))
    assert [p.loc for p in reported] == ["environments/gprd.yml:11:13", gstg(5, 9)]
    assert "'canary'" in reported[1].message


def test_every_unquoted_yaml_literal_in_variables_says_to_quote_it(repo: Repo, run: Any) -> None:
    reported = assert_input_error(check_case(repo, run, "variable-yaml-literals"))
    written = [("A", "false"), ("B", "no"), ("C", "yes"), ("D", "on"), ("E", "1"), ("F", "0.5")]
    written.append(("G", "~"))
    assert [p.loc for p in reported] == [gstg(line, 6) for line in range(9, 16)]
    for problem, (name, literal) in zip(reported, written, strict=True):
        assert f"variable '{name}'" in problem.message
        assert f"unquoted {literal} as a" in problem.message
        assert problem.hint == f'quote it: {name}: "{literal}"'


def test_the_quoted_forms_of_those_literals_pass(repo: Repo, run: Any) -> None:
    text = (FIXTURES / "variable-yaml-literals" / "environments" / "gstg.yml").read_text()
    for name, literal in [("A", "false"), ("B", "no"), ("C", "yes"), ("D", "on")]:
        text = text.replace(f"  {name}: {literal}\n", f'  {name}: "{literal}"\n')
    for name, literal in [("E", "1"), ("F", "0.5"), ("G", "~")]:
        text = text.replace(f"  {name}: {literal}\n", f"  {name}: '{literal}'\n")
    repo.env("gstg.yml", text)
    result = run("check", "--today", TODAY)
    assert result.code == 0, result.err + result.out


def test_all_variable_names_that_are_invalid_are_reported(repo: Repo, run: Any) -> None:
    reported = assert_input_error(check_case(repo, run, "variable-names"))
    names = [p.message.partition("'")[2].partition("'")[0] for p in reported]
    assert names == ["1ST_RUN", "DRY-RUN", "SKIP MIGRATIONS"]
    assert [p.loc for p in reported] == [gstg(14, 7), gstg(15, 7), gstg(16, 7)]


def test_an_upstream_cycle_is_reported_in_both_files(repo: Repo, run: Any) -> None:
    reported = assert_input_error(check_case(repo, run, "upstream-cycle"))
    assert [p.loc for p in reported] == ["environments/gprd.yml:3:11", gstg(3, 11)]
    assert "gstg -> gprd -> gstg" in reported[1].message


VALID = """\
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
"""The file most fixtures were made from, by one change each."""


def test_the_base_of_the_fixtures_is_valid(repo: Repo, run: Any) -> None:
    repo.env("gstg.yml", VALID)
    result = run("check", "--today", TODAY)
    assert result.code == 0, result.err + result.out
    # and the fixtures really are that file changed
    several = (FIXTURES / "several-errors" / "environments" / "gstg.yml").read_text()
    repaired = several.replace("team: delivery\n", "").replace("step: vm-first", "step: vm")
    assert repaired.replace("    retry: 5\n    colour: red\n", "") == VALID


def test_a_file_linked_from_outside_the_repository_is_refused(
    repo: Repo, run: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "gstg.yml"
    outside.write_text(VALID, encoding="utf-8")
    (repo.root / "environments" / "gstg.yml").symlink_to(outside)
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert "symbolic link leads outside the repository" in first.message
    assert "copy the file in" in first.hint


def test_a_directory_linked_from_outside_the_repository_is_refused(
    repo: Repo, run: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "gstg.yml").write_text(VALID, encoding="utf-8")
    (repo.root / "environments").rmdir()
    (repo.root / "environments").symlink_to(outside, target_is_directory=True)
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert "outside the repository" in first.message


def test_a_link_inside_the_repository_is_followed(repo: Repo, run: Any) -> None:
    (repo.root / "shared").mkdir()
    (repo.root / "shared" / "staging.yml").write_text(VALID, encoding="utf-8")
    (repo.root / "environments" / "gstg.yml").symlink_to(repo.root / "shared" / "staging.yml")
    result = run("check", "--today", TODAY)
    assert result.code == 0, result.err


def test_a_dangling_link_is_reported_under_its_own_name(repo: Repo, run: Any) -> None:
    (repo.root / "environments" / "gstg.yml").symlink_to(repo.root / "gone.yml")
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert "cannot read file" in first.message


def test_a_link_loop_is_reported_not_a_crash(repo: Repo, run: Any) -> None:
    link = repo.root / "environments" / "gstg.yml"
    link.symlink_to(link)
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert "cannot read file" in first.message


def test_a_directory_named_like_a_file_is_unreadable(repo: Repo, run: Any) -> None:
    (repo.root / "environments" / "gstg.yml").mkdir()
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert "cannot read file" in first.message


def test_a_file_over_the_size_limit_is_refused(repo: Repo, run: Any) -> None:
    padding = "# padding\n" * (MAX_BYTES // 10 + 1)
    repo.env("gstg.yml", VALID + padding)
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc == gstg(1, 1)
    assert f"more than the {MAX_BYTES} allowed" in first.message


def test_a_file_of_exactly_the_size_limit_is_read(repo: Repo, run: Any) -> None:
    text = VALID
    repo.env("gstg.yml", text + "#" * (MAX_BYTES - len(text) - 1) + "\n")
    assert (repo.root / "environments" / "gstg.yml").stat().st_size == MAX_BYTES
    result = run("check", "--today", TODAY)
    assert result.code == 0, result.err


@pytest.mark.parametrize("option", ["--environments", "--policies"])
def test_a_missing_directory_is_a_usage_error(repo: Repo, run: Any, option: str) -> None:
    repo.env("gstg.yml", VALID)
    result = run("check", "--today", TODAY, option, "does-not-exist")
    assert result.code == 2
    assert "Traceback" not in result.err
    what = option.removeprefix("--")
    assert f"{what} directory 'does-not-exist' does not exist" in result.err
    assert f"--{what} DIR" in result.err


def test_an_environments_path_that_is_a_file_is_a_usage_error(repo: Repo, run: Any) -> None:
    path = repo.env("gstg.yml", VALID)
    result = run("check", "--today", TODAY, "--environments", str(path))
    assert result.code == 2
    assert "is not a directory" in result.err


def test_an_empty_environments_directory_is_reported(repo: Repo, run: Any) -> None:
    (first,) = assert_input_error(run("check", "--today", TODAY))
    assert first.loc.startswith("environments:")
    assert "no environment files" in first.message
