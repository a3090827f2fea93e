"""Reading manifest files: rendered Kubernetes YAML, or a helm-diff of it, with positions.

Rendered manifests are not our own input format, so this reader differs from `load.py`:
- a file is a stream of YAML documents (`---`), read as Kubernetes reads them (YAML 1.1:
  `yes`/`no`/`on`/`off` are booleans, `010` is octal); empty documents are skipped, and a
  `kind: List` contributes its `items`;
- anchors, aliases, merge keys and tags are allowed (hand-written manifests use them); aliases
  are shared, never expanded, so an alias bomb costs nothing;
- duplicate keys are tolerated where they cannot change a verdict, and refused in a Job,
  ConfigMap or Secret, where tools disagree on which value counts;
- the output of `k-ctl -D` / `helmfile diff` (helm-diff's `<ns>, <name>, <Kind> (<api>) has
  been added:` entries) is recognised: each entry's new side (`+ ` and context lines) is
  read as the object, and positions point at its lines in the file;
- terminal colour codes are removed before anything else;
- limits: `MAX_FILE_BYTES` per file, `MAX_DOCUMENTS` per file, `MAX_FILES` per run,
  `MAX_DEPTH` of nesting.

Every way a file can be unusable ends as an `InputError` at file:line:col (exit 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from pdmpolicy.core.errors import InputError, Problem, UsageError
from pdmpolicy.core.location import Loc, key_loc, node_loc
from pdmpolicy.environments.load import decode_text, display_path, syntax_error
from pdmpolicy.manifests.model import Origin, Resource

MAX_FILE_BYTES = 32 * 1024 * 1024
"""`helm template` of the whole GitLab chart is about a megabyte; a dry run of every release of
an environment a few."""
MAX_DOCUMENTS = 20_000
MAX_FILES = 5_000
MAX_DEPTH = 100
"""Nesting of mappings and lists; a CRD's schema, among the deepest objects, stays far below."""
STDIN = "-"
STDIN_PATH = "<stdin>"
SUFFIXES = (".yaml", ".yml")
CHECKED_KINDS = frozenset({"Job", "ConfigMap", "Secret"})
"""Kinds whose values the policies read: duplicate keys in them are refused."""

_COLOUR = re.compile(rb"\x1b\[[0-9;]*m")
_DIFF_HEADER = re.compile(
    r"^(?P<namespace>[^,\s]*), (?P<name>[^,\s]+), (?P<kind>[A-Za-z][A-Za-z0-9]*) "
    r"\((?P<api>[^)]*)\) (?P<change>has been added|has been removed|has changed"
    r"|changed ownership)"
)
"""helm-diff's entry header, e.g. `gitlab, gitlab-migrations-5d2c1f0, Job (batch) has been
added:` (databus23/helm-diff, diff/report.go)."""
_SUPPRESSED = "Changes suppressed on sensitive content"


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that keeps dates as written and notes duplicate keys.

    ruamel.yaml keeps the first of two equal keys; kubectl keeps the last and some clients
    refuse the object, so a duplicate is recorded here and judged by kind afterwards.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duplicates: list[tuple[str, Any, Any]] = []

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            self.duplicates.append((str(key), key_node.start_mark, mapping))
            return False
        return True


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
    yaml.version = (1, 1)  # Kubernetes reads YAML with go-yaml, which follows YAML 1.1
    # Stops a deeply nested document early: ruamel.yaml's scanner slows down with the square
    # of the depth (older ruamel.yaml has no limit: RecursionError below catches it then).
    yaml.max_depth = MAX_DEPTH
    return yaml


@dataclass(frozen=True)
class ManifestSource:
    """One file as read: where it is shown, and its objects."""

    path: str
    resources: tuple[Resource, ...]


def manifest_paths(arguments: Sequence[str], root: Path) -> list[tuple[str, Path | None]]:
    """(shown path, file) for every argument, directories walked; `-` is stdin (file None).

    Raises UsageError for a path that does not exist or a directory without manifests: a
    mistyped path must never check nothing.
    """
    found: list[tuple[str, Path | None]] = []
    seen: set[str] = set()
    for argument in arguments:
        if argument == STDIN:
            if STDIN_PATH in seen:
                raise UsageError("'-' (standard input) is given twice")
            seen.add(STDIN_PATH)
            found.append((STDIN_PATH, None))
            continue
        path = Path(argument)
        if path.is_dir():
            files = _walk(path)
            if not files:
                raise UsageError(f"no *.yaml or *.yml files under '{argument}'")
        elif path.exists() or path.is_symlink():
            files = [path]
        else:
            raise UsageError(f"manifest path '{argument}' does not exist")
        for file in files:
            shown = display_path(file, root)
            if shown not in seen:
                seen.add(shown)
                found.append((shown, file))
    if len(found) > MAX_FILES:
        raise UsageError(f"{len(found)} manifest files, more than the {MAX_FILES} allowed")
    return found


