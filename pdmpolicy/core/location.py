"""Source locations: where in which file a value was written.

ruamel.yaml counts lines and columns from 0; everything the user sees counts from 1.
The conversion happens here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdmpolicy.core.records import record


@record(order=True)
class Loc:
    """A 1-based position in a file; `path` is relative to the repository root."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


def _from_zero(path: str, pos: tuple[int, int] | None) -> Loc:
    if pos is None:
        return Loc(path)
    return Loc(path, pos[0] + 1, pos[1] + 1)


def node_loc(path: str, node: Any) -> Loc:
    """Where a mapping or sequence node starts (scalars carry no position of their own)."""
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return Loc(path)
    return Loc(path, lc.line + 1, lc.col + 1)


def key_loc(path: str, mapping: Any, key: Any) -> Loc:
    """Where `key` is written in `mapping`; falls back to the mapping itself."""
    try:
        return _from_zero(path, mapping.lc.key(key))
    except (AttributeError, KeyError, TypeError):
        return node_loc(path, mapping)


def value_loc(path: str, mapping: Any, key: Any) -> Loc:
    """Where the value of `key` is written in `mapping`.

    A key written with no value (`key:`) has none: ruamel.yaml then reports where the next
    token starts, often on a later line, so the key's own position is used instead.
    """
    try:
        pos = mapping.lc.value(key)
        if mapping[key] is None and pos[0] != mapping.lc.key(key)[0]:
            return key_loc(path, mapping, key)
        return _from_zero(path, pos)
    except (AttributeError, KeyError, TypeError, IndexError):
        return key_loc(path, mapping, key)


def item_loc(path: str, sequence: Any, index: int) -> Loc:
    """Where item `index` of `sequence` is written."""
    try:
        return _from_zero(path, sequence.lc.item(index))
    except (AttributeError, KeyError, TypeError, IndexError):
        return node_loc(path, sequence)


def resolve(path: str, root: Any, document_path: tuple[Any, ...], *, key: bool = False) -> Loc:
    """Location of the value at `document_path` below `root` (or of its key, if `key`).

    Walks as deep as the document goes; a path into something that is not there (a missing
    required key) resolves to the deepest existing parent.
    """
    node: Any = root
    loc = node_loc(path, root)
    for step in document_path:
        if isinstance(node, Mapping) and step in node:
            loc = key_loc(path, node, step) if key else value_loc(path, node, step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            loc = item_loc(path, node, step)
            node = node[step]
        else:
            break
    return loc
