"""Reading job scripts with shell rules: which programs run, with which environment.

Only the little of POSIX sh that decides what a PDM job does: quoting, comments, line
breaks, `;`, `&&`, `||`, `|`, `&`, redirections, leading `VAR=value` assignments,
`env [-i] [-u NAME] [NAME=value] cmd`, `export`, `unset`, `sh -c` / `bash -c` strings,
command substitutions, the reserved words that open compound commands (`if`, `then`, `do`,
...), and wrappers that run the rest of their arguments (`exec`, `command`, `nohup`, `time`,
`timeout`, `nice`). Everything else is treated as an opaque command.

A command hidden from this reader is an executor the policies never see, so where the shell
is ambiguous the reader over-approximates: every branch of `&&`, `||` and `if` runs, and the
body of a function or a here-document counts as commands. An assignment without `export`
(`NAME=value` alone) is not counted as reaching later processes: it does only when NAME came
from the environment, which the script cannot tell.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pdmpolicy.core.location import Loc

_SHELLS = {"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh"}
_SEPARATORS = ("&&", "||", ";;", "|&", ";", "&", "|", "(", ")", "\n")
_REDIRECTS = ("&>>", "&>", "<<<", "<<-", "<<", ">>", ">&", "<&", "<>", ">|", ">", "<")
_OPENERS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done"}
"""Reserved words that may stand before a simple command (or alone), not programs."""
_HEADERS = {"for", "case", "select", "esac", "function"}
"""Reserved words whose line is a header, not a command (`for x in a b`)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT = "{output}"
"""What a word holds where the script substitutes a command's output (inert to a shell)."""


_PLAIN_RUN = re.compile(r"[^ \t#\\'\"`$<>&;|()\n]+")
"""Characters `scan` takes as they are: none opens a quote, an expansion or an operator."""
_QUOTED_RUN = re.compile(r"[^\\$`]+")
"""Characters a double-quoted string holds as they are."""


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
    word: str = field(default="", compare=False)
    """The program as written (`./bin/k-ctl`, `$TOOL`): a path to read, or a word the script
    computes at run time."""


class ShellSyntaxError(ValueError):
    """A script line the shell itself would reject (unbalanced quotes or parentheses)."""


_MAX_NESTING = 16
"""Quotes, substitutions and `sh -c` inside each other: real scripts use two or three."""


def _check_depth(depth: int) -> None:
    if depth > _MAX_NESTING:
        raise ShellSyntaxError(f"commands nested more than {_MAX_NESTING} deep")


@dataclass(frozen=True)
class _Word:
    text: str
    plain: int
    """How many leading characters were written without quotes or escapes."""

    @property
    def is_plain(self) -> bool:
        return self.plain == len(self.text)


@dataclass(frozen=True)
class _Redirect:
    operator: str


_Token = _Word | _Redirect | str


def _closing(text: str, start: int, close: str, depth: int = 0) -> int:
    """Index of the `)` or `}` that closes the group opened just before `start`."""
    _check_depth(depth)
    opener = "(" if close == ")" else "{"
    open_groups = 1
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "'" and close == ")":
            end = text.find("'", index + 1)
            if end < 0:
                raise ShellSyntaxError("No closing quotation")
            index = end + 1
            continue
        if char == '"':
            index = _double_quoted_end(text, index + 1, depth + 1)
            continue
        if char == opener:
            open_groups += 1
        elif char == close:
            open_groups -= 1
            if open_groups == 0:
                return index
        index += 1
    raise ShellSyntaxError(f"No closing '{close}'")


def _double_quoted_end(text: str, start: int, depth: int = 0) -> int:
    """Index just past the `"` that ends a double-quoted string starting at `start`."""
    _check_depth(depth)
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
        elif char == '"':
            return index + 1
        elif text.startswith("$(", index):
            index = _closing(text, index + 2, ")", depth + 1) + 1
        elif text.startswith("${", index):
            index = _closing(text, index + 2, "}", depth + 1) + 1
        elif char == "`":
            end = _backquote_end(text, index + 1)
            index = end + 1
        else:
            index += 1
    raise ShellSyntaxError("No closing quotation")


