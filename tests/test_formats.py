"""The input formats are documented from the schema: docs/ and schemas/ are generated, current,
describe every key, and no user-facing text points at a document the repository lacks."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from pdmpolicy.cli import main
from pdmpolicy.core.findings import Finding
from pdmpolicy.core.location import Loc
from pdmpolicy.docgen import formats
from tests.conftest import REPO_ROOT

REGENERATE = "regenerate: python -m pdmpolicy.docgen.formats"


@pytest.mark.parametrize(
    "path", sorted(formats.generated_files(REPO_ROOT)), ids=lambda p: str(p.name)
)
def test_generated_file_is_current(path: Any) -> None:
    expected = formats.generated_files(REPO_ROOT)[path]
    assert path.read_text(encoding="utf-8") == expected, REGENERATE


def test_every_environment_key_is_described_and_no_description_is_stale() -> None:
    paths = formats.environment_key_paths()
    assert sorted(paths) == sorted(formats.ENVIRONMENT_KEYS), (
        "add a description to formats.ENVIRONMENT_KEYS for every key of ENVIRONMENT_SCHEMA"
    )


def test_reference_table_lists_every_key() -> None:
    text = (REPO_ROOT / "docs/environment-files.md").read_text(encoding="utf-8")
    for path in formats.environment_key_paths():
        assert f"| `{path}` |" in text


def test_json_report_fields_are_the_documented_ones() -> None:
    finding = Finding("p", "error", "m", Loc("a.yml", 1, 1))
    assert list(finding.to_json()) == list(formats._FINDING_FIELDS)


def _yaml(path: Any) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _json_safe(value: Any) -> Any:
    """What an editor sees: yaml-language-server reads an unquoted date as text."""
    return json.loads(json.dumps(value, default=str))


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "environments").glob("*.yml")), ids=str)
def test_shipped_environment_validates_against_committed_schema(path: Any) -> None:
    schema = json.loads((REPO_ROOT / formats.ENVIRONMENT_SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(_json_safe(_yaml(path)))) == []


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "policies").glob("*.yml")), ids=str)
def test_shipped_policy_set_validates_against_committed_schema(path: Any) -> None:
    schema = json.loads((REPO_ROOT / formats.POLICY_SET_SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(_json_safe(_yaml(path)))) == []


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"policies": {"pdm-executor-timeout": {"minimum": 3}}}, "minimum"),
        ({"policies": {"pdm-locked": {"severity": "fatal"}}}, "severity"),
        ({"policies": {"pdm-locked": {"soak_days": 7}}}, "soak_days"),
        ({"waivers": [{"policy": "pdm-locked", "expire": "2026-01-01"}]}, "expire"),
        ({"policy": {}}, "policy"),
    ],
)
def test_policy_set_schema_rejects_what_check_rejects(document: Any, where: str) -> None:
    schema = json.loads((REPO_ROOT / formats.POLICY_SET_SCHEMA_PATH).read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert errors, f"the editor must flag {where}"


def test_environment_schema_describes_keys_for_hover() -> None:
    schema = formats.environment_json_schema()
    job = schema["properties"]["jobs"]["additionalProperties"]
    assert "retries" in job["properties"]["retry"]["description"]
    assert "k-ctl" in job["properties"]["kctl"]["properties"]["environment"]["description"]


def test_schema_command_prints_both_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == formats.environment_json_schema()
    assert main(["schema", "policy-set"]) == 0
    assert json.loads(capsys.readouterr().out) == formats.policy_set_json_schema()


def test_no_user_facing_text_points_at_a_document_that_does_not_ship() -> None:
    """The product brief is not in the repository; the package, README and docs point at
    docs/ instead (`--help`, hints and the JSON Schema come from the package)."""
    result = subprocess.run(
        ["git", "grep", "-n", "SPEC.md", "--", "pdmpolicy", "README.md", "docs", "schemas"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout == ""
    for path in [*REPO_ROOT.glob("pdmpolicy/**/*.py"), REPO_ROOT / "README.md"]:
        assert "SPEC.md" not in path.read_text(encoding="utf-8"), path


def test_docs_links_point_at_files_that_exist() -> None:
    for doc in (REPO_ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([a-z0-9_-]+\.md)(?:#[^)]*)?\)", doc.read_text()):
            if target == "toolchain.md" and not (REPO_ROOT / "docs" / target).exists():
                continue  # written with the toolchain section of the policy set
            assert (REPO_ROOT / "docs" / target).exists(), f"{doc.name} links {target}"


@pytest.mark.parametrize(
    ("pattern", "schema"),
    [
        ("environments/*.yml", formats.ENVIRONMENT_SCHEMA_PATH),
        ("policies/*.yml", formats.POLICY_SET_SCHEMA_PATH),
    ],
)
def test_shipped_files_tell_editors_their_schema(pattern: str, schema: str) -> None:
    files = sorted(REPO_ROOT.glob(pattern))
    assert files
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == formats.EDITOR_LINE.format(path=schema), path
        # The line is relative to the file: it must lead to the committed schema.
        assert (path.parent / first.split("=", 1)[1]).resolve() == REPO_ROOT / schema


def _first_yaml_block(doc: str) -> str:
    text = (REPO_ROOT / "docs" / doc).read_text(encoding="utf-8")
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_environment_file_example_in_the_docs_checks_clean(repo: Any, run: Any) -> None:
    example = _first_yaml_block("environment-files.md")
    repo.env("gstg.yml", example)
    result = run("check", "--today", "2026-12-01")
    assert (result.code, result.err) == (0, ""), result.out


def test_policy_set_example_in_the_docs_is_accepted(repo: Any, run: Any) -> None:
    from pdmpolicy.policies.examples import GSTG

    repo.env("gstg.yml", GSTG)
    repo.policies(_first_yaml_block("policy-set.md"))
    result = run("check", "--today", "2026-12-01")
    assert (result.code, result.err) == (0, ""), result.out