def _walk(directory: Path) -> list[Path]:
    """Manifest files below `directory`, sorted by their path in it; hidden directories
    (`.git`) are skipped and directory links are not followed."""
    files = []
    for parent, directories, names in os.walk(directory):
        directories[:] = [d for d in directories if not d.startswith(".")]
        for name in names:
            if name.endswith(SUFFIXES) and not name.startswith("."):
                files.append(Path(parent) / name)
    return sorted(files, key=lambda file: file.relative_to(directory).as_posix())


def read_manifests(arguments: Sequence[str], root: Path, stdin: IO[bytes]) -> list[ManifestSource]:
    """Every manifest file the arguments name, parsed; InputError lists the problems of all."""
    problems: list[Problem] = []
    sources = []
    for shown, file in manifest_paths(arguments, root):
        try:
            raw = _read(stdin, shown) if file is None else _read_file(file, shown)
            sources.append(ManifestSource(shown, parse_manifests(shown, raw)))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return sources


def _too_big(path: str, size: int) -> InputError:
    return InputError.at(
        Loc(path),
        f"file is {size} bytes, more than the {MAX_FILE_BYTES} allowed",
        "check the manifests of one environment at a time",
    )


def _read(handle: IO[bytes], path: str) -> bytes:
    raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(path, len(raw))
    return raw


def _read_file(file: Path, path: str) -> bytes:
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _too_big(path, size)
        with file.open("rb") as handle:
            return _read(handle, path)
    except OSError as exc:
        raise InputError.at(Loc(path), f"cannot read file: {exc.strerror or exc}") from None


def parse_manifests(path: str, raw: bytes) -> tuple[Resource, ...]:
    """The Kubernetes objects of one file shown as `path` (YAML stream or helm-diff)."""
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(path, len(raw))
    text = decode_text(path, _COLOUR.sub(b"", raw))
    chunks = _helm_diff(path, text)
    resources: list[Resource] = []
    for chunk, origin in chunks if chunks is not None else [(text, Origin(path))]:
        _parse_stream(chunk, origin, resources)
    return tuple(resources)


# --- helm-diff output -----------------------------------------------------------------------


@dataclass
class _Entry:
    header: Loc
    kind: str
    name: str
    change: str
    lines: list[tuple[int, int, str]] = field(default_factory=list)
    """(file line, characters before the content, content) of the new side."""
    omitted: int | None = None
    """The first `...` line: helm-diff left lines out (`--context N`)."""


def _helm_diff(path: str, text: str) -> list[tuple[str, Origin]] | None:
    """The new side of every entry of a helm-diff, or None when the text is not one."""
    lines = text.splitlines()
    if not any(_DIFF_HEADER.match(line) for line in lines):
        return None
    chunks: list[tuple[str, Origin]] = []
    entry: _Entry | None = None
    for number, line in enumerate(lines, start=1):
        header = _DIFF_HEADER.match(line)
        if header:
            _finish(path, entry, chunks)
            entry = _Entry(
                Loc(path, number), header.group("kind"), header.group("name"), header["change"]
            )
        elif entry is None:
            continue
        elif line.startswith(("+ ", "  ")):
            entry.lines.append((number, 2, line[2:]))
        elif line in ("", "+", " "):
            entry.lines.append((number, len(line), ""))
        elif line.startswith("- ") or line == "-":
            continue  # the old side
        elif line == "...":
            entry.omitted = entry.omitted or number
        else:  # a log line: the entry has ended
            _finish(path, entry, chunks)
            entry = None
    _finish(path, entry, chunks)
    return chunks


def _finish(path: str, entry: _Entry | None, into: list[tuple[str, Origin]]) -> None:
    if entry is None or entry.change == "has been removed":
        return
    content = [text for _, _, text in entry.lines]
    if any(text.startswith(_SUPPRESSED) for text in content):
        return  # a Secret whose content helm-diff hides
    if entry.omitted is not None:
        if entry.kind in CHECKED_KINDS:
            raise InputError.at(
                Loc(path, entry.omitted),
                f"the diff of {entry.kind} {entry.name} (line {entry.header.line}) shows only "
                "the lines around its changes, so the object cannot be checked",
                "save the dry run with whole objects (no --context for helm-diff/helmfile)",
            )
        return
    into.append(
        (
            "\n".join(content) + "\n",
            Origin(
                path,
                tuple(number for number, _, _ in entry.lines),
                tuple(width for _, width, _ in entry.lines),
            ),
        )
    )


