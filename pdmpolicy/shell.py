"""Reading job scripts with shell rules: which programs run, with which environment.

Only the little of POSIX sh that decides what a PDM job does: quoting, `;`, `&&`, `||`,
`|`, leading `VAR=value` assignments, `env [-i] [-u NAME] [NAME=value] cmd`, `export`,
`unset`, and `sh -c` / `bash -c` strings. Everything else is treated as an opaque command.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pdmpolicy.location import Loc

_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ash"}


@dataclass(frozen=True)
class Command:
    """One simple command as the process sees it."""

    program: str
    """Base name of the program (`/usr/local/bin/k-ctl` -> `k-ctl`)."""
    args: tuple[str, ...]
    assigned: Mapping[str, str]
    """Variables set for this process by the script (inline, `env NAME=v`, `export`)."""
    stripped: frozenset[str]
    """Variables removed for this process (`env -u`, `unset`) and not set again after."""
    clean_environment: bool
    """`env -i`: the process inherits nothing."""
    loc: Loc
    text: str = field(compare=False)


class ShellSyntaxError(ValueError):
    """A script line the shell itself would reject (unbalanced quotes)."""


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError as exc:
        raise ShellSyntaxError(str(exc)) from None


def _split(tokens: list[str]) -> Iterator[list[str]]:
    current: list[str] = []
    for token in tokens:
        if token in _OPERATORS:
            if current:
                yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[0].isdigit()


@dataclass
class _State:
    exported: dict[str, str] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)


def _command(words: list[str], state: _State, loc: Loc, text: str) -> Iterator[Command]:
    assigned = dict(state.exported)
    stripped = set(state.unset)
    clean = False
    index = 0
    while index < len(words) and _is_assignment(words[index]):
        name, _, value = words[index].partition("=")
        assigned[name] = value
        stripped.discard(name)
        index += 1
    if index == len(words):
        # A bare assignment sets a shell variable; without export it does not reach children.
        return
    program = words[index].rsplit("/", 1)[-1]
    args = words[index + 1 :]
    if program == "export":
        for word in args:
            name, eq, value = word.partition("=")
            if eq:
                state.exported[name] = value
                state.unset.discard(name)
        return
    if program == "unset":
        for name in args:
            if not name.startswith("-"):
                state.unset.add(name)
                state.exported.pop(name, None)
        return
    if program == "env":
        position = 0
        while position < len(args):
            word = args[position]
            if word in ("-i", "--ignore-environment", "-"):
                clean = True
                assigned = {}
            elif word == "-u" and position + 1 < len(args):
                position += 1
                stripped.add(args[position])
                assigned.pop(args[position], None)
            elif word.startswith("--unset="):
                name = word.split("=", 1)[1]
                stripped.add(name)
                assigned.pop(name, None)
            elif word.startswith("-u") and len(word) > 2:
                stripped.add(word[2:])
                assigned.pop(word[2:], None)
            elif _is_assignment(word):
                name, _, value = word.partition("=")
                assigned[name] = value
                stripped.discard(name)
            elif word == "--":
                position += 1
                break
            elif word.startswith("-"):
                pass  # other env options (-0, -C dir, ...) do not change what we track
            else:
                break
            position += 1
        if position >= len(args):
            return
        program = args[position].rsplit("/", 1)[-1]
        args = args[position + 1 :]
    if program in _SHELLS and "-c" in args:
        nested = args[args.index("-c") + 1] if args.index("-c") + 1 < len(args) else ""
        inner = _State(dict(assigned), set(stripped))
        for words_inner in _split(_tokens(nested)):
            for command in _command(words_inner, inner, loc, text):
                yield Command(
                    command.program,
                    command.args,
                    command.assigned,
                    command.stripped,
                    command.clean_environment or clean,
                    loc,
                    text,
                )
        return
    yield Command(program, tuple(args), dict(assigned), frozenset(stripped), clean, loc, text)


def commands(lines: list[tuple[str, Loc]]) -> list[Command]:
    """Every simple command the script lines run, in order; raises ShellSyntaxError."""
    found, errors = read_script(lines)
    if errors:
        raise ShellSyntaxError(errors[0][1])
    return found


def read_script(
    lines: list[tuple[str, Loc]],
) -> tuple[list[Command], list[tuple[Loc, str]]]:
    """Every simple command of the lines the shell can read, and where the others are.

    A line the shell rejects does not hide the commands of the lines around it.
    """
    state = _State()
    found: list[Command] = []
    errors: list[tuple[Loc, str]] = []
    for text, loc in lines:
        try:
            for words in _split(_tokens(text)):
                found.extend(_command(words, state, loc, text))
        except ShellSyntaxError as exc:
            errors.append((loc, str(exc)))
    return found, errors
