"""The one-pass reader of environment and policy files reads as the two passes it replaced.

`load.parse_text` checks the safety limits on the parser's events while it builds the tree.
The reference here is the former reader, with ruamel.yaml's own round-trip scanner: a whole
event pass, then a round-trip load. Both must give the same tree (values, types, positions
of every key, value and item) or the same problems.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments import load
from tests.fuzz.conftest import FUZZ, RAN
from tests.fuzz.test_fuzz import YAML_PIECES, mutated, yaml_text
from tests.hostile.generated import VALID


def _two_passes(path: str, text: str) -> Any:
    """The reader as it was: an event pass for the limits, then a round-trip load."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = load._Constructor
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    try:
        check = load._EventCheck(path)
        for event in yaml.parse(text):
            check.see(event)
        return yaml.load(text)
    except MarkedYAMLError as exc:
        if type(exc).__name__ == "DuplicateKeyError":
            raise load._duplicate(path, text, exc) from None
        raise load.syntax_error(path, exc) from None
    except YAMLError as exc:
        raise InputError.at(Loc(path), f"cannot parse YAML: {exc}") from None
    except RecursionError:
        raise InputError.at(
            Loc(path), "the YAML is nested too deeply", "flatten the structure"
        ) from None


def _shape(value: Any) -> Any:
    """Everything the rest of pdmpolicy can see of a tree: types, values, positions."""
    lc = getattr(value, "lc", None)
    if isinstance(value, dict):
        return (
            type(value).__name__,
            (lc.line, lc.col),
            [(_shape(k), lc.key(k), lc.value(k), _shape(v)) for k, v in value.items()],
        )
    if isinstance(value, list):
        return (
            type(value).__name__,
            (lc.line, lc.col),
            [(lc.item(i), _shape(v)) for i, v in enumerate(value)],
        )
    return (type(value).__name__, repr(value))


def _outcome(read: Any, text: str) -> Any:
    try:
        return ("tree", _shape(read("f.yml", text)))
    except InputError as exc:
        return ("problems", [str(p) for p in exc.problems])


PIECES_AROUND_VALID = st.tuples(
    st.integers(0, len(VALID)), st.lists(st.sampled_from(YAML_PIECES), max_size=4)
).map(lambda cut: VALID[: cut[0]] + "".join(cut[1]) + VALID[cut[0] :])


@FUZZ
@given(
    st.one_of(yaml_text, mutated(), PIECES_AROUND_VALID).filter(
        lambda t: t.count("[") + t.count("{") < 60
    )
)
def test_one_pass_reads_as_two(text: str) -> None:
    RAN["test_one_pass_reads_as_two"] += 1
    assert _outcome(load.parse_text, text) == _outcome(_two_passes, text)


def test_one_pass_reads_the_valid_file_as_two() -> None:
    outcome = _outcome(load.parse_text, VALID)
    assert outcome[0] == "tree"
    assert outcome == _outcome(_two_passes, VALID)
