"""`record`: a frozen dataclass that costs less to declare.

`dataclasses.dataclass(frozen=True)` writes and compiles six methods per class when its
module is imported (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`). For the value types on `check`'s path that was a quarter of the start-up
of a whole run. A `record` has the dataclass's `__init__` (the only method whose speed
matters per object) and shares the other five among all records, written once here: the
same equality, hash, representation and refusal to change a field as the frozen
dataclass, and still a dataclass (`fields`, `replace`, `asdict`, pickling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")

_COMPARED = "__record_compared__"
"""The fields `__eq__` and `__hash__` read, in declaration order (`compare=True`)."""
_SHOWN = "__record_shown__"
"""The fields `__repr__` shows (`repr=True`)."""


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, n) for n in self.__record_compared__)


def _eq(self: Any, other: Any) -> Any:
    return _values(self) == _values(other) if other.__class__ is self.__class__ else NotImplemented


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__record_shown__)
    return f"{self.__class__.__qualname__}({shown})"


def _lt(self: Any, other: Any) -> Any:
    return _values(self) < _values(other) if other.__class__ is self.__class__ else NotImplemented


def _le(self: Any, other: Any) -> Any:
    return _values(self) <= _values(other) if other.__class__ is self.__class__ else NotImplemented


def _gt(self: Any, other: Any) -> Any:
    return _values(self) > _values(other) if other.__class__ is self.__class__ else NotImplemented


def _ge(self: Any, other: Any) -> Any:
    return _values(self) >= _values(other) if other.__class__ is self.__class__ else NotImplemented


_ORDER = {"__lt__": _lt, "__le__": _le, "__gt__": _gt, "__ge__": _ge}


def _setattr(self: Any, name: str, value: Any) -> None:
    # The generated __init__ assigns each field once; after that, as a frozen dataclass,
    # nothing may be assigned.
    if name in self.__dataclass_fields__ and name not in self.__dict__:
        object.__setattr__(self, name, value)
        return
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, order: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T] | None = None, /, *, order: bool = False) -> Any:
    """Declare `cls` as `@dataclass(frozen=True)` would, or `@dataclass(frozen=True,
    order=True)` with `@record(order=True)` (see the module's docstring)."""
    if cls is None:
        return lambda made: _record(made, order)
    return _record(cls, order)


def _record(cls: type[T], order: bool) -> type[T]:
    body = cls.__dict__
    for name in ("__setattr__", "__delattr__", *(_ORDER if order else ())):
        if name in body:
            raise TypeError(f"cannot overwrite attribute {name} in class {cls.__name__}")
    explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
    made: Any = dataclasses.dataclass(cls, repr=False, eq=False)
    fields = dataclasses.fields(made)
    setattr(made, _COMPARED, tuple(f.name for f in fields if f.compare))
    setattr(made, _SHOWN, tuple(f.name for f in fields if f.repr))
    methods: dict[str, Callable[..., Any]] = {
        "__setattr__": _setattr,
        "__delattr__": _delattr,
        **(_ORDER if order else {}),
    }
    if "__repr__" not in body:
        methods["__repr__"] = _repr
    if "__eq__" not in body:
        methods["__eq__"] = _eq
    if not explicit_hash:
        methods["__hash__"] = _hash
    for name, method in methods.items():
        setattr(made, name, method)
    done: type[T] = made
    return done
