"""Reading a GitLab CI file as GitLab's YAML loader does, keeping where every value was written.

GitLab loads CI files with Ruby's Psych (YAML 1.1), not with a YAML 1.2 reader: a plain `no`
is false, `010` is 8, `1:30` is 5400, and a `<<` merge key overrides the keys written before
it (Psych merges in order, it does not let explicit keys win). This module builds its own
tree from ruamel.yaml's parse events so that those readings, and the positions of scalars,
are exactly what is needed:

- every node carries its 1-based location (`Loc`), so a value that arrives through an alias,
  a merge key or `!reference` still points at the line that wrote it;
- aliases are shared, not copied, and their expanded size is counted: a document whose
  aliases would expand it by more than `ALIAS_NODE_BUDGET` nodes is refused (alias bombs),
  as is nesting deeper than `MAX_DEPTH` (GitLab's own limit), a file over 1 MiB and one
  writing more than `MAX_NODES` values;
- `!reference [...]` becomes a `Reference` node, resolved later (`expand.py`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import (
    CONTROL_IN_VALUE,
    LinearScanner,
    decode_text,
    display_path,
    read_limited,
)

MAX_BYTES = 1024 * 1024
"""Larger CI files are refused: GitLab's own limit is a few MiB, real files are far smaller."""
MAX_DEPTH = 100
"""GitLab refuses YAML nested deeper than this (`max_yaml_depth`)."""
MAX_NODES = 50_000
"""Values (scalars, mappings, lists) one CI file may write, aliases counted once. The largest
CI files a team has are generated ones: the parent pipeline pdmpolicy renders writes 21
values per environment (a trigger job), 42,001 for 2,000 environments (536 KiB); this bound
admits 2,380 environments, and `MAX_BYTES` stops such a file at about 3,900. Reading 50,000
values costs about half a second of processor time, so a file refused here is refused in
that time (docs/security.md). What aliases add beyond the text is bounded by
`ALIAS_NODE_BUDGET`."""
ALIAS_NODE_BUDGET = 100_000
"""How many nodes aliases and `!reference` may add to a document when expanded."""

ScalarValue = str | bool | int | float | None


@dataclass(frozen=True, eq=False)
class Scalar:
    """A scalar as GitLab reads it: `value` typed by YAML 1.1, `text` as written."""

    value: ScalarValue
    text: str
    loc: Loc

    @property
    def size(self) -> int:
        return 1


@dataclass(frozen=True, eq=False)
class Entry:
    key: str
    key_loc: Loc
    value: Node


@dataclass(frozen=True, eq=False)
class Map:
    entries: tuple[Entry, ...]
    loc: Loc
    size: int = 1

    @cached_property
    def _index(self) -> dict[str, Entry]:
        return {entry.key: entry for entry in self.entries}

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def entry(self, key: str) -> Entry | None:
        return self._index.get(key)

    def get(self, key: str) -> Node | None:
        """The value of `key`; None when absent *or* null (GitLab treats both as unset)."""
        entry = self._index.get(key)
        if entry is None or is_null(entry.value):
            return None
        return entry.value

    def __iter__(self) -> Iterator[str]:
        return (entry.key for entry in self.entries)


@dataclass(frozen=True, eq=False)
class Seq:
    items: tuple[Node, ...]
    loc: Loc
    size: int = 1


@dataclass(frozen=True, eq=False)
class Reference:
    """`!reference [.job, key, ...]`, before resolution."""

    path: tuple[str, ...]
    loc: Loc

    @property
    def size(self) -> int:
        return 1


Node = Scalar | Map | Seq | Reference


def is_null(node: Node) -> bool:
    return isinstance(node, Scalar) and node.value is None


def describe(node: Node) -> str:
    """What a node is, for messages: 'a list', 'the boolean false', ..."""
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    if isinstance(node, Reference):
        return "a !reference"
    value = node.value
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} (written {node.text!r})"
    if isinstance(value, int | float):
        return f"the number {ruby_text(value)} (written {node.text!r})"
    return f"the string {node.text!r}"