def _backquote_end(text: str, start: int) -> int:
    index = start
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == "`":
            return index
        else:
            index += 1
    raise ShellSyntaxError("No closing backquote")


class _Scanner:
    """Splits one script line into words, operators and redirections (POSIX token rules)."""

    def __init__(self, text: str, depth: int = 0) -> None:
        _check_depth(depth)
        self.text = text
        self.depth = depth
        self.tokens: list[_Token] = []
        self.substitutions: list[str] = []
        """The scripts of `$(...)`, backquotes and `<(...)`: they run too."""
        self.chars: list[str] = []
        self.plain: int | None = None
        self.in_word = False

    def quoted(self, chars: str) -> None:
        if self.plain is None:
            self.plain = len("".join(self.chars))
        self.chars.append(chars)
        self.in_word = True

    def plain_chars(self, chars: str) -> None:
        self.chars.append(chars)
        self.in_word = True

    def end_word(self) -> None:
        if self.in_word:
            text = "".join(self.chars)
            self.tokens.append(_Word(text, len(text) if self.plain is None else self.plain))
        self.chars = []
        self.plain = None
        self.in_word = False

    def substitution(self, index: int) -> int:
        """`$(...)`, `$((...))`, `${...}` or a backquote at `index`; returns where it ends.

        A command's output is unknown here: the word holds a placeholder instead, so a script
        handed on to `sh -c` does not run the substituted command a second time.
        """
        text = self.text
        if text.startswith(("$((", "${"), index):
            end = _closing(text, index + 2, ")" if text[index + 1] == "(" else "}") + 1
            inner = _Scanner(text[index + 2 : end - 1], self.depth + 1)
            inner.scan()
            self.substitutions.extend(inner.substitutions)
            self.quoted(OUTPUT if inner.substitutions else text[index:end])
            return end
        if text.startswith("$(", index):
            end = _closing(text, index + 2, ")") + 1
            self.substitutions.append(text[index + 2 : end - 1])
        else:
            end = _backquote_end(text, index + 1) + 1
            self.substitutions.append(re.sub(r"\\([\\`$])", r"\1", text[index + 1 : end - 1]))
        self.quoted(OUTPUT)
        return end

    def double_quoted(self, index: int) -> int:
        text = self.text
        end = _double_quoted_end(text, index + 1)
        inner = index + 1
        parts: list[str] = []
        while inner < end - 1:
            char = text[inner]
            if char == "\\" and text[inner + 1] in '$`"\\\n':
                if text[inner + 1] != "\n":
                    parts.append(text[inner + 1])
                inner += 2
            elif text.startswith("$(", inner) or char == "`" or text.startswith("${", inner):
                self.quoted("".join(parts))
                parts = []
                inner = self.substitution(inner)
            else:
                run = _QUOTED_RUN.match(text, inner, end - 1)
                chars = run.group() if run else char
                parts.append(chars)
                inner += len(chars)
        self.quoted("".join(parts))
        return end

    def scan(self) -> list[_Token]:
        text = self.text
        index = 0
        while index < len(text):
            char = text[index]
            if char in " \t":
                self.end_word()
                index += 1
            elif char == "#" and not self.in_word:
                newline = text.find("\n", index)
                index = len(text) if newline < 0 else newline
            elif char == "\\":
                if text.startswith("\\\n", index):
                    index += 2  # a line continuation joins the lines
                else:
                    self.quoted(text[index + 1 : index + 2])
                    index += 2
            elif char == "'":
                end = text.find("'", index + 1)
                if end < 0:
                    raise ShellSyntaxError("No closing quotation")
                self.quoted(text[index + 1 : end])
                index = end + 1
            elif char == '"':
                index = self.double_quoted(index)
            elif char == "`" or (char == "$" and text[index + 1 : index + 2] in ("(", "{")):
                index = self.substitution(index)
            elif char in "<>" and text[index + 1 : index + 2] == "(":
                end = _closing(text, index + 2, ")") + 1
                self.substitutions.append(text[index + 2 : end - 1])
                self.quoted(OUTPUT)
                index = end
            elif char in "<>" or (char == "&" and text.startswith("&>", index)):
                if self.in_word and self.plain is None and "".join(self.chars).isdigit():
                    self.chars, self.in_word = [], False  # the file descriptor number
                self.end_word()
                operator = next(op for op in _REDIRECTS if text.startswith(op, index))
                self.tokens.append(_Redirect(operator))
                index += len(operator)
            elif char in ";&|()\n":
                self.end_word()
                operator = next(op for op in _SEPARATORS if text.startswith(op, index))
                self.tokens.append(operator)
                index += len(operator)
            else:
                # A run of ordinary characters at once (a `#` inside a word, or a `$` that
                # opens nothing, is one character of its own).
                run = _PLAIN_RUN.match(text, index)
                chars = run.group() if run else char
                self.plain_chars(chars)
                index += len(chars)
        self.end_word()
        return self.tokens


