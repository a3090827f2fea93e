"""CI/CD inputs: a file's `spec: inputs:` header and `$[[ inputs.name ]]` interpolation.

A file may start with a header document (`spec: inputs:`) declaring the inputs it takes,
each with an optional `default`. An include passes values with `include: inputs:`; GitLab
then replaces every `$[[ inputs.name ]]` in the file's keys and values
(docs/gitlab-ci-semantics.md §14). A value that is exactly one interpolation takes the
input's own type (a boolean stays a boolean, an array a list); inside longer text it is
text. `truncate(offset, length)` is applied; `expand_vars` and `posix_escape` leave the
text as it is (they only matter when the job runs).

For the pipeline's own file nobody passes inputs offline: an input without a default is
then unknown, its uses stay as written and are reported. For an included file, a missing
required input, an undeclared input or an unknown name is an error, as in GitLab.
"""

from __future__ import annotations

import re

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.yaml import Entry, Map, Node, Reference, Scalar, Seq, describe, ruby_text

Inputs = dict[str, Node]
Values = dict[str, Node | None]
"""Input values; None for one whose value is not known offline."""

_USE = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*((?:\|[^\]|]*)*)\]\]")
_TRUNCATE = re.compile(r"truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def header_inputs(
    spec: Map, given: Inputs | None, via: Loc, *, root_file: bool
) -> tuple[Values, list[tuple[Loc, str]]]:
    """The value of every declared input, and what stays unknown (root file only)."""
    spec_node = spec.get("spec")
    declared = spec_node.get("inputs") if isinstance(spec_node, Map) else None
    if declared is not None and not isinstance(declared, Map):
        raise InputError.at(
            declared.loc, f"spec:inputs must be a mapping; found {describe(declared)}"
        )
    given = given or {}
    names = {entry.key: entry for entry in declared.entries} if declared is not None else {}
    for name, value in given.items():
        if name not in names:
            raise InputError.at(value.loc, f"input '{name}' is not declared in the spec: header")
    values: Values = {}
    unknown: list[tuple[Loc, str]] = []
    for name, entry in names.items():
        if name in given:
            values[name] = given[name]
            continue
        default = entry.value.get("default") if isinstance(entry.value, Map) else None
        if default is None and isinstance(entry.value, Map) and "default" in entry.value:
            default = entry.value.entry("default").value  # type: ignore[union-attr]
        if default is not None:
            values[name] = default
        elif root_file:
            values[name] = None
            unknown.append(
                (
                    entry.key_loc,
                    f"input '{name}' has no default: its value is given when a pipeline is "
                    "created, so where it is used is not known",
                )
            )
        else:
            raise InputError.at(
                via, f"input '{name}' is required and not given", "add it to include: inputs:"
            )
    return values, unknown


def interpolate(node: Map, values: Values) -> Map:
    """`node` with every `$[[ inputs.name ]]` in its keys and values replaced."""
    result = _node(node, values)
    assert isinstance(result, Map)
    return result


def _node(node: Node, values: Values) -> Node:
    if isinstance(node, Scalar):
        if isinstance(node.value, str) and "$[[" in node.value:
            return _scalar(node, values)
        return node
    if isinstance(node, Reference):
        return node
    if isinstance(node, Seq):
        items = tuple(_node(item, values) for item in node.items)
        return Seq(items, node.loc, 1 + sum(item.size for item in items))
    entries = []
    for entry in node.entries:
        key = entry.key
        if "$[[" in key:
            replaced = _scalar(Scalar(key, key, entry.key_loc), values)
            key = ruby_text(replaced.value) if isinstance(replaced, Scalar) else key
        entries.append(Entry(key, entry.key_loc, _node(entry.value, values)))
    return Map(tuple(entries), node.loc, 1 + sum(e.value.size for e in entries))


def _scalar(node: Scalar, values: Values) -> Node:
    text = node.value
    assert isinstance(text, str)
    whole = _USE.fullmatch(text.strip())
    if whole and not whole.group(2):
        value = _value(whole.group(1), values, node.loc)
        if value is None:
            return node
        if isinstance(value, Scalar):
            return Scalar(value.value, value.text, node.loc)
        return value

    def replace(match: re.Match[str]) -> str:
        value = _value(match.group(1), values, node.loc)
        if value is None:
            return match.group(0)
        shown = _text(value)
        for function in filter(None, (f.strip() for f in match.group(2).split("|"))):
            truncate = _TRUNCATE.fullmatch(function)
            if truncate:
                start, length = int(truncate.group(1)), int(truncate.group(2))
                shown = shown[start : start + length]
        return shown

    return Scalar(_USE.sub(replace, text), node.text, node.loc)


def _value(name: str, values: Values, loc: Loc) -> Node | None:
    if name in values:
        return values[name]
    raise InputError.at(loc, f"$[[ inputs.{name} ]]: no input '{name}' is declared")


def _text(value: Node) -> str:
    if isinstance(value, Scalar):
        return ruby_text(value.value)
    if isinstance(value, Seq):
        return "[" + ", ".join(_text(item) for item in value.items) + "]"
    return describe(value)
