"""docs/policies.md is generated, current, and every policy documents every section."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pdmpolicy.core import names
from pdmpolicy.docgen.policydocs import all_policies_markdown, policy_markdown
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG
from tests.conftest import REPO_ROOT, Repo, Result

DOCS = REPO_ROOT / "docs" / "policies.md"
REGENERATE = "regenerate it: python -m pdmpolicy.docgen.policydocs > docs/policies.md"


def test_docs_are_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == all_policies_markdown(), REGENERATE


def test_docs_list_and_document_every_policy() -> None:
    text = DOCS.read_text(encoding="utf-8")
    headings = re.findall(r"^## `([a-z0-9-]+)`$", text, flags=re.MULTILINE)
    assert headings == sorted(REGISTRY)
    for name in REGISTRY:
        assert f"| [`{name}`](#{name}) |" in text


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_documents_every_section(name: str) -> None:
    policy = REGISTRY[name]
    doc = policy.documentation
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", policy.name), "names are kebab-case"
    assert policy.summary.strip(), "summary"
    assert not policy.summary.rstrip().endswith("."), "the summary is a phrase, not a sentence"
    for section in ("what", "why", "fix"):
        assert getattr(doc, section).strip(), section
    for examples in (doc.failing_example, doc.fixed_example):
        assert examples, "examples hold at least one file"
        assert all(text.strip() for text in examples.values())
        assert all(file.endswith((".yml", ".yaml")) for file in examples)
    assert dict(doc.failing_example) != dict(doc.fixed_example)
    assert policy.default_severity in ("error", "warning", "off")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_markdown_has_the_fixed_sections_in_order(name: str) -> None:
    text = policy_markdown(REGISTRY[name])
    sections = re.findall(r"^### (.+)$", text, flags=re.MULTILINE)
    expected = ["What it checks", "Why it matters", "Failing example", "Fix"]
    assert sections[:4] == expected
    assert sections[4:] == (["Options"] if REGISTRY[name].options else [])
    assert text.count("```") % 2 == 0, "every code block is closed"
    assert REGISTRY[name].documentation.what in text
    for option in REGISTRY[name].options:
        assert f"| `{option.name}` | `{option.default}` |" in text


@pytest.mark.parametrize(
    ("name", "option"),
    [(name, option) for name in sorted(REGISTRY) for option in REGISTRY[name].options],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_option_is_documented_with_a_default_of_its_kind(name: str, option: Any) -> None:
    assert option.description.strip()
    if option.kind == "duration":
        assert names.parse_duration(option.default) is not None
    elif option.kind == "count":
        assert isinstance(option.default, int) and option.default >= 0
    else:
        assert option.kind == "text" and isinstance(option.default, str) and option.default


def test_fix_is_shown_as_the_edit_to_make() -> None:
    """Where the fixed example edits a failing file, the docs show the diff, not a copy."""
    text = policy_markdown(REGISTRY["pdm-no-auto-retry"])
    fix = text.split("### Fix", 1)[1]
    assert "```diff" in fix
    assert "\n-    retry: 1\n" in fix
    assert fix.count("```yaml") == 0


def test_configuration_example_in_the_docs_is_a_valid_policy_set(repo: Repo, run: Any) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert example.startswith("policies:")
    repo.env("gstg.yml", GSTG)
    repo.policies(example)
    result: Result = run("check", "--today", "2026-11-26")
    assert result.code == 0, result.err + result.out