def _simple_commands(tokens: Sequence[_Token]) -> Iterator[list[_Word]]:
    """Words of each simple command, redirections and their targets removed."""
    current: list[_Word] = []
    target = False
    for token in tokens:
        if isinstance(token, _Redirect):
            target = True
        elif isinstance(token, _Word):
            if target:
                target = False
            else:
                current.append(token)
        else:
            target = False
            if current:
                yield current
            current = []
    if current:
        yield current


def _assignment(word: _Word) -> tuple[str, str] | None:
    name, eq, value = word.text.partition("=")
    if eq and word.plain > len(name) and _NAME.fullmatch(name):
        return name, value
    return None


def _base(program: str) -> str:
    return program.rsplit("/", 1)[-1]


@dataclass
class _State:
    exported: dict[str, str] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)
    shell: dict[str, str] = field(default_factory=dict)
    """Assigned without export: reaches children only after `export NAME`."""


def _export(args: list[str], state: _State) -> None:
    unexport = "-n" in args
    for word in args:
        if word.startswith("-"):
            continue
        name, eq, value = word.partition("=")
        if unexport:
            if name in state.exported:
                state.shell[name] = state.exported.pop(name)
            state.unset.add(name)
        elif eq:
            state.exported[name] = value
            state.shell.pop(name, None)
            state.unset.discard(name)
        elif name in state.shell:
            state.exported[name] = state.shell.pop(name)
            state.unset.discard(name)


def _unset(args: list[str], state: _State) -> None:
    if "-f" in args:
        return  # functions, not variables
    for name in args:
        if not name.startswith("-"):
            state.unset.add(name)
            state.exported.pop(name, None)
            state.shell.pop(name, None)


