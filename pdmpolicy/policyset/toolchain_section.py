"""The `toolchain:` section of a policy set: read, checked, and merged over the defaults.

A team says how *its* tools are called (docs/toolchain.md): each key given replaces the
built-in value of that key, lists and mappings included (a list is never extended, so what
is written is what holds); keys not given keep their defaults. `kubernetes.wait` is merged
key by key the same way. Every problem is an `InputError` at file:line:col, gathered with the
rest of the policy set's. So is a toolchain whose k-ctl, wait and VM commands cannot be told
apart by what a job runs (`_ambiguous`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from pdmpolicy.core import names
from pdmpolicy.core.errors import Problem
from pdmpolicy.core.location import Loc, item_loc, key_loc, value_loc
from pdmpolicy.environments.schema import is_yaml11_special
from pdmpolicy.policyset.toolchain import (
    DEFAULT,
    PLACEHOLDERS,
    WAIT_STYLES,
    KubernetesExecutor,
    Rails,
    Toolchain,
    VmExecutor,
    match_words,
    unknown_placeholders,
)

_VARIABLE = re.compile(names.VARIABLE_PATTERN)
_WORD = re.compile(r"^\S+$")


def _yaml_kind(value: Any, literal: str) -> str:
    if isinstance(value, bool) or literal.lower() in ("y", "yes", "n", "no", "on", "off"):
        return "boolean"
    if literal.lower() in ("~", "null"):
        return "null"
    return "number"


class _Reader:
    """Checks values at their locations; collects problems instead of stopping."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems

    def error(self, loc: Loc, message: str, hint: str = "") -> None:
        self.problems.append(Problem(loc, message, hint))

    def mapping(self, owner: Any, key: str, what: str, valid: tuple[str, ...]) -> Any:
        """`owner[key]` as a mapping whose keys are all in `valid`; None if it is not one."""
        node = owner[key]
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            self.error(
                value_loc(self.path, owner, key),
                f"{what} must be a mapping",
                "valid keys: " + ", ".join(valid),
            )
            return None
        for name in node:
            if name not in valid:
                self.error(
                    key_loc(self.path, node, name),
                    f"unknown key '{name}' in {what}",
                    "valid keys: " + ", ".join(valid),
                )
        return node

    def _string(self, value: Any, loc: Loc, what: str) -> str | None:
        """A string as written; a YAML boolean or number is refused with a hint to quote it."""
        if isinstance(value, bool) or is_yaml11_special(value) or isinstance(value, int | float):
            literal = str(value).lower() if isinstance(value, bool) else str(value)
            self.error(
                loc,
                f"{what} must be a string; YAML reads the unquoted {literal} as a "
                + _yaml_kind(value, literal),
                f'quote it: "{literal}"',
            )
            return None
        if not isinstance(value, str):
            self.error(loc, f"{what} must be a string")
            return None
        return str(value)

    def string(self, owner: Any, key: str, what: str) -> str | None:
        loc = value_loc(self.path, owner, key)
        value = self._string(owner[key], loc, what)
        if value is not None and not value:
            self.error(loc, f"{what} must not be empty")
            return None
        return value

    def value(self, owner: Any, key: str, what: str) -> str | None:
        """A variable's value: any string, the empty one included."""
        return self._string(owner[key], value_loc(self.path, owner, key), what)

    def variable(self, owner: Any, key: str, what: str) -> str | None:
        value = self.string(owner, key, what)
        if value is not None and not _VARIABLE.match(value):
            self.error(
                value_loc(self.path, owner, key),
                f"{what} must be a variable name, found {value!r}",
                "letters, digits and '_', not starting with a digit",
            )
            return None
        return value

    def flag(self, owner: Any, key: str, what: str) -> str | None:
        value = self.string(owner, key, what)
        if value is not None and (
            not value.startswith("-") or not _WORD.match(value) or "=" in value or value == "-"
        ):
            self.error(
                value_loc(self.path, owner, key),
                f"{what} must be one option word such as '-e' or '--environment', found {value!r}",
            )
            return None
        return value

    def choice(self, owner: Any, key: str, what: str, allowed: tuple[str, ...]) -> str | None:
        value = self.string(owner, key, what)
        if value is not None and value not in allowed:
            self.error(
                value_loc(self.path, owner, key),
                f"{what} must be one of {', '.join(allowed)}, found {value!r}",
            )
            return None
        return value

    def duration(self, owner: Any, key: str, what: str) -> int | None:
        value = owner[key]
        seconds = names.parse_duration(value) if isinstance(value, str) else None
        if not seconds:
            self.error(
                value_loc(self.path, owner, key),
                f"{what} must be a duration such as '1h' or '90m', more than 0",
            )
            return None
        return seconds

    def words(
        self, owner: Any, key: str, what: str, *, empty: bool = False
    ) -> tuple[str, ...] | None:
        """A list of single words (program names, actions)."""
        node = owner[key]
        if not isinstance(node, list):
            self.error(value_loc(self.path, owner, key), f"{what} must be a list of words")
            return None
        found: list[str] = []
        for index, item in enumerate(node):
            loc = item_loc(self.path, node, index)
            word = self._string(item, loc, f"{what}, item {index + 1},")
            if word is None:
                continue
            if not _WORD.match(word):
                self.error(loc, f"{what}: {word!r} is not one word (no spaces, not empty)")
                continue
            found.append(word)
        if not node and not empty:
            self.error(value_loc(self.path, owner, key), f"{what} must not be empty")
            return None
        if len(found) != len(node):
            return None
        return tuple(found)

    def command(self, node: Any, loc: Loc, what: str) -> tuple[str, ...] | None:
        """A command: a string (split as the shell would) or a list of words; never empty."""
        words: list[str] = []
        if isinstance(node, list):
            ok = True
            for index, item in enumerate(node):
                word = self._string(
                    item, item_loc(self.path, node, index), f"word {index + 1} of {what}"
                )
                if word is None:
                    ok = False
                elif not word:
                    self.error(
                        item_loc(self.path, node, index), f"word {index + 1} of {what} is empty"
                    )
                    ok = False
                else:
                    words.append(word)
            if not ok:
                return None
        else:
            text = self._string(node, loc, what)
            if text is None:
                return None
            try:
                words = shlex.split(text)
            except ValueError as exc:
                self.error(loc, f"{what} cannot be split into words: {exc}", "balance the quotes")
                return None
        if not words:
            self.error(
                loc, f"{what} must not be empty", "name the program to run, and its arguments"
            )
            return None
        for word in words:
            unknown = unknown_placeholders(word)
            if unknown:
                self.error(
                    loc,
                    f"{what}: unknown placeholder {{{unknown[0]}}} in {word!r}",
                    "placeholders: "
                    + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                    + "; write {{ and }} for a literal brace",
                )
                return None
        return tuple(words)

    def command_at(self, owner: Any, key: str, what: str) -> tuple[str, ...] | None:
        return self.command(owner[key], value_loc(self.path, owner, key), what)


