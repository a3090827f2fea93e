"""Bad input: one error type, shown as `file:line:col: message` plus a hint, exit 2.

Anything else that escapes is a bug in pdmpolicy and is reported as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pdmpolicy.location import Loc


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file."""

    loc: Loc
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.loc}: error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
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