@dataclass
class _Process:
    """What a command line starts: program, arguments and environment, as it is unwrapped."""

    program: str
    args: list[str]
    assigned: dict[str, str]
    stripped: set[str]
    clean: bool = False
    word: str = ""

    def next_program(self, position: int) -> bool:
        """Make args[position] the program; False when there is none."""
        if position >= len(self.args):
            return False
        self.word = self.args[position]
        self.program = _base(self.args[position])
        self.args = self.args[position + 1 :]
        return True

    def set(self, name: str, value: str) -> None:
        self.assigned[name] = value
        self.stripped.discard(name)

    def strip(self, name: str) -> None:
        self.stripped.add(name)
        self.assigned.pop(name, None)

    def env(self) -> bool:
        """`env [options] [NAME=value]... program args`; False when env runs nothing."""
        args = self.args
        position = 0
        while position < len(args):
            word = args[position]
            if word in ("-i", "--ignore-environment", "-"):
                self.clean = True
                self.assigned = {}
            elif word in ("-u", "--unset") and position + 1 < len(args):
                position += 1
                self.strip(args[position])
            elif word.startswith("--unset="):
                self.strip(word.split("=", 1)[1])
            elif word.startswith("-u") and len(word) > 2 and not word.startswith("--"):
                self.strip(word[2:])
            elif word in ("-C", "--chdir", "-P") and position + 1 < len(args):
                position += 1  # options taking an argument
            elif word in ("-S", "--split-string") and position + 1 < len(args):
                split = _Scanner(args[position + 1]).scan()
                words = [t.text for t in split if isinstance(t, _Word)]
                self.args = args[:position] + words + args[position + 2 :]
                args = self.args
                continue
            elif word == "--":
                position += 1
                break
            elif "=" in word and _NAME.fullmatch(word.partition("=")[0]):
                name, _, value = word.partition("=")
                self.set(name, value)
            elif word.startswith("-"):
                pass  # other options (-0, -v, --debug) do not change what we track
            else:
                break
            position += 1
        return self.next_program(position)

    def unwrap(self) -> bool:
        """Step past a wrapper (`exec`, `timeout 3h`, ...) to the program it runs.

        Returns False when the wrapper runs nothing; leaves non-wrappers alone.
        """
        args = self.args
        position = 0
        if self.program == "exec":
            while position < len(args) and args[position].startswith("-"):
                if args[position] == "-a":
                    position += 1
                elif "c" in args[position]:
                    self.clean = True
                    self.assigned = {}
                position += 1
        elif self.program == "command":
            while position < len(args) and args[position].startswith("-"):
                if args[position] != "-p":
                    return False  # `command -v k-ctl` looks the program up, runs nothing
                position += 1
        elif self.program == "time":
            while position < len(args) and args[position].startswith("-"):
                position += 1
        elif self.program == "nice":
            while position < len(args) and args[position].startswith("-"):
                position += 2 if args[position] == "-n" else 1
        elif self.program == "timeout":
            while position < len(args) and args[position].startswith("-"):
                position += 2 if args[position] in ("-s", "-k") else 1
            position += 1  # the duration
        elif self.program == "nohup":
            position = 1 if args[:1] == ["--"] else 0
        return self.next_program(position)

    def shell_script(self) -> str | None:
        """The script of `sh -c SCRIPT` (also `-ec`, `-o pipefail -c`); None otherwise."""
        if self.program not in _SHELLS:
            return None
        has_c = False
        position = 0
        args = self.args
        while position < len(args):
            word = args[position]
            if word == "--":
                position += 1
                break
            if word in ("-o", "+o", "-O", "+O"):
                position += 2
                continue
            if word.startswith("--"):
                position += 1
                continue
            if len(word) > 1 and word[0] in "-+":
                has_c = has_c or (word[0] == "-" and "c" in word[1:])
                position += 1
                continue
            break
        if not has_c:
            return None
        return args[position] if position < len(args) else ""


_WRAPPERS = {"exec", "command", "time", "nice", "timeout", "nohup"}


def _command(
    words: list[_Word], state: _State, loc: Loc, text: str, depth: int
) -> Iterator[Command]:
    while words and words[0].is_plain and words[0].text in _OPENERS:
        words = words[1:]
    if not words or (words[0].is_plain and words[0].text in _HEADERS):
        return
    process = _Process("", [], dict(state.exported), set(state.unset))
    index = 0
    while index < len(words):
        assignment = _assignment(words[index])
        if assignment is None:
            break
        process.set(*assignment)
        index += 1
    if index == len(words):
        # Bare assignments set shell variables; exported ones change the exported value.
        for word in words:
            name, value = _assignment(word) or ("", "")
            if name in state.exported:
                state.exported[name] = value
            else:
                state.shell[name] = value
        return
    process.word = words[index].text
    process.program = _base(words[index].text)
    process.args = [word.text for word in words[index + 1 :]]
    if process.program == "export":
        _export(process.args, state)
        return
    if process.program == "unset":
        _unset(process.args, state)
        return
    while process.program == "env" or process.program in _WRAPPERS:
        running = process.env() if process.program == "env" else process.unwrap()
        if not running:
            return
    script = process.shell_script()
    if script is not None:
        inner = _State(dict(process.assigned), set(process.stripped))
        for command in _line_commands(script, inner, loc, text, depth + 1):
            yield Command(
                command.program,
                command.args,
                command.assigned,
                command.stripped,
                command.clean_environment or process.clean,
                loc,
                text,
                command.word,
            )
        return
    yield Command(
        process.program,
        tuple(process.args),
        dict(process.assigned),
        frozenset(process.stripped),
        process.clean,
        loc,
        text,
        process.word,
    )