# --- the sections ---------------------------------------------------------------------------

_Field = Callable[[_Reader, Any, str, str], Any]


def _fields(
    reader: _Reader, node: Mapping[str, Any], spec: Mapping[str, _Field], what: str
) -> dict[str, Any]:
    """Each known key of `node` read by its field reader; the keys that read cleanly."""
    values: dict[str, Any] = {}
    for key, read in spec.items():
        if key in node:
            value = read(reader, node, key, f"{what}.{key}")
            if value is not None:
                values[key] = value
    return values


def _switches(reader: _Reader, owner: Any, key: str, what: str) -> Mapping[str, str] | None:
    node = owner[key]
    if not isinstance(node, Mapping) or not node:
        reader.error(
            value_loc(reader.path, owner, key),
            f"{what} must be a mapping of variable name to value, not empty",
            'for example: {RUN_POST_DEPLOY_MIGRATIONS: "true"}',
        )
        return None
    found: dict[str, str] = {}
    for name in node:
        if not isinstance(name, str) or not _VARIABLE.match(name):
            reader.error(
                key_loc(reader.path, node, name), f"{what}: {name!r} is not a variable name"
            )
            continue
        value = reader.value(node, name, f"{what}.{name}")
        if value is not None:
            found[name] = value
    if len(found) != len(node):
        return None
    return MappingProxyType(dict(sorted(found.items())))