def ruby_text(value: ScalarValue) -> str:
    """A scalar as GitLab turns it into text (Ruby's `to_s`): true -> 'true', 1.0 -> '1.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            sign = "-" if exponent.startswith("-") else "+"
            return f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
        return text
    return value


# --- YAML 1.1 scalars, as Psych's ScalarScanner#tokenize reads plain scalars -------------

_STRINGISH = re.compile(r"^[^\d.:-]?(?:[^\W\d]|[\s!@#$%^&*(){}<>|/\\~;=])+")
_TIME = re.compile(
    r"^-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?"
    r"(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?$"
)
_DATE = re.compile(r"^\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)$")
_SEXAGESIMAL_INT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}$")
_SEXAGESIMAL_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?$")
_INTEGER = re.compile(
    r"^(?:[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)"
    r"|[-+]?0x[0-9a-fA-F_,]+)$"
)


# Compiled once: `resolve_plain` runs on every plain scalar of every file read.
_NOT_A_WORD_START = re.compile(r"^[^ytonf~]", re.IGNORECASE)
_NULL = re.compile(r"null", re.IGNORECASE)
_TRUE = re.compile(r"yes|true|on", re.IGNORECASE)
_FALSE = re.compile(r"no|false|off", re.IGNORECASE)
_INF = re.compile(r"\+?\.inf", re.IGNORECASE)
_MINUS_INF = re.compile(r"-\.inf", re.IGNORECASE)
_NAN = re.compile(r"\.nan", re.IGNORECASE)


def _ruby_to_i(text: str) -> int:
    match = re.match(r"^[-+]?[0-9_]*", text)
    digits = match.group(0).replace("_", "") if match else ""
    return int(digits) if digits not in ("", "+", "-") else 0


def _parse_int(text: str) -> int:
    cleaned = text.replace(",", "").replace("_", "")
    sign = -1 if cleaned.startswith("-") else 1
    body = cleaned.lstrip("+-")
    if body.startswith("0b"):
        return sign * int(body[2:], 2)
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body[1:], 8)
    return sign * int(body)


def resolve_plain(text: str) -> ScalarValue:
    """The value of a plain (unquoted, untagged) scalar under GitLab's YAML 1.1 reading."""
    if text == "":
        return None
    if _STRINGISH.match(text) or "\n" in text:
        if len(text) > 5 or _NOT_A_WORD_START.match(text):
            return text
        if text == "~" or _NULL.fullmatch(text):
            return None
        if _TRUE.fullmatch(text):
            return True
        if _FALSE.fullmatch(text):
            return False
        return text
    if _TIME.match(text) or _DATE.match(text):
        return text  # Psych builds Time/Date objects; their text is what matters here
    if _INF.fullmatch(text):
        return math.inf
    if _MINUS_INF.fullmatch(text):
        return -math.inf
    if _NAN.fullmatch(text):
        return math.nan
    if text.startswith(":") and len(text) > 1:
        return text  # a Ruby symbol; kept as written
    if _SEXAGESIMAL_INT.match(text):
        # Psych's base-60 reading weighs the parts 60**2, 60**1, 60**0 from the left,
        # whatever their number: `1:30` is 5400.
        parts = text.split(":")
        total: int = sum(_ruby_to_i(part) * 60 ** abs(i - 2) for i, part in enumerate(parts))
        return total
    if _SEXAGESIMAL_FLOAT.match(text):
        parts = text.split(":")
        return float(sum(_ruby_float(part) * 60 ** abs(i - 2) for i, part in enumerate(parts)))
    if _FLOAT.match(text):
        if re.fullmatch(r"[-+]?\.", text):
            return text
        cleaned = re.sub(r"\.([Ee]|$)", r"\1", text.replace(",", "").replace("_", ""))
        try:
            return float(cleaned)
        except ValueError:
            return text
    if _INTEGER.match(text):
        try:
            return _parse_int(text)
        except ValueError:
            return text
    return text


_resolve_remembered = lru_cache(maxsize=4096)(resolve_plain)
"""Plain scalars repeat (every key of every job, `when: manual`, `true`): each distinct
text is resolved once per process. The values are immutable."""


def reads_as_text(text: str) -> bool:
    """Whether GitLab reads `text`, written as a plain scalar, as this very string: not a
    boolean, number, null, date, time or Ruby symbol (`no`, `On`, `1:30`, `2026-1-1`, `:a`)."""
    return (
        resolve_plain(text) == text
        and not _TIME.match(text)
        and not _DATE.match(text)
        and not (text.startswith(":") and len(text) > 1)
    )