def _scan(line: str, depth: int) -> tuple[tuple[_Token, ...], tuple[str, ...]]:
    """The tokens of one line and the scripts it substitutes (a function of the text)."""
    scanner = _Scanner(line, depth)
    tokens = scanner.scan()
    return tuple(tokens), tuple(scanner.substitutions)


_scan_remembered = lru_cache(maxsize=2048)(_scan)
"""Lines recur across scripts (a `before_script:` every job inherits, a shared setup line):
a real 218-job pipeline runs 2,151 script lines, 138 of them distinct. Tokens are immutable,
so sharing them is safe."""


def _line_commands(line: str, state: _State, loc: Loc, text: str, depth: int) -> list[Command]:
    _check_depth(depth)
    scan = _scan_remembered if len(line) <= _CACHED_CHARS else _scan
    tokens, substitutions = scan(line, depth)
    found: list[Command] = []
    for substitution in substitutions:
        found.extend(
            _line_commands(
                substitution, _State(dict(state.exported), set(state.unset)), loc, text, depth + 1
            )
        )
    for words in _simple_commands(tokens):
        found.extend(_command(words, state, loc, text, depth))
    return found


def commands(lines: list[tuple[str, Loc]]) -> list[Command]:
    """Every simple command the script lines run, in order; raises ShellSyntaxError."""
    found, errors = read_script(lines)
    if errors:
        raise ShellSyntaxError(errors[0][1])
    return found


def read_script(
    lines: Sequence[tuple[str, Loc]],
) -> tuple[list[Command], list[tuple[Loc, str]]]:
    """Every simple command of the lines the shell can read, and where the others are.

    A line the shell rejects does not hide the commands of the lines around it.
    """
    key = tuple(lines)
    if sum(len(text) for text, _ in key) <= _CACHED_CHARS:
        found, errors = _read_lines(key)
    else:
        found, errors = _read_lines.__wrapped__(key)
    return list(found), list(errors)


_READ_CACHE_SIZE = 512
_CACHED_CHARS = 16 * 1024
"""Scripts remembered, and the longest remembered. Jobs share scripts through `extends:`,
anchors and `!reference` (a real 218-job pipeline has 56 distinct ones, none longer than
3.1 KiB), and a repository's pipelines are analysed more than once (lowering, the views), so
each is read once; the bounds keep the memory at most a few MiB whatever a file holds."""


@lru_cache(maxsize=_READ_CACHE_SIZE)
def _read_lines(
    lines: tuple[tuple[str, Loc], ...],
) -> tuple[tuple[Command, ...], tuple[tuple[Loc, str], ...]]:
    # The commands depend on the lines alone (text and place: each command keeps its line's
    # Loc), so remembering them cannot go stale; the results are immutable (frozen commands
    # whose mappings nobody writes), so sharing them is safe.
    state = _State()
    found: list[Command] = []
    errors: list[tuple[Loc, str]] = []
    for text, loc in lines:
        try:
            found.extend(_line_commands(text, state, loc, text, 0))
        except ShellSyntaxError as exc:
            errors.append((loc, str(exc)))
    return tuple(found), tuple(errors)