def _migrate_commands(
    reader: _Reader, owner: Any, key: str, what: str
) -> tuple[tuple[str, ...], ...] | None:
    node = owner[key]
    if not isinstance(node, list) or not node:
        reader.error(
            value_loc(reader.path, owner, key), f"{what} must be a list of commands, not empty"
        )
        return None
    found = []
    for index, item in enumerate(node):
        words = reader.command(
            item, item_loc(reader.path, node, index), f"{what}, item {index + 1},"
        )
        if words is not None:
            found.append(words)
    return tuple(found) if len(found) == len(node) else None


_WAIT: Mapping[str, _Field] = {
    "style": lambda r, o, k, w: r.choice(o, k, w, WAIT_STYLES),
    "variable": _Reader.variable,
    "value": _Reader.value,
    "command": _Reader.command_at,
    "default_timeout": _Reader.duration,
}
_KUBERNETES: Mapping[str, _Field] = {
    "command": _Reader.command_at,
    "environment_flag": _Reader.flag,
    "stage_flag": _Reader.flag,
    "dry_run_flag": _Reader.flag,
    "apply_actions": _Reader.words,
    "show_actions": lambda r, o, k, w: r.words(o, k, w, empty=True),
    "harmless_actions": lambda r, o, k, w: r.words(o, k, w, empty=True),
    "skip_variable": _Reader.variable,
    "run_value": _Reader.value,
}
_VM: Mapping[str, _Field] = {"command": _Reader.command_at, "switches": _switches}
_RAILS: Mapping[str, _Field] = {
    "migrate_commands": _migrate_commands,
    "skip_variable": _Reader.variable,
}
SECTIONS = ("kubernetes", "vm", "rails", "harmless")
"""The keys of `toolchain:`."""


def _kubernetes(reader: _Reader, node: Mapping[str, Any]) -> KubernetesExecutor:
    what = "toolchain.kubernetes"
    values = _fields(reader, node, _KUBERNETES, what)
    wait = DEFAULT.kubernetes.wait
    if "wait" in node:
        wait_node = reader.mapping(node, "wait", f"{what}.wait", tuple(_WAIT))
        if wait_node is not None:
            wait = replace(wait, **_fields(reader, wait_node, _WAIT, f"{what}.wait"))
    executor = replace(DEFAULT.kubernetes, **values, wait=wait)

    def clash(first: str, second: str, message: str, hint: str) -> None:
        # At the key this file wrote (the defaults never clash with each other).
        key = second if second in node else first
        reader.error(value_loc(reader.path, node, key), message, hint)

    flags: dict[str, str] = {}
    for key in ("environment_flag", "stage_flag", "dry_run_flag"):
        flag = getattr(executor, key)
        if flag in flags:
            clash(
                flags[flag],
                key,
                f"{what}.{key} is {flag!r}, the same as {what}.{flags[flag]}",
                "each flag must be a word of its own",
            )
        flags.setdefault(flag, key)
    actions: dict[str, str] = {}
    for key in ("apply_actions", "show_actions", "harmless_actions"):
        for action in getattr(executor, key):
            if action in actions and actions[action] != key:
                clash(
                    actions[action],
                    key,
                    f"action {action!r} is in {what}.{key} and in {what}.{actions[action]}",
                    "an action applies the chart, shows it, or is harmless: name it in one list",
                )
            actions.setdefault(action, key)
    return executor


