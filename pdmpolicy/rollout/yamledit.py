"""Editing a ruamel.yaml round-trip tree without losing comments.

ruamel.yaml keeps a comment that stands on its own line before a key in the end-of-line
comment slot of the last value above it (or, for the first key of a mapping, in the
parent). Deleting or inserting a key naively would drop the comments below the deleted
entry, or put an inserted key under the comment that introduced the next one. These helpers
move those "following" comment lines so that every comment stays before the entry it
precedes; comments written directly above a deleted entry go with it.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

Collection = CommentedMap | CommentedSeq


class _Representer(RoundTripRepresenter):
    """Writes null as `null` (ruamel.yaml would leave the value empty)."""


def _null(representer: RoundTripRepresenter, data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(type(None), _null)

LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0), (2, 4, 4))
"""(mapping, sequence, offset) indentations tried, most common first: the one that writes
the unchanged file back byte for byte is the one the file was written in."""


def yaml_for(layout: tuple[int, int, int]) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = layout
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def load(text: str) -> tuple[Any, YAML, bool]:
    """The tree, the YAML instance that writes it, and whether that instance writes the
    unchanged tree back byte for byte (else the edit may reformat untouched lines)."""
    for layout in LAYOUTS:
        yaml = yaml_for(layout)
        data = yaml.load(text)
        if dump(yaml, data) == text:
            return data, yaml, True
    yaml = yaml_for(LAYOUTS[0])
    return yaml.load(text), yaml, False


def dump(yaml: YAML, data: Any) -> str:
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def quoted(text: str) -> DoubleQuotedScalarString:
    value: DoubleQuotedScalarString = DoubleQuotedScalarString(text)
    return value


def flow_list(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def block_map(items: dict[str, Any]) -> CommentedMap:
    mapping = CommentedMap()
    for key, value in items.items():
        mapping[key] = value
    return mapping


def _is_block(node: Any) -> bool:
    if not isinstance(node, CommentedMap | CommentedSeq):
        return False
    return len(node) > 0 and not node.fa.flow_style()


def _slot(node: Any) -> tuple[Collection, Any, int] | None:
    """The comment slot at the very end of `node`: (collection, key or index, position)."""
    if not _is_block(node):
        return None
    if isinstance(node, CommentedMap):
        key = list(node)[-1]
        return _slot(node[key]) or (node, key, 2)
    index = len(node) - 1
    return _slot(node[index]) or (node, index, 0)


def _entry_slot(mapping: CommentedMap, key: Any) -> tuple[Collection, Any, int]:
    """The comment slot at the end of one entry of a block mapping."""
    return _slot(mapping[key]) or (mapping, key, 2)


def _token(slot: tuple[Collection, Any, int]) -> CommentToken | None:
    node, key, position = slot
    entry = node.ca.items.get(key)
    if not entry or len(entry) <= position:
        return None
    token: CommentToken | None = entry[position]
    return token


def take_following(slot: tuple[Collection, Any, int] | None) -> str:
    """Remove and return the whole comment lines stored after the end-of-line comment."""
    if slot is None:
        return ""
    token = _token(slot)
    if token is None:
        return ""
    eol, _, rest = token.value.partition("\n")
    node, key, position = slot
    if eol.strip():
        token.value = eol + "\n"
    else:
        node.ca.items[key][position] = None
    return rest


def give_following(slot: tuple[Collection, Any, int] | None, text: str) -> None:
    """Append whole comment lines after the end of `slot`."""
    if not text or slot is None:
        return
    node, key, position = slot
    token = _token(slot)
    if token is not None:
        token.value = token.value.rstrip("\n") + "\n" + text
        return
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    while len(entry) <= position:
        entry.append(None)
    entry[position] = CommentToken("\n" + text, CommentMark(0), None)


def _without_last_block(text: str) -> str:
    """`text` (comment lines) without the block of comment lines at its end that no blank
    line separates from what follows: the comment written directly above an entry."""
    lines = text.splitlines(keepends=True)
    while lines and lines[-1].strip():
        lines.pop()
    return "".join(lines)


def delete(mapping: CommentedMap, key: Any) -> None:
    """Delete an entry of a block mapping with the comment written directly above it,
    keeping every comment line that followed it (it introduces the next entry)."""
    keys = list(mapping)
    position = keys.index(key)
    after = take_following(_entry_slot(mapping, key))
    previous = keys[position - 1] if position > 0 else None
    if previous is not None:
        slot = _entry_slot(mapping, previous)
        kept = _without_last_block(take_following(slot))
        give_following(slot, kept + after)
    del mapping[key]
    if previous is None and after and position < len(keys) - 1:
        following = keys[position + 1]
        entry = mapping.ca.items.setdefault(following, [None, None, None, None])
        entry[1] = [CommentToken(after, CommentMark(0), None), *(entry[1] or [])]
    elif previous is None and after:
        # The last entry went too: the lines follow the mapping's new end, if any.
        give_following(_slot(mapping), after)


def insert(mapping: CommentedMap, position: int, key: Any, value: Any) -> None:
    """Insert an entry into a block mapping at `position`, after the comment lines that
    followed the entry before it (those introduce the entry that comes next)."""
    keys = list(mapping)
    previous = keys[position - 1] if position > 0 else None
    moved = take_following(_entry_slot(mapping, previous)) if previous is not None else ""
    mapping.insert(position, key, value)
    give_following(_entry_slot(mapping, key), moved)


def put(mapping: CommentedMap, key: Any, value: Any, after: Any = None) -> None:
    """Set `key` (kept in place when it exists; else inserted after `after`, or last)."""
    if key in mapping:
        old = mapping[key]
        if isinstance(old, CommentedMap | CommentedSeq) or isinstance(
            value, CommentedMap | CommentedSeq
        ):
            moved = take_following(_slot(old))
            mapping[key] = value
            give_following(_entry_slot(mapping, key), moved)
        else:
            mapping[key] = value
        return
    keys = list(mapping)
    position = keys.index(after) + 1 if after in mapping else len(keys)
    insert(mapping, position, key, value)


def drop(mapping: CommentedMap, key: Any) -> None:
    if key in mapping:
        delete(mapping, key)


def rename(mapping: CommentedMap, old: Any, new: Any) -> None:
    """Rename a key in place: its value, its position and its comments stay."""
    position = list(mapping).index(old)
    comments = mapping.ca.items.pop(old, None)
    value = mapping.pop(old)
    mapping.insert(position, new, value)
    if comments is not None:
        mapping.ca.items[new] = comments
