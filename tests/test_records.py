"""`record` behaves as `dataclass(frozen=True)`: the same values, equality, hash, text,
refusals and dataclass functions, on the same class bodies."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import pickle
from dataclasses import FrozenInstanceError, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record
from pdmpolicy.gitlab.pipeline import Variable


def _pair(body: dict[str, Any]) -> tuple[Any, Any]:
    """The same class body declared both ways."""
    made = []
    for decorate in (dataclasses.dataclass(frozen=True), record):
        namespace = dict(body)
        namespace["__qualname__"] = "Sample"
        namespace["__module__"] = __name__
        made.append(decorate(type("Sample", (), namespace)))
    return made[0], made[1]


BODY: dict[str, Any] = {
    "__annotations__": {"name": "str", "count": "int", "tags": "tuple[str, ...]", "note": "str"},
    "count": 0,
    "tags": field(default_factory=tuple),
    "note": field(default="", compare=False, repr=False),
}
Frozen, Record = _pair(BODY)
VALUES = st.tuples(st.text(max_size=5), st.integers(-3, 3), st.lists(st.text(max_size=2)))


@given(VALUES, VALUES)
def test_equality_hash_and_text_are_the_frozen_dataclass(a: Any, b: Any) -> None:
    fa, fb = Frozen(a[0], a[1], tuple(a[2])), Frozen(b[0], b[1], tuple(b[2]))
    ra, rb = Record(a[0], a[1], tuple(a[2])), Record(b[0], b[1], tuple(b[2]))
    assert (ra == rb) == (fa == fb)
    assert hash(ra) == hash(fa)
    assert repr(ra) == repr(fa)
    assert ra != fa  # another class, as two dataclasses would be
    assert dataclasses.astuple(ra) == dataclasses.astuple(fa)


def test_a_field_left_out_of_comparison_is_left_out() -> None:
    assert Record("a", note="x") == Record("a", note="y")
    assert hash(Record("a", note="x")) == hash(Record("a", note="y"))
    assert "note" not in repr(Record("a", note="x"))


def test_fields_cannot_change() -> None:
    item = Record("a", 1)
    with pytest.raises(FrozenInstanceError):
        item.name = "b"
    with pytest.raises(FrozenInstanceError):
        item.other = 1
    with pytest.raises(FrozenInstanceError):
        del item.count
    assert item == Record("a", 1)


def test_dataclass_functions_copies_and_pickles_work() -> None:
    item = Record("a", 1, ("x",))
    assert dataclasses.is_dataclass(item)
    assert [f.name for f in dataclasses.fields(item)] == ["name", "count", "tags", "note"]
    changed = dataclasses.replace(item, count=2)
    assert changed == Record("a", 2, ("x",)) and item.count == 1
    assert copy.deepcopy(item) == item
    # pickling needs a class importable by name: a real record of the package
    variable = Variable("A", "1", Loc("ci.yml", 3, 5))
    assert pickle.loads(pickle.dumps(variable)) == variable  # noqa: S301 (our own bytes)
    with pytest.raises(FrozenInstanceError):
        pickle.loads(pickle.dumps(variable)).value = "2"  # noqa: S301


def test_post_init_may_set_derived_fields_as_in_a_frozen_dataclass() -> None:
    def __post_init__(self: Any) -> None:
        object.__setattr__(self, "size", len(self.name))

    body = {
        "__annotations__": {"name": "str", "size": "int"},
        "size": field(init=False, default=0),
        "__post_init__": __post_init__,
    }
    frozen, made = _pair(body)
    assert made("abc").size == frozen("abc").size == 3
    assert made("abc") == made("abc")


def test_methods_the_class_writes_itself_are_kept() -> None:
    def __repr__(self: Any) -> str:
        return "mine"

    def __hash__(self: Any) -> int:
        return 7

    body = {"__annotations__": {"name": "str"}, "__repr__": __repr__, "__hash__": __hash__}
    frozen, made = _pair(body)
    assert repr(made("a")) == repr(frozen("a")) == "mine"
    assert hash(made("a")) == hash(frozen("a")) == 7
    with pytest.raises(TypeError):
        record(type("Bad", (), {"__annotations__": {}, "__setattr__": lambda s, n, v: None}))


def _ordered_pair() -> tuple[Any, Any]:
    body = {"__annotations__": {"path": "str", "line": "int"}, "line": 1}
    made = []
    for decorate in (dataclasses.dataclass(frozen=True, order=True), record(order=True)):
        namespace = dict(body, __qualname__="Place", __module__=__name__)
        made.append(decorate(type("Place", (), namespace)))
    return made[0], made[1]


OrderedFrozen, OrderedRecord = _ordered_pair()


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3)), max_size=8))
def test_order_is_the_ordered_frozen_dataclass(places: list[tuple[str, int]]) -> None:
    frozen = sorted(OrderedFrozen(*p) for p in places)
    made = sorted(OrderedRecord(*p) for p in places)
    assert [dataclasses.astuple(p) for p in made] == [dataclasses.astuple(p) for p in frozen]
    for a, b in itertools.pairwise(made):
        assert (a <= b, a < b, a >= b, a > b) == (
            OrderedFrozen(a.path, a.line) <= OrderedFrozen(b.path, b.line),
            OrderedFrozen(a.path, a.line) < OrderedFrozen(b.path, b.line),
            OrderedFrozen(a.path, a.line) >= OrderedFrozen(b.path, b.line),
            OrderedFrozen(a.path, a.line) > OrderedFrozen(b.path, b.line),
        )
    with pytest.raises(TypeError):
        _ = OrderedRecord("a") < OrderedFrozen("a")