def read_toolchain(path: str, owner: Any, problems: list[Problem]) -> Toolchain:
    """The toolchain of a `toolchain:` section (`owner["toolchain"]`), over the defaults."""
    reader = _Reader(path, problems)
    before = len(problems)
    node = reader.mapping(owner, "toolchain", "toolchain", SECTIONS)
    if node is None:
        return DEFAULT
    toolchain = DEFAULT
    if "kubernetes" in node:
        section = reader.mapping(node, "kubernetes", "toolchain.kubernetes", (*_KUBERNETES, "wait"))
        if section is not None:
            toolchain = replace(toolchain, kubernetes=_kubernetes(reader, section))
    if "vm" in node:
        section = reader.mapping(node, "vm", "toolchain.vm", tuple(_VM))
        if section is not None:
            toolchain = replace(
                toolchain, vm=replace(VmExecutor(), **_fields(reader, section, _VM, "toolchain.vm"))
            )
    if "rails" in node:
        section = reader.mapping(node, "rails", "toolchain.rails", tuple(_RAILS))
        if section is not None:
            toolchain = replace(
                toolchain,
                rails=replace(Rails(), **_fields(reader, section, _RAILS, "toolchain.rails")),
            )
    if "harmless" in node:
        harmless = reader.words(node, "harmless", "toolchain.harmless", empty=True)
        if harmless is not None:
            toolchain = replace(toolchain, harmless=harmless)
    if len(problems) == before:
        # Only a section that reads cleanly: a refused command keeps its default, which may
        # collide where the team's own command would not.
        for collision in _ambiguous(toolchain):
            mapping, key = _offending_key(node, collision) or (owner, "toolchain")
            reader.error(value_loc(path, mapping, key), collision.message(), collision.hint())
    return toolchain


# --- roles a job's calls must tell apart --------------------------------------------------

_PROBE = MappingProxyType(
    {"environment": "gstg", "database": "main", "stage": "main", "timeout": "3600"}
)
"""Placeholder values for the calls rendered to probe recognition."""


@dataclass(frozen=True)
class _Role:
    """One command of the toolchain, as the analysis recognises it and as render writes it."""

    key: tuple[str, ...]
    """Its keys under `toolchain:`."""
    title: str
    """What it writes, as a sentence's subject ("the k-ctl call")."""
    read_as: str
    """What another role's call would be taken for ("a k-ctl call")."""
    words: tuple[str, ...]
    calls: tuple[tuple[str, ...], ...]
    """What render writes for it (placeholders filled in with `_PROBE`)."""
    by_prefix: bool
    """k-ctl and the VM tooling: a command is a call when it starts with `words` (its first
    word by base name), or, for a command of several words, when its program is the base
    name of the last one (`bundle exec k-ctl` recognises `k-ctl ...` too). The wait: when
    its program is the first word's base name and the other words appear in order among
    the arguments (pdmpolicy/gitlab/effects.py, `_prefix_rest` and `is_wait_command`)."""

    @property
    def name(self) -> str:
        return "toolchain." + ".".join(self.key)

    def recognises(self, call: Sequence[str]) -> bool:
        """Whether `call` reads as a call of this role. Programs compare by base name, as
        written; in the other words a placeholder matches any word."""
        program = _base(call[0])
        if self.by_prefix:
            rest = self.words[1:]
            if (
                _base(self.words[0]) == program
                and len(call) > len(rest)
                and all(_word_matches(w, c) for w, c in zip(rest, call[1:], strict=False))
            ):
                return True
            return len(self.words) > 1 and _base(self.words[-1]) == program
        if _base(self.words[0]) != program:
            return False
        wanted = list(self.words[1:])
        for word in call[1:]:
            if wanted and _word_matches(wanted[0], word):
                wanted.pop(0)
        return not wanted


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _word_matches(pattern: str, word: str) -> bool:
    return match_words((pattern,), (word,)) is not None


@dataclass(frozen=True)
class _Collision:
    """`call`, written for `written`, also reads as a call of `reads_as`; `first` and
    `second` are the two roles in the order of the section (k-ctl, wait, VM)."""

    written: _Role
    reads_as: _Role
    call: tuple[str, ...]
    first: _Role
    second: _Role

    def message(self) -> str:
        first, second = self.first, self.second
        return (
            f"{second.name} and {first.name} both call {_base(self.call[0])!r}: "
            f"{self.written.title} {shlex.join(self.call)!r} would also read as "
            f"{self.reads_as.read_as}, so a job's calls could not be told apart"
        )

    def hint(self) -> str:
        return (
            "give each its own program, or make the words after the program differ "
            "(a subcommand each, such as 'deploy k8s' and 'deploy vms')"
        )


