"""The quick yes of `schema._certainly_valid` is cerberus's yes.

`validate_shape` asks cerberus only when the quick walk of the same rules does not find a
file valid. A quick yes where cerberus finds an error would let a bad file through, so the
two are held equal here, on trees shaped like environment files and on mutated files read
by the real reader (ruamel.yaml's own string, mapping and number types).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pdmpolicy.core.errors import InputError
from pdmpolicy.environments import schema
from pdmpolicy.environments.load import parse_text
from tests.fuzz.conftest import FUZZ, RAN
from tests.fuzz.test_fuzz import environment_trees, mutated
from tests.hostile.generated import VALID


def _cerberus_valid(tree: Any) -> bool:
    return bool(schema._Validator(schema.ENVIRONMENT_SCHEMA).validate(dict(tree)))


@FUZZ
@given(st.sampled_from(("gstg", "gprd", "gstg-cny")).flatmap(environment_trees))
def test_quick_yes_is_cerberus_yes_on_trees(tree: dict[str, Any]) -> None:
    RAN["test_quick_yes_is_cerberus_yes_on_trees"] += 1
    assert schema._certainly_valid(schema.ENVIRONMENT_SCHEMA, tree) == _cerberus_valid(tree)


@FUZZ
@given(mutated((VALID,)))
def test_quick_yes_is_cerberus_yes_on_read_files(text: str) -> None:
    RAN["test_quick_yes_is_cerberus_yes_on_read_files"] += 1
    try:
        tree = parse_text("f.yml", text)
    except InputError:
        return
    if not isinstance(tree, dict):
        return
    assert schema._certainly_valid(schema.ENVIRONMENT_SCHEMA, tree) == _cerberus_valid(tree)


def test_the_valid_file_takes_the_quick_path() -> None:
    tree = parse_text("f.yml", VALID)
    assert schema._certainly_valid(schema.ENVIRONMENT_SCHEMA, tree)
    broken = dict(tree, rollout={"step": "vm", "since": "2026-13-01"})
    assert not schema._certainly_valid(schema.ENVIRONMENT_SCHEMA, broken)
    assert not _cerberus_valid(broken)


def test_the_quick_walk_reads_types_as_cerberus() -> None:
    mapping = schema._Validator.types_mapping
    for kind, (included, excluded) in schema._TYPES.items():
        assert set(mapping[kind].included_types) == set(included), kind
        assert set(mapping[kind].excluded_types) == set(excluded), kind


def test_every_check_with_of_the_schema_is_read_by_the_quick_walk() -> None:
    def checks(rules: Any) -> set[str]:
        found = set()
        if isinstance(rules, dict):
            for key, value in rules.items():
                if key == "check_with":
                    found.add(value)
                else:
                    found |= checks(value)
        return found

    assert checks(schema.ENVIRONMENT_SCHEMA) <= set(schema._CHECKS)
    for name in schema._CHECKS:
        assert hasattr(schema._Validator, f"_check_with_{name}")