def _ruby_float(text: str) -> float:
    match = re.match(r"^[-+]?[0-9_]*(?:\.[0-9_]*)?", text)
    digits = match.group(0).replace("_", "") if match else ""
    try:
        return float(digits)
    except ValueError:
        return 0.0


_STR_TAG = "tag:yaml.org,2002:str"
_TYPED_TAGS = {
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": bool,
    "tag:yaml.org,2002:null": type(None),
}
_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
REFERENCE_TAG = "!reference"


# --- Building the tree from parse events -------------------------------------------------


def _loc(path: str, event: Event) -> Loc:
    mark = event.start_mark
    return Loc(path, mark.line + 1, mark.column + 1)


@dataclass
class _Frame:
    """A mapping or sequence under construction."""

    kind: str  # "map" | "seq"
    loc: Loc
    anchor: str | None
    tag: str | None
    items: list[Node] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)
    key: Scalar | None = None
    """A mapping's key waiting for its value."""
    key_is_merge: bool = False
    explicit: set[str] = field(default_factory=set)
    """Keys written in this mapping, as opposed to brought in by `<<`."""
    size: int = 1


_VALUE_EVENTS = frozenset({"ScalarEvent", "AliasEvent", "MappingStartEvent", "SequenceStartEvent"})
"""The events that write a value (counted against `MAX_NODES`)."""


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.anchors: dict[str, Node] = {}
        self.open_anchors: set[str] = set()
        self.budget = ALIAS_NODE_BUDGET
        self.nodes = 0
        self.stack: list[_Frame] = []
        self.documents: list[Node | None] = []
        self.duplicates: list[tuple[Loc, str]] = []
        """Duplicated keys, read as Psych reads them (the last one wins): (where, message)."""
        self.root: Node | None = None

    def error(self, loc: Loc, message: str, hint: str = "") -> InputError:
        return InputError.at(loc, message, hint)

    def feed(self, event: Any) -> None:
        # Dispatch on the class name: ruamel.yaml's and libyaml's (PyYAML) events share it.
        kind = type(event).__name__
        if kind in _VALUE_EVENTS:
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise self.error(
                    _loc(self.path, event),
                    f"the file writes more than {MAX_NODES} values",
                    "a CI file this large is not something pdmpolicy can check",
                )
        if kind == "ScalarEvent":  # most events are scalars: tested first
            node = self._scalar(event)
            self._register(event.anchor, node)
            self._add(node, node.loc)
        elif kind == "DocumentStartEvent":
            self.root = None
            self.anchors = {}
        elif kind == "DocumentEndEvent":
            self.documents.append(self.root)
        elif kind == "AliasEvent":
            self._alias(event)
        elif kind in ("MappingStartEvent", "SequenceStartEvent"):
            self._open(event)
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            self._close()

    def _scalar(self, event: ScalarEvent) -> Scalar:
        loc = _loc(self.path, event)
        text = str(event.value)
        bad = CONTROL_IN_VALUE.search(text)
        if bad:  # only a quoted scalar's escapes can write one: the file itself was checked
            raise self.error(
                loc,
                f"control character U+{ord(bad.group()):04X} in this value",
                "pdmpolicy refuses YAML escapes such as \\e, \\r or \\0: they would reach "
                "terminals and reports",
            )
        tag = event.tag
        plain = not event.style  # None (ruamel.yaml) or "" (libyaml) for a plain scalar
        if tag is None or tag == "!":
            value: ScalarValue = _resolve_remembered(text) if plain and tag is None else text
            return Scalar(value, text, loc)
        if tag == _STR_TAG:
            return Scalar(text, text, loc)
        if tag in _TYPED_TAGS:
            value = resolve_plain(text)
            wanted = _TYPED_TAGS[tag]
            if type(value) is wanted or (wanted is float and isinstance(value, int)):
                return Scalar(float(value) if wanted is float else value, text, loc)  # type: ignore[arg-type]
            raise self.error(loc, f"'{text}' is not a valid {tag.rsplit(':', 1)[-1]}")
        if tag == REFERENCE_TAG:
            raise self.error(
                loc, "!reference needs a list: !reference [.job, key]", "write the path as a list"
            )
        raise self.error(
            loc,
            f"unknown YAML tag '{tag}'",
            "GitLab's loader accepts only !reference and the standard tags",
        )

    def _alias(self, event: AliasEvent) -> None:
        loc = _loc(self.path, event)
        anchor = str(event.anchor)
        if anchor in self.open_anchors:
            raise self.error(
                loc,
                f"YAML alias '*{anchor}' refers to the node that contains it",
                "a recursive structure cannot be a CI configuration",
            )
        target = self.anchors.get(anchor)
        if target is None:
            raise self.error(loc, f"YAML alias '*{anchor}' has no anchor '&{anchor}' before it")
        self.charge(target.size, loc)
        self._add(target, loc)

    def charge(self, size: int, loc: Loc) -> None:
        """Count `size` nodes of expansion against the alias budget."""
        self.budget -= size
        if self.budget < 0:
            raise self.error(
                loc,
                f"YAML aliases expand this document by more than {ALIAS_NODE_BUDGET} nodes",
                "an alias bomb? reuse smaller pieces, or write the values out",
            )

    def _open(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        loc = _loc(self.path, event)
        if len(self.stack) >= MAX_DEPTH:
            raise self.error(
                loc, f"the YAML is nested more than {MAX_DEPTH} levels deep", "flatten it"
            )
        tag = event.tag
        is_map = type(event).__name__ == "MappingStartEvent"
        if tag not in _COLLECTION_TAGS and not (tag == REFERENCE_TAG and not is_map):
            raise self.error(
                loc,
                f"unknown YAML tag '{tag}'",
                "GitLab's loader accepts only !reference and the standard tags",
            )
        if event.anchor is not None:
            self.open_anchors.add(str(event.anchor))
        self.stack.append(_Frame("map" if is_map else "seq", loc, event.anchor, tag))

    def _close(self) -> None:
        frame = self.stack.pop()
        node: Node
        if frame.kind == "map":
            node = Map(tuple(frame.entries.values()), frame.loc, frame.size)
        elif frame.tag == REFERENCE_TAG:
            node = self._reference(frame)
        else:
            node = Seq(tuple(frame.items), frame.loc, frame.size)
        if frame.anchor is not None:
            self.open_anchors.discard(str(frame.anchor))
        self._register(frame.anchor, node)
        self._add(node, frame.loc)

    def _reference(self, frame: _Frame) -> Reference:
        path = []
        for item in frame.items:
            if not isinstance(item, Scalar) or not isinstance(item.value, str):
                where = item.loc if isinstance(item, Scalar | Map | Seq | Reference) else frame.loc
                raise self.error(
                    where,
                    f"!reference path elements are names; found {describe(item)}",
                    "write !reference [.job, key, ...]",
                )
            path.append(item.value)
        if not path:
            raise self.error(
                frame.loc, "!reference [] names nothing", "write !reference [.job, key]"
            )
        return Reference(tuple(path), frame.loc)

    def _register(self, anchor: Any, node: Node) -> None:
        if anchor is not None:
            self.anchors[str(anchor)] = node

    def _add(self, node: Node, loc: Loc) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        if frame.kind == "seq":
            frame.items.append(node)
            frame.size += node.size
            return
        if frame.key is None:
            frame.key = self._key(node, loc)
            frame.key_is_merge = frame.key.text == "<<" and isinstance(frame.key.value, str)
            return
        key = frame.key
        frame.key = None
        if isinstance(node, Scalar) and node.value is None and node.text == "":
            node = Scalar(None, "", key.loc)  # an empty value sits where its key is
        if frame.key_is_merge:
            self._merge(frame, node, key.loc)
            return
        previous = frame.entries.get(key.text)
        if key.text in frame.explicit and previous is not None:
            # Psych keeps the last value of a repeated key (and GitLab accepts the file):
            # read it that way, and say so.
            first = previous.key_loc.line
            self.duplicates.append(
                (key.loc, f"duplicate key '{key.text}' (first at line {first}): the last one wins")
            )
        if previous is not None:  # written or brought in by `<<` earlier: this one wins
            frame.size -= previous.value.size
        frame.explicit.add(key.text)
        frame.entries[key.text] = Entry(key.text, key.loc, node)
        frame.size += node.size

    def _key(self, node: Node, loc: Loc) -> Scalar:
        if not isinstance(node, Scalar):
            raise self.error(loc, f"a mapping key must be a name; found {describe(node)}")
        if not isinstance(node.value, str):
            raise self.error(
                node.loc,
                f"key '{node.text}' is read by GitLab (YAML 1.1) as {describe(node)}",
                "quote it to make it a name",
            )
        return node

    def _merge(self, frame: _Frame, node: Node, loc: Loc) -> None:
        """`<<`: Psych merges in order, so merged keys replace those written before `<<`."""
        if isinstance(node, Map):
            sources = [node]
        elif isinstance(node, Seq) and all(isinstance(item, Map) for item in node.items):
            # Earlier mappings in the list win over later ones.
            sources = [item for item in reversed(node.items) if isinstance(item, Map)]
        else:
            raise self.error(
                loc,
                f"the merge key '<<' needs a mapping or a list of mappings; found {describe(node)}",
                "merge an anchored mapping: <<: *name",
            )
        merged: dict[str, Entry] = {}
        for source in sources:
            for entry in source.entries:
                merged[entry.key] = entry
        for key, entry in merged.items():
            previous = frame.entries.get(key)
            if previous is not None:
                frame.size -= previous.value.size
            frame.entries[key] = entry
            frame.size += entry.value.size


def _libyaml() -> Any:
    """PyYAML's binding of libyaml, when it is built with it; else None.

    GitLab reads CI files with Ruby's Psych, which is libyaml: the same parser gives the
    same events (YAML 1.1 scanning included), some twenty times faster than ruamel.yaml's
    pure-Python scanner, which is the fallback."""
    try:
        import yaml as pyyaml  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    return pyyaml if getattr(pyyaml, "__with_libyaml__", False) else None


_LIBYAML = _libyaml()


class _TooDeepForLibyaml(Exception):
    """libyaml gave up on nesting before `_Builder` saw `MAX_DEPTH` levels."""


def _feed_libyaml(builder: _Builder, path: str, text: str) -> None:
    # `yaml.parse`'s own loop, without its generator between libyaml and the builder.
    loader = _LIBYAML.CSafeLoader(text)
    feed = builder.feed
    try:
        while loader.check_event():
            feed(loader.get_event())
    except _LIBYAML.MarkedYAMLError as exc:
        if "nesting depth" in (exc.problem or ""):
            # Newer libyaml stops at its own depth limit (1000) while scanning ahead, before
            # the builder has seen the event past MAX_DEPTH; the pure parser reports the
            # place of the limit GitLab enforces.
            raise _TooDeepForLibyaml from None
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(path, mark.line + 1, mark.column + 1) if mark is not None else Loc(path)
        problem = (exc.problem or str(exc)).strip().replace("\n", " ")
        raise InputError.at(loc, problem, "this is not valid YAML") from None
    except _LIBYAML.YAMLError as exc:
        raise InputError.at(Loc(path), f"cannot parse YAML: {exc}") from None
    finally:
        loader.dispose()


def parse_documents(
    path: str, text: str, duplicates: list[tuple[Loc, str]] | None = None
) -> list[Node | None]:
    """Every YAML document in `text`, as trees of located nodes; raises InputError.

    Duplicated keys are read as GitLab reads them (the last wins) and, when `duplicates` is
    given, listed there."""
    builder = _Builder(path)
    if _LIBYAML is not None:
        try:
            _feed_libyaml(builder, path, text)
        except _TooDeepForLibyaml:
            builder = _Builder(path)
        else:
            if duplicates is not None:
                duplicates.extend(builder.duplicates)
            return builder.documents
    # The safe parser: the round-trip one also gathers comments, three times slower.
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = LinearScanner
    try:
        for event in yaml.parse(text):
            builder.feed(event)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(path, mark.line + 1, mark.column + 1) if mark is not None else Loc(path)
        problem = (exc.problem or str(exc)).strip().replace("\n", " ")
        raise InputError.at(loc, problem, "this is not valid YAML") from None
    except YAMLError as exc:
        raise InputError.at(Loc(path), f"cannot parse YAML: {exc}") from None
    if duplicates is not None:
        duplicates.extend(builder.duplicates)
    return builder.documents


def read_documents(
    file: Path, root: Path, duplicates: list[tuple[Loc, str]] | None = None
) -> tuple[str, list[Node | None]]:
    """Read one CI file (at most 1 MiB, UTF-8): its display path and its documents."""
    path = display_path(file, root)
    raw = read_limited(
        file, path, MAX_BYTES, "a CI file this large is not something pdmpolicy can check"
    )
    return path, parse_documents(path, decode_text(path, raw), duplicates)