def _roles(toolchain: Toolchain) -> list[_Role]:
    kubernetes = toolchain.kubernetes
    actions = (*kubernetes.apply_actions, *kubernetes.show_actions, *kubernetes.harmless_actions)
    calls = tuple(
        kubernetes.call_words("gstg", stage, dry_run, action, _PROBE)
        for action in actions
        for dry_run in (False, True)
        for stage in names.KCTL_STAGES
    )
    roles = [
        _Role(
            ("kubernetes", "command"),
            "the k-ctl call",
            "a k-ctl call",
            kubernetes.command,
            calls,
            True,
        )
    ]
    wait = kubernetes.wait
    if wait.style == "command":  # style input runs no command of its own
        roles.append(
            _Role(
                ("kubernetes", "wait", "command"),
                "the wait step",
                "the wait step",
                wait.command,
                (wait.step({**_PROBE, "timeout": str(wait.default_timeout)}),),
                False,
            )
        )
    vm = toolchain.vm
    roles.append(
        _Role(
            ("vm", "command"),
            "the VM executor call",
            "a VM executor call",
            vm.command,
            (vm.call_words(_PROBE),),
            True,
        )
    )
    return roles


def _ambiguous(toolchain: Toolchain) -> list[_Collision]:
    """One collision per pair of roles of which one renders a call the other recognises."""
    roles = _roles(toolchain)
    found: list[_Collision] = []
    seen: set[frozenset[tuple[str, ...]]] = set()
    for written in roles:
        for reads_as in roles:
            pair = frozenset((written.key, reads_as.key))
            if reads_as is written or pair in seen:
                continue
            call = next((c for c in written.calls if reads_as.recognises(c)), None)
            if call is not None:
                seen.add(pair)
                first, second = sorted((written, reads_as), key=roles.index)
                found.append(_Collision(written, reads_as, call, first, second))
    return found


def _offending_key(node: Any, collision: _Collision) -> tuple[Any, str] | None:
    """The mapping and key to point at: the later of the two roles' keys this file wrote
    (the wait's `style:` when only it turned the default wait command on)."""
    candidates = [collision.second.key, collision.first.key]
    if ("kubernetes", "wait", "command") in candidates:
        candidates.append(("kubernetes", "wait", "style"))
    for keys in candidates:
        owner = node
        for key in keys[:-1]:
            owner = owner.get(key) if isinstance(owner, Mapping) else None
        if isinstance(owner, Mapping) and keys[-1] in owner:
            return owner, keys[-1]
    return None  # the defaults never collide: a collision involves a key written here


def section(toolchain: Toolchain) -> dict[str, Any]:
    """`toolchain` as the `toolchain:` section that reads back to it (every key written;
    commands as shell-quoted strings, which split back into the same words)."""
    kubernetes = toolchain.kubernetes
    wait = kubernetes.wait
    return {
        "kubernetes": {
            "command": shlex.join(kubernetes.command),
            "environment_flag": kubernetes.environment_flag,
            "stage_flag": kubernetes.stage_flag,
            "dry_run_flag": kubernetes.dry_run_flag,
            "apply_actions": list(kubernetes.apply_actions),
            "show_actions": list(kubernetes.show_actions),
            "harmless_actions": list(kubernetes.harmless_actions),
            "skip_variable": kubernetes.skip_variable,
            "run_value": kubernetes.run_value,
            "wait": {
                "style": wait.style,
                "variable": wait.variable,
                "value": wait.value,
                "command": shlex.join(wait.command),
                "default_timeout": names.format_duration(wait.default_timeout),
            },
        },
        "vm": {
            "command": shlex.join(toolchain.vm.command),
            "switches": dict(toolchain.vm.switches),
        },
        "rails": {
            "migrate_commands": [shlex.join(words) for words in toolchain.rails.migrate_commands],
            "skip_variable": toolchain.rails.skip_variable,
        },
        "harmless": list(toolchain.harmless),
    }
