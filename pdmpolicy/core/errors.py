"""Bad input: one error type, shown as `file:line:col: message` plus a hint, exit 2.

Anything else that escapes is a bug in pdmpolicy and is reported as one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` on one line, control characters escaped (`\\n`, `\\x1b`): a value quoted in a
    message cannot start a forged line of output or drive the reader's terminal."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


@record(order=True)
class Problem:
    """One thing wrong with an input file."""

    loc: Loc
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{printable(str(self.loc))}: error: {printable(self.message)}"
        if self.hint:
            text += f"\n  hint: {printable(self.hint)}"
        return text


class InputError(Exception):
    """The input cannot be used; carries every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, loc: Loc, message: str, hint: str = "") -> InputError:
        return cls([Problem(loc, message, hint)])


class UsageError(Exception):
    """The command line is wrong (exit 2)."""