# --- YAML streams ---------------------------------------------------------------------------


def _moved(error: InputError, origin: Origin) -> InputError:
    return InputError(Problem(origin.at(p.loc), p.message, p.hint) for p in error.problems)


def _parse_stream(text: str, origin: Origin, into: list[Resource]) -> None:
    yaml = _yaml()
    path = origin.path
    try:
        for number, document in enumerate(yaml.load_all(text), start=1):
            constructor: Any = yaml.constructor
            duplicates, constructor.duplicates = constructor.duplicates, []
            if number > MAX_DOCUMENTS:
                raise InputError.at(
                    origin.at(Loc(path)),
                    f"more than {MAX_DOCUMENTS} YAML documents in the file",
                    "check the manifests of one environment at a time",
                )
            if document is None:
                continue
            objects = _objects(document, number, origin)
            _refuse_duplicates(objects, duplicates, origin)
            into.extend(_resource(data, origin, len(into) + i) for i, data in enumerate(objects))
    except MarkedYAMLError as exc:
        if type(exc).__name__ == "MaxDepthExceededError":
            mark = exc.problem_mark
            raise InputError.at(
                origin.at(Loc(path, mark.line + 1, mark.column + 1) if mark else Loc(path)),
                f"the YAML is nested more than {MAX_DEPTH} levels deep here",
                "a Kubernetes object is not nested this deeply; check the file",
            ) from None
        raise _moved(syntax_error(path, exc), origin) from None
    except YAMLError as exc:
        raise InputError.at(origin.at(Loc(path)), f"cannot parse YAML: {exc}") from None
    except RecursionError:
        raise InputError.at(
            origin.at(Loc(path)), "the YAML is nested too deeply to be a manifest"
        ) from None


def _describe(document: Any) -> str:
    if isinstance(document, list):
        return "a list"
    if isinstance(document, str):
        shown = document if len(document) <= 40 else document[:37] + "..."
        return f"the text {shown!r}"
    return f"the value {document!r}"


def _objects(document: Any, number: int, origin: Origin) -> list[Mapping[str, Any]]:
    """The Kubernetes objects of one document: itself, or the items of a `kind: List`."""
    path = origin.path
    if not isinstance(document, Mapping):
        raise InputError.at(
            origin.at(node_loc(path, document)),
            f"YAML document {number} is {_describe(document)}, not a Kubernetes object",
            "a manifest file holds Kubernetes objects (apiVersion, kind, metadata, ...) "
            "separated by '---'",
        )
    objects = [document]
    kind = document.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        objects = list(document["items"])
    for item in objects:
        if not isinstance(item, Mapping):
            raise InputError.at(
                origin.at(node_loc(path, document)),
                f"an item of the {kind} in YAML document {number} is {_describe(item)}, "
                "not a Kubernetes object",
            )
        if not isinstance(item.get("kind"), str) or not item.get("kind"):
            raise InputError.at(
                origin.at(key_loc(path, item, "kind") if "kind" in item else node_loc(path, item)),
                f"YAML document {number} has no 'kind': not a Kubernetes object",
                "every object names its apiVersion and kind",
            )
    return objects


def _refuse_duplicates(
    objects: Iterable[Mapping[str, Any]], duplicates: list[tuple[str, Any, Any]], origin: Origin
) -> None:
    if not duplicates or not any(item.get("kind") in CHECKED_KINDS for item in objects):
        return
    problems = []
    for key, mark, mapping in duplicates:
        first = origin.at(key_loc(origin.path, mapping, key))
        problems.append(
            Problem(
                origin.at(Loc(origin.path, mark.line + 1, mark.column + 1)),
                f"duplicate key '{key}' (first written at line {first.line}): Kubernetes "
                "clients disagree on which one counts, so the object cannot be checked",
                "remove one of them (fix the template or values that write it twice)",
            )
        )
    raise InputError(problems)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _resource(data: Mapping[str, Any], origin: Origin, index: int) -> Resource:
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    return Resource(
        origin=origin,
        data=data,
        index=index,
        kind=str(data["kind"]),
        api_version=_text(data.get("apiVersion")) or "",
        name=_text(metadata.get("name")) or "(unnamed)",
        namespace=_text(metadata.get("namespace")),
    )
