"""The rendered files' writer gives ruamel.yaml's bytes, and is what rendering uses.

`render.dump_yaml` lays the documents out itself and asks ruamel.yaml only how to quote a
scalar that is not plain text; `render.ruamel_dump` is ruamel.yaml's whole dump, the
reference. Both are held equal on hostile values (YAML syntax, YAML 1.1 literals, shell
syntax, control and non-ASCII characters, long lines, repeated objects) and on every file
rendered from generated environment sets, and the committed ci/ is what they both write.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdmpolicy.environments.lower import parent
from pdmpolicy.environments.project import Project, load_project
from pdmpolicy.output.render import _Writer, dump_yaml, emit, rendered_files, ruamel_dump
from tests.conftest import REPO_ROOT
from tests.strategies import EnvSet, environment_sets, safe_environment_sets
from tests.test_output_safety import FRAGMENTS, TEXT
from tests.test_properties import examples, project_of, repository

WORDS = st.sampled_from(
    ("yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "~", "", " ", "0", "-1",
     "0o17", "0x1F", "1_000", "1e3", ".5", "+1", "1:30", "2026-12-05", "12:30:00", "=", "<<",
     ".inf", ".NaN", "a: b", "a:b", "a #b", "a#b", "- a", "-a", "? a", "?a", ":a", "a:", "...",
     "---x", "'a'", '"a"', "a'b", 'a"b', "@a", "%a", "`a`", "!a", "&a", "*a", "|", ">", "[a]",
     "{a}", "a,b", "a\\b", "a\tb", "a\nb", "a ", " a", "x" * 130, "y " * 600, "z" * 1200)
)  # fmt: skip
"""Strings each of which some branch of ruamel.yaml's quoting decides differently."""

SCALARS = st.one_of(
    TEXT,
    WORDS,
    st.lists(st.sampled_from(FRAGMENTS) | WORDS, max_size=5).map("".join),
    st.booleans(),
    st.integers(),
    st.none(),
    st.floats(),
)
KEYS = st.one_of(TEXT, WORDS, st.booleans(), st.integers(-3, 3), st.none())


def _documents() -> st.SearchStrategy[dict[Any, Any]]:
    values = st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
        max_leaves=12,
    )
    return st.dictionaries(KEYS, values, min_size=1, max_size=5)


@settings(max_examples=examples(4))
@given(_documents())
def test_the_writer_gives_ruamel_yaml_bytes_for_any_document(document: dict[Any, Any]) -> None:
    assert dump_yaml(document) == ruamel_dump(document)


@given(st.lists(SCALARS, min_size=1, max_size=4), st.data())
def test_repeated_objects_are_left_to_ruamel_yaml(items: list[Any], data: st.DataObject) -> None:
    """ruamel.yaml writes an anchor and an alias for an object met twice."""
    shared = data.draw(st.sampled_from([items, {"k": items}, [], {}]))
    document = {"a": shared, "b": [shared]}
    assert _Writer().document(document) is None
    assert dump_yaml(document) == ruamel_dump(document)


def _written_by_both(files: dict[str, str], project: Project) -> None:
    """Each rendered file is the writer's own output (no document fell back to ruamel.yaml
    whole) and the bytes ruamel.yaml writes for the same document."""
    pipelines = [view.pipeline for view in project.views]
    pipelines.append(parent(list(project.environments)))
    document = _Writer.document
    for pipeline in pipelines:
        written: list[str | None] = []

        def spy(writer: _Writer, value: Any, written: list[str | None] = written) -> str | None:
            written.append(document(writer, value))
            return written[-1]

        with patch.object(_Writer, "document", spy):
            fast = emit(pipeline)
        assert written and None not in written
        with patch("pdmpolicy.output.render.dump_yaml", ruamel_dump):
            assert emit(pipeline) == fast
        assert files[pipeline.path] == fast


@settings(max_examples=examples(0.2))
@given(st.one_of(safe_environment_sets(), environment_sets()))
def test_rendered_files_are_ruamel_yaml_bytes(env_set: EnvSet) -> None:
    with repository(env_set) as root:
        project = project_of(root)
        _written_by_both(rendered_files(project), project)


def test_the_committed_ci_files_are_what_both_write() -> None:
    project = load_project(REPO_ROOT, REPO_ROOT / "environments", REPO_ROOT / "policies")
    files = rendered_files(project)
    for path, text in files.items():
        assert (REPO_ROOT / path).read_text(encoding="utf-8") == text
    _written_by_both(files, project)


@pytest.mark.parametrize(
    ("value", "written"),
    [("no", "'no'"), ("a: b", "'a: b'"), ("it's", "it's"), ("'a'", "\"'a'\""), ("", "''"),
     ("a\nb", '"a\\nb"'), ("\x1f", '"\\x1F"'), ("1:30", "'1:30'"), ("0o17", "'0o17'"),
     ("#x", "'#x'"), ("x #y", "'x #y'"), ("- a", "'- a'"), ("été", "été"), ("y ", "'y '"),
     ('$DEPLOY_ENVIRONMENT == "gstg"', '$DEPLOY_ENVIRONMENT == "gstg"')],
)  # fmt: skip
def test_hostile_values_are_quoted_as_ruamel_yaml_quotes_them(value: str, written: str) -> None:
    document = {"variables": {"A": value}, "script": [value]}
    assert dump_yaml(document) == ruamel_dump(document)
    assert dump_yaml(document) == f"variables:\n  A: {written}\nscript:\n  - {written}\n"
