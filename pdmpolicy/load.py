"""Reading YAML input files: bytes on disk to a round-trip tree with positions.

Every way a file can be unreadable ends here as an `InputError` with file:line:col;
nothing below this module sees raw bytes. Anchors and aliases are refused in environment
and policy files: they are not needed there, and refusing them closes alias bombs and
values smuggled in through merge keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from pdmpolicy.errors import InputError
from pdmpolicy.location import Loc

MAX_BYTES = 1024 * 1024
"""Environment and policy files are a few kilobytes; anything past this is a mistake."""


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: its repository-relative path and its round-trip tree."""

    path: str
    data: Any


def display_path(path: Path, root: Path) -> str:
    """The path as users and reports see it: relative to the repository when inside it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves dates as the text written.

    ruamel.yaml would build `datetime.date` objects and raise a bare ValueError on a date
    like 2026-13-01; the schema checks dates itself and places the error at its line.
    """


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
    # Keeps quoted scalars distinguishable from plain ones, so a plain `no` can be told
    # apart from "no" (GitLab reads YAML 1.1, where plain `no` is a boolean).
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    return yaml


def _mark_loc(path: str, error: MarkedYAMLError) -> Loc:
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return Loc(path)
    return Loc(path, mark.line + 1, mark.column + 1)


def _decode(path: str, raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InputError.at(
            Loc(path), "file starts with a byte-order mark", "save it as UTF-8 without a BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InputError.at(
            Loc(path, line, column),
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None
    for number, text_line in enumerate(text.splitlines(), start=1):
        for column, char in enumerate(text_line, start=1):
            if (ord(char) < 0x20 and char != "\t") or char == "\x7f":
                raise InputError.at(
                    Loc(path, number, column),
                    f"control character U+{ord(char):04X} in the file",
                    "remove it; YAML files here are plain text",
                )
    return text


def parse_text(path: str, text: str) -> Any:
    """Parse YAML text into a round-trip tree, refusing aliases; raises `InputError`."""
    yaml = _yaml()
    try:
        for event in yaml.parse(text):
            if isinstance(event, AliasEvent):
                mark = event.start_mark
                raise InputError.at(
                    Loc(path, mark.line + 1, mark.column + 1),
                    f"YAML alias '*{event.anchor}' is not allowed here",
                    "write the value out in full; anchors, aliases and merge keys are refused",
                )
        return yaml.load(text)
    except MarkedYAMLError as exc:
        problem = (exc.problem or str(exc)).strip()
        if "found duplicate key" in problem or type(exc).__name__ == "DuplicateKeyError":
            problem = problem.replace("\n", " ")
            hint = "each key may appear once in a mapping"
        else:
            hint = "this is not valid YAML"
        raise InputError.at(_mark_loc(path, exc), problem, hint) from None
    except YAMLError as exc:
        raise InputError.at(Loc(path), f"cannot parse YAML: {exc}") from None
    except RecursionError:
        raise InputError.at(
            Loc(path), "the YAML is nested too deeply", "flatten the structure"
        ) from None


def read_yaml(file: Path, root: Path) -> Document:
    """Read and parse one YAML file; the top level must be a mapping."""
    path = display_path(file, root)
    try:
        if file.is_symlink() and not _inside(file.resolve(), root.resolve()):
            raise InputError.at(
                Loc(path), "symbolic link leads outside the repository", "copy the file in"
            )
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise InputError.at(
                Loc(path),
                f"file is {size} bytes, more than the {MAX_BYTES} allowed",
                "an environment or policy file is a few kilobytes",
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError.at(Loc(path), f"cannot read file: {exc.strerror or exc}") from None
    text = _decode(path, raw)
    data = parse_text(path, text)
    if data is None:
        raise InputError.at(Loc(path), "file is empty", "expected a mapping of keys to values")
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else "single value"
        raise InputError.at(Loc(path), f"expected a mapping at the top of the file, found a {kind}")
    return Document(path, data)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
