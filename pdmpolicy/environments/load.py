"""Reading YAML input files: bytes on disk to a round-trip tree with positions.

Every way a file can be unreadable ends here as an `InputError` with file:line:col;
nothing below this module sees raw bytes. Anchors, aliases, merge keys and tags are refused
in environment and policy files: they are not needed there, and refusing them closes alias
bombs, values smuggled in through merge keys, and tags that silently change a value's type.
So are values whose escapes write control characters, and files too large or too deep to
read in well under a second (docs/security.md).
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.scanner import RoundTripScanner, Scanner, ScannerError

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record

MAX_BYTES = 128 * 1024
"""Environment and policy files are a few kilobytes; anything past this is a mistake. The
limit also bounds the time spent reading one (ruamel.yaml reads about 200 KiB a second)."""
MAX_NODES = 5_000
"""Values (scalars, mappings, lists) one environment or policy file may hold: an
environment of ten jobs has about 200. Bounds the time a file can cost to well under a
second."""
MAX_DEPTH = 100
"""Nesting deeper than this is refused (GitLab's own limit); environment files nest five."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Refused:
    """A class of refused characters, searched for like a compiled pattern.

    Compiling a class that spans all of Unicode costs some 30 ms, a tenth of a whole `check`
    on the shipped files; text that is all ASCII, nearly every file, is searched with the
    same class cut to ASCII, and the whole one is compiled the first time it is needed.
    """

    def __init__(self, allowed: str) -> None:
        self.pattern = f"[^{allowed}]"
        ascii_allowed = allowed.split("\xa0", 1)[0]
        self._ascii = re.compile(f"[^{ascii_allowed}]")

    @cached_property
    def _whole(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def search(self, text: str) -> re.Match[str] | None:
        """The first refused character of `text`, as `re.Pattern.search` finds it."""
        return (self._ascii if text.isascii() else self._whole).search(text)


_NOT_PLAIN_TEXT = _Refused(
    "\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"
)
"""Characters refused anywhere in a file: control characters (C0 but tab and line breaks,
DEL, C1 including NEL), the Unicode line and paragraph separators, surrogates and
non-characters. YAML refuses most of them without a line number, and the ones YAML takes
as line breaks would make its line numbers disagree with every editor's."""
CONTROL_IN_VALUE = _Refused(
    "\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"
)
"""Characters refused in a value once YAML escapes are read: the same, and carriage returns.
A value is printed in messages and reports and written to CI files; an escape sequence in it
could rewrite the reader's terminal, and a carriage return hide the start of a line."""


@record
class Document:
    """A loaded YAML file: its repository-relative path, its round-trip tree and its text."""

    path: str
    data: Any
    text: str = ""

    @cached_property
    def _lines(self) -> list[str]:
        return self.text.splitlines()

    def source(self, loc: Loc) -> str:
        """The plain scalar written at `loc` (a number, boolean or null as typed), or ''."""
        lines = self._lines
        if not 1 <= loc.line <= len(lines):
            return ""
        match = re.match(r"[^\s,\[\]{}]+", lines[loc.line - 1][loc.column - 1 :])
        return match.group(0).removesuffix(":") if match else ""


def display_path(path: Path, root: Path) -> str:
    """The path as users and reports see it: relative to the repository when inside it.

    The file's own name is kept even when it is a symbolic link: the user wrote the link,
    and its name is what the environment is called.
    """
    try:
        absolute = Path(os.path.normpath(path.absolute()))
        return (absolute.parent.resolve() / absolute.name).relative_to(root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return path.as_posix()


class _SimpleKeysInConstantTime:
    """ruamel.yaml's bookkeeping of possible simple keys, in constant time per token.

    ruamel.yaml looks at every pending possible key, one per open flow collection (up to
    1,024 on a line), for every token: `[` * 1,000 took 13 s, * 8,000 two minutes. A key is
    only saved at the current flow level, once every deeper level has been closed and its
    key removed, so the mapping is in order of level, which is also the order of position in
    the text: stale keys are a prefix, and the nearest key is the first one. Same tokens and
    errors as ruamel.yaml (tests/fuzz: test_linear_scanner_reads_as_ruamel_yaml).
    """

    possible_simple_keys: dict[int, Any]
    reader: Any

    done: bool
    tokens: list[Any]
    tokens_taken: int

    def next_possible_simple_key(self) -> Any:
        for key in self.possible_simple_keys.values():
            return key.token_number
        return None

    def need_more_tokens(self) -> bool:
        # ruamel.yaml's, with the two calls it makes for every token inlined and skipped
        # when no simple key is pending: a fifth of the time spent reading a file.
        if self.done:
            return False
        if not self.tokens:
            return True
        if not self.possible_simple_keys:
            return False
        self.stale_possible_simple_keys()
        for key in self.possible_simple_keys.values():
            return bool(key.token_number == self.tokens_taken)
        return False

    def stale_possible_simple_keys(self) -> None:
        keys = self.possible_simple_keys
        line, index = self.reader.line, self.reader.index
        while keys:
            level = next(iter(keys))
            key = keys[level]
            if key.line == line and index - key.index <= 1024:  # YAML's simple key limit
                return
            if key.required:
                raise ScannerError(
                    "while scanning a simple key",
                    key.mark,
                    "could not find expected ':'",
                    self.reader.get_mark(),
                )
            del keys[level]


class LinearScanner(_SimpleKeysInConstantTime, Scanner):
    """ruamel.yaml's scanner (`typ="safe"`) without the quadratic cost of nesting."""


class LinearRoundTripScanner(_SimpleKeysInConstantTime, RoundTripScanner):
    """ruamel.yaml's round-trip scanner without the quadratic cost of nesting.

    The round-trip scanner, though comments are not read here: it looks further ahead than
    the plain one, so a broken file is reported at the same place and in the same words as
    ever (tests/fuzz: test_one_pass_reads_as_two)."""


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves dates as the text written.

    ruamel.yaml would build `datetime.date` objects and raise a bare ValueError on a date
    like 2026-13-01; the schema checks dates itself and places the error at its line.
    """


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


class _CheckedParser(RoundTripParser):
    """The round-trip parser, with every event it hands on checked by the loader's
    `event_check` (when set) as it goes: the safety limits cost no second parse."""

    loader: Any

    def get_event(self) -> Any:
        event = super().get_event()
        check = self.loader.event_check
        if check is not None and event is not None:
            check.see(event)
        return event


class _Composer(Composer):
    """ruamel.yaml's composer; a second document is reported only once every event of the
    stream has been checked, as a separate event pass would: a refused construct or a
    syntax error after the second `---` is what the user is told about first."""

    parser: Any

    def get_single_node(self) -> Any:
        try:
            return super().get_single_node()
        except ComposerError as exc:
            if "another document" not in (exc.problem or ""):
                raise
            while self.parser.check_event():
                self.parser.get_event()
            raise


def _yaml(event_check: _EventCheck | None = None) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Scanner = LinearRoundTripScanner
    yaml.Parser = _CheckedParser
    yaml.Composer = _Composer
    yaml.Constructor = _Constructor
    yaml.event_check = event_check  # type: ignore[attr-defined]
    # Keeps quoted scalars distinguishable from plain ones, so a plain `no` can be told
    # apart from "no" (GitLab reads YAML 1.1, where plain `no` is a boolean).
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    return yaml


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character `offset`, counting line breaks as YAML does."""
    breaks = list(_LINE_BREAK.finditer(text, 0, offset))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - start + 1


def decode_text(path: str, raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InputError.at(
            Loc(path), "file starts with a byte-order mark", "save it as UTF-8 without a BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Everything before the bad byte decoded, so the column counts characters.
        good = raw[: exc.start].decode("utf-8")
        line, column = _position(good, len(good))
        raise InputError.at(
            Loc(path, line, column),
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None
    bad = _NOT_PLAIN_TEXT.search(text)
    if bad:
        line, column = _position(text, bad.start())
        raise InputError.at(
            Loc(path, line, column),
            f"control or non-text character U+{ord(bad.group()):04X} in the file",
            "remove it; YAML files here are plain text",
        )
    return text


def _tag_text(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def _refuse_event(path: str, event: Any) -> None:
    mark = event.start_mark
    loc = Loc(path, mark.line + 1, mark.column + 1)
    hint = "write the value out in full; anchors, aliases, merge keys and tags are refused"
    if isinstance(event, AliasEvent):
        raise InputError.at(loc, f"YAML alias '*{event.anchor}' is not allowed here", hint)
    if isinstance(event, NodeEvent) and event.anchor is not None:
        raise InputError.at(loc, f"YAML anchor '&{event.anchor}' is not allowed here", hint)
    tag = getattr(event, "tag", None)
    if isinstance(event, ScalarEvent | CollectionStartEvent) and tag is not None:
        raise InputError.at(
            loc,
            f"YAML tag '{_tag_text(str(tag))}' is not allowed here",
            "remove the tag; write strings in quotes",
        )


def _first_key(node: Node, duplicate: Any) -> Node | None:
    """The first key equal to the one at `duplicate`'s mark, in the mapping holding it."""
    if isinstance(node, MappingNode):
        for key, _ in node.value:
            if (key.start_mark.line, key.start_mark.column) == (duplicate.line, duplicate.column):
                for first, _ in node.value:
                    if first is key:
                        return None  # equal only once constructed (1 and true)
                    if first.tag == key.tag and first.value == key.value:
                        return first  # type: ignore[no-any-return]
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, SequenceNode):
        children = list(node.value)
    else:
        return None
    for child in children:
        found = _first_key(child, duplicate)
        if found is not None:
            return found
    return None


def _duplicate(path: str, text: str, exc: MarkedYAMLError) -> InputError:
    mark = exc.problem_mark
    loc = Loc(path, mark.line + 1, mark.column + 1)
    try:
        root = _yaml().compose(text)
        first = _first_key(root, mark) if root is not None else None
    except (YAMLError, RecursionError):
        first = None
    if first is None or not isinstance(first.value, str):
        problem = (exc.problem or "duplicate key").replace("\n", " ")
        return InputError.at(loc, problem, "each key may appear once in a mapping")
    return InputError.at(
        loc,
        f"duplicate key '{first.value}': already written at line {first.start_mark.line + 1}",
        "each key may appear once in a mapping; remove or merge one of them",
    )


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def syntax_error(path: str, exc: MarkedYAMLError) -> InputError:
    """A YAML syntax error in words a release engineer can act on."""
    problem = " ".join((exc.problem or str(exc)).split())
    context = exc.context or ""
    here = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    if "'\\t'" in problem:
        return InputError.at(
            _loc(path, here),
            "tab character where YAML expects indentation or a value",
            "indent with spaces; YAML does not allow tabs for indentation",
        )
    if "flow sequence" in context or "flow mapping" in context:
        close = "]" if "sequence" in context else "}"
        found = problem.rpartition("but got ")[2] or "something else"
        found = "the end of the file" if found == "'<stream end>'" else found
        return InputError.at(
            _loc(path, opened),
            f"'{'[' if close == ']' else '{'}' opened here is not closed "
            f"(found {found} at {_at(here)})",
            f"close it with '{close}', and separate items with ','",
        )
    if "quoted scalar" in context:
        return InputError.at(
            _loc(path, opened),
            "quoted string opened here is not closed",
            "end it with the same quote character",
        )
    if problem.startswith("expected <block end>") and here is not None and opened is not None:
        found = problem.rpartition("but found ")[2]
        found = {
            "'<block mapping start>'": "a key",
            "'-'": "a list item",
            "'?'": "a key",
            "'<scalar>'": "a value",
        }.get(found, found)
        kind, entries = ("mapping", "keys") if "mapping" in context else ("list", "items")
        return InputError.at(
            _loc(path, here),
            f"bad indentation: {found} in column {here.column + 1}, inside the {kind} "
            f"started at line {opened.line + 1} whose {entries} are in column "
            f"{opened.column + 1}",
            f"indent with spaces so that {entries} of one {kind} start in the same column",
        )
    if problem == "mapping values are not allowed here":
        return InputError.at(
            _loc(path, here),
            "unexpected ':' (bad indentation, or a value containing ': ')",
            "check this line's indentation; quote a value that contains ': '",
        )
    if "another document" in problem:
        return InputError.at(
            _loc(path, here),
            "a second YAML document ('---') in the file",
            "keep one document per file",
        )
    if "cannot start any token" in problem:
        return InputError.at(_loc(path, here), problem, "quote the value")
    message = problem if not context else f"{problem} ({context} at {_at(opened)})"
    return InputError.at(_loc(path, here), message, "this is not valid YAML")


def _loc(path: str, mark: Any) -> Loc:
    return Loc(path) if mark is None else Loc(path, mark.line + 1, mark.column + 1)


class _EventCheck:
    """Refuses anchors, aliases, tags, merge keys, keys that are not scalars, values holding
    control characters (written as escapes such as "\\e"), and a document too large or too
    deep, one parser event at a time while the file is parsed: nothing is built from a
    refused document."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.expecting_key: list[bool | None] = []
        """Per open collection: a mapping's next node is a key (True) or a value (False)."""
        self.nodes = 0

    def see(self, event: Any) -> None:
        path = self.path
        expecting_key = self.expecting_key
        _refuse_event(path, event)
        if isinstance(event, CollectionEndEvent):
            expecting_key.pop()
            return
        if not isinstance(event, NodeEvent):
            return
        loc = _loc(path, event.start_mark)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InputError.at(
                loc,
                f"the file holds more than {MAX_NODES} values",
                "an environment or policy file holds a few hundred",
            )
        is_key = bool(expecting_key and expecting_key[-1])
        if expecting_key and expecting_key[-1] is not None:
            expecting_key[-1] = not is_key
        if isinstance(event, ScalarEvent):
            _check_scalar(loc, event, is_key)
        elif isinstance(event, CollectionStartEvent):
            if is_key:
                raise InputError.at(
                    loc, "a mapping key must be a name, not a list or a mapping", "quote the key"
                )
            if len(expecting_key) >= MAX_DEPTH:
                raise InputError.at(
                    loc, f"the YAML is nested more than {MAX_DEPTH} levels deep", "flatten it"
                )
            expecting_key.append(True if isinstance(event, MappingStartEvent) else None)


def _check_scalar(loc: Loc, event: ScalarEvent, is_key: bool) -> None:
    if is_key and event.value == "<<" and event.style is None:
        raise InputError.at(
            loc,
            "YAML merge key '<<' is not allowed here",
            "write the keys out in full; anchors, aliases, merge keys and tags are refused",
        )
    bad = CONTROL_IN_VALUE.search(event.value)
    if bad:
        raise InputError.at(
            loc,
            f"control or non-text character U+{ord(bad.group()):04X} in this "
            + ("key" if is_key else "value"),
            "write plain text; YAML escapes such as \\e, \\r or \\0 are refused",
        )


def parse_text(path: str, text: str) -> Any:
    """Parse YAML text into a round-trip tree, refusing what `_EventCheck` refuses, in one
    parse.

    Raises `InputError`.
    """
    yaml = _yaml(_EventCheck(path))
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        if type(exc).__name__ == "DuplicateKeyError":
            raise _duplicate(path, text, exc) from None
        raise syntax_error(path, exc) from None
    except YAMLError as exc:
        raise InputError.at(Loc(path), f"cannot parse YAML: {exc}") from None
    except RecursionError:
        raise InputError.at(
            Loc(path), "the YAML is nested too deeply", "flatten the structure"
        ) from None


def _describe_top(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, bool):
        return f"the boolean {str(data).lower()}"
    if isinstance(data, int | float):
        return f"the number {data}"
    if isinstance(data, str):
        return f"the text {data!r}"
    return "a single value"


def read_yaml(file: Path, root: Path) -> Document:
    """Read and parse one YAML file; the top level must be a mapping."""
    path = display_path(file, root)
    try:
        if _leaves_repository(file, root):
            raise InputError.at(
                Loc(path), "symbolic link leads outside the repository", "copy the file in"
            )
    except OSError as exc:
        raise InputError.at(Loc(path), f"cannot read file: {exc.strerror or exc}") from None
    except RuntimeError:  # pathlib's report of a symbolic link loop
        raise InputError.at(Loc(path), "cannot read file: symbolic link loop") from None
    raw = read_limited(file, path, MAX_BYTES, "an environment or policy file is a few kilobytes")
    return parse_document(path, raw)


def read_limited(file: Path, path: str, limit: int, hint: str) -> bytes:
    """The bytes of `file` (shown as `path`), refusing files over `limit` bytes.

    Checked before reading, and again after, in case the file grew in between.
    """
    try:
        size = file.stat().st_size
        if size > limit:
            raise InputError.at(
                Loc(path), f"file is {size} bytes, more than the {limit} allowed", hint
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError.at(Loc(path), f"cannot read file: {exc.strerror or exc}") from None
    except RuntimeError:  # pathlib's report of a symbolic link loop
        raise InputError.at(Loc(path), "cannot read file: symbolic link loop") from None
    if len(raw) > limit:
        raise InputError.at(Loc(path), f"file is more than the {limit} bytes allowed", hint)
    return raw


def parse_document(path: str, raw: bytes) -> Document:
    """Decode and parse the bytes of a YAML file shown as `path`; the top level must be a
    mapping. Used for files on disk and for files read from git (`--base`)."""
    if len(raw) > MAX_BYTES:
        raise InputError.at(
            Loc(path),
            f"file is {len(raw)} bytes, more than the {MAX_BYTES} allowed",
            "an environment or policy file is a few kilobytes",
        )
    text = decode_text(path, raw)
    data = parse_text(path, text)
    if data is None:
        if not text.strip():
            raise InputError.at(Loc(path), "file is empty", "expected a mapping of keys to values")
        only_comments = all(
            not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
        )
        if only_comments:
            raise InputError.at(
                Loc(path), "file holds only comments", "expected a mapping of keys to values"
            )
        raise InputError.at(Loc(path), "expected a mapping at the top of the file, found null")
    if not isinstance(data, dict):
        raise InputError.at(
            Loc(path),
            f"expected a mapping at the top of the file, found {_describe_top(data)}",
            "the file holds keys such as 'environment:' and 'jobs:'",
        )
    return Document(path, data, text)


def _leaves_repository(file: Path, root: Path) -> bool:
    """True when a file inside the repository is reached through a link leading out of it.

    A path given outside the repository (an explicit --environments /elsewhere) is taken
    as meant.
    """
    real_root = root.resolve()
    written = Path(os.path.normpath(file.absolute()))
    inside = _inside(written, real_root) or _inside(
        written, Path(os.path.normpath(root.absolute()))
    )
    return inside and not _inside(file.resolve(strict=True), real_root)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
