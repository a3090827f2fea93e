"""Correlated `rules:`: which combinations of outcomes the pipeline variables allow.

Jobs whose rules test the same pipeline variables are not independent: a rule on
`$ENVIRONMENT == "gprd"` and one on `$ENVIRONMENT == "gstg"` never both match, so a gprd job
and a gstg job are never both in one pipeline. This module evaluates `rules:if` expressions
over an abstract assignment of the pipeline variables, so the prover decides only the
combinations of outcomes some assignment gives.

Conservative by construction (it may allow combinations no real assignment gives, never
the reverse):
- Each variable takes one of the strings it is compared with anywhere in the pipeline, or
  another non-empty string, or the empty string, or no value: equality, inequality, `null`
  and presence tests are decided exactly on that partition.
- A comparison this reading cannot decide is an independent yes/no *atom*: a regular
  expression match (`=~`, `!~`) or a comparison of two variables (one atom per expression
  text, the same in every job, as pipeline variables are), a variable the YAML defines for
  the job (its value there is the YAML's unless a pipeline variable overrides it: one atom
  per job and expression), and `changes:`/`exists:` (one atom per rule).
- An expression that does not parse makes the job's outcomes independent of everything.

Syntax: GitLab's `rules:if` expressions
(https://docs.gitlab.com/ci/jobs/job_rules/#cicd-variable-expressions): `$VAR`, `==`,
`!=`, `=~`, `!~`, `null`, quoted strings, `/regex/`, `&&` (binding tighter), `||` and
parentheses.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pdmpolicy.gitlab.pipeline import CiJob, Pipeline

OTHER = "\x00other"
"""A non-empty value compared with nowhere."""
EMPTY = ""
UNSET = "\x00unset"

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
      | "(?P<dq>[^"]*)"
      | '(?P<sq>[^']*)'
      | (?P<regex>/(?:\\.|[^/\\])*/[a-z]*)
      | (?P<null>null\b)
      | (?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    )""",
    re.VERBOSE,
)

# Expression trees: ("or", [..]), ("and", [..]), ("atom", key), ("is", var, values, negate),
# ("const", bool). `is`: the variable's abstract value is in `values` (xor negate).
Node = tuple[object, ...]


class Unreadable(Exception):
    """An expression this reader does not understand."""


@dataclass(frozen=True)
class _Operand:
    kind: str  # "var", "str", "null", "regex"
    text: str


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unreadable(text)
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in ("dq", "sq"):
            kind = "str"
        elif kind == "var":
            value = value.strip("${}")
        found.append((kind, value))
    return found


class _Parser:
    def __init__(self, text: str, yaml_defined: frozenset[str], job: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.yaml_defined = yaml_defined
        self.job = job
        self.constants: dict[str, set[str]] = {}

    def parse(self) -> Node:
        node = self._or()
        if self.position != len(self.tokens):
            raise Unreadable("trailing tokens")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise Unreadable("unexpected end")
        self.position += 1
        return token

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek() == ("op", "||"):
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def _and(self) -> Node:
        parts = [self._primary()]
        while self._peek() == ("op", "&&"):
            self._take()
            parts.append(self._primary())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def _primary(self) -> Node:
        if self._peek() == ("op", "("):
            self._take()
            node = self._or()
            if self._take() != ("op", ")"):
                raise Unreadable("unbalanced parenthesis")
            return node
        left = self._operand()
        token = self._peek()
        if token is None or token[0] != "op" or token[1] not in ("==", "!=", "=~", "!~"):
            if left.kind != "var":
                raise Unreadable("a value alone")
            return self._presence(left.text)
        operator = self._take()[1]
        right = self._operand()
        return self._compare(left, operator, right)

    def _operand(self) -> _Operand:
        kind, value = self._take()
        if kind not in ("var", "str", "null", "regex"):
            raise Unreadable(f"expected a value, found {value}")
        return _Operand(kind, value)

    def _presence(self, var: str) -> Node:
        if var in self.yaml_defined:
            return ("atom", (self.job, var))
        return ("is", var, frozenset([EMPTY, UNSET]), True)

    def _compare(self, left: _Operand, operator: str, right: _Operand) -> Node:
        if left.kind != "var" and right.kind == "var":
            left, right = right, left
        negate = operator in ("!=", "!~")
        if left.kind != "var":
            if operator in ("=~", "!~"):
                raise Unreadable("a match without a variable")
            same = (left.kind, left.text) == (right.kind, right.text)
            return ("const", same != negate)
        text = f"${left.text} {operator} {right.kind}:{right.text}"
        if left.text in self.yaml_defined:
            return ("atom", (self.job, text))
        if operator in ("=~", "!~") or right.kind == "var":
            if right.kind == "var" and right.text in self.yaml_defined:
                return ("atom", (self.job, text))
            key = ("match" if operator in ("=~", "!~") else "vars", left.text, right.text)
            node: Node = ("atom", key)
            return ("not", node) if negate else node
        if right.kind == "null":
            return ("is", left.text, frozenset([UNSET]), negate)
        if right.kind == "str":
            if right.text == "":
                return ("is", left.text, frozenset([EMPTY]), negate)
            self.constants.setdefault(left.text, set()).add(right.text)
            return ("is", left.text, frozenset([right.text]), negate)
        raise Unreadable(f"cannot compare with {right.text}")


def _evaluate(node: Node, values: Mapping[object, object]) -> bool:
    kind = node[0]
    if kind == "is":
        _, var, accepted, negate = node
        return (values[var] in accepted) != negate  # type: ignore[operator]
    if kind == "atom":
        return bool(values[node[1]])
    if kind == "not":
        return not _evaluate(node[1], values)  # type: ignore[arg-type]
    if kind == "const":
        return bool(node[1])
    parts: Sequence[Node] = node[1]  # type: ignore[assignment]
    if kind == "and":
        return all(_evaluate(part, values) for part in parts)
    return any(_evaluate(part, values) for part in parts)


def _support(node: Node, into: set[object]) -> None:
    kind = node[0]
    if kind in ("is", "atom"):
        into.add(node[1])
    elif kind == "not":
        _support(node[1], into)  # type: ignore[arg-type]
    elif kind in ("and", "or"):
        for part in node[1]:  # type: ignore[attr-defined]
            _support(part, into)


@dataclass(frozen=True)
class JobRules:
    """A job's `rules:` as a function of the pipeline variables."""

    cases: tuple[tuple[Node | None, int], ...]
    """(condition, choice) in order; None: always matches."""
    otherwise: int | None
    """The choice when no case matches (the job is not added)."""
    support: frozenset[object]
    """The variables and atoms the outcome depends on."""

    def choice(self, values: Mapping[object, object]) -> int | None:
        for condition, choice in self.cases:
            if condition is None or _evaluate(condition, values):
                return choice
        return self.otherwise


class Conditions:
    """The pipeline's jobs' rules, readable ones only, and the variables' abstract values."""

    MAX_ASSIGNMENTS = 4096
    """Assignments enumerated for one set of jobs; beyond it they are taken independent."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.rules: dict[int, JobRules] = {}
        constants: dict[str, set[str]] = {}
        for index, job in enumerate(pipeline.jobs):
            if not job.rule_cases or len(job.choices) < 2:
                continue
            read = _read(pipeline, index, job, constants)
            if read is not None:
                self.rules[index] = read
        self.domains: dict[object, tuple[object, ...]] = {}
        for rules in self.rules.values():
            for key in rules.support:
                if isinstance(key, str):
                    extra = tuple(sorted(constants.get(key, ())))
                    self.domains[key] = (*extra, OTHER, EMPTY, UNSET)
                else:
                    self.domains[key] = (False, True)

    def combinations(self, jobs: Sequence[int]) -> Iterator[dict[object, object]] | None:
        """Every assignment of the variables and atoms `jobs`' readable rules depend on;
        None when there are too many."""
        support: set[object] = set()
        for job in jobs:
            if job in self.rules:
                support |= self.rules[job].support
        keys = sorted(support, key=repr)
        count = 1
        for key in keys:
            count *= len(self.domains[key])
        if count > self.MAX_ASSIGNMENTS:
            return None
        return (
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(self.domains[k] for k in keys))
        )

    def outcomes(self, choice_variants: Sequence[Sequence[int]]) -> set[tuple[int, ...]] | None:
        """The variants of the readable jobs (in index order) some assignment gives; None
        when there are too many assignments to enumerate."""
        read = sorted(self.rules)
        assignments = self.combinations(read)
        if assignments is None:
            return None
        found: set[tuple[int, ...]] = set()
        for values in assignments:
            full = self.complete(values)
            found.add(tuple(choice_variants[j][self.rules[j].choice(full) or 0] for j in read))
        return found

    def complete(self, values: Mapping[object, object]) -> dict[object, object]:
        """`values` with every other variable unset and every other atom false."""
        full: dict[object, object] = {
            key: (UNSET if isinstance(key, str) else False) for key in self.domains
        }
        full.update(values)
        return full


def _read(
    pipeline: Pipeline, index: int, job: CiJob, constants: dict[str, set[str]]
) -> JobRules | None:
    yaml_defined = frozenset(v.name for v in (*pipeline.inherited_variables(job), *job.variables))
    cases: list[tuple[Node | None, int]] = []
    support: set[object] = set()
    found: dict[str, set[str]] = {}
    for number, case in enumerate(job.rule_cases):
        if not 0 <= case.choice < len(job.choices):
            return None
        condition: Node | None = None
        if case.if_ is not None:
            parser = _Parser(case.if_, yaml_defined, job.name)
            try:
                condition = parser.parse()
            except Unreadable:
                return None
            for var, values in parser.constants.items():
                found.setdefault(var, set()).update(values)
        if case.other:
            atom: Node = ("atom", (job.name, "changes/exists", number))
            condition = atom if condition is None else ("and", [condition, atom])
        if condition is not None:
            _support(condition, support)
        cases.append((condition, case.choice))
    never = next((i for i, c in enumerate(job.choices) if c.when == "never"), None)
    if never is None and (not cases or cases[-1][0] is not None):
        return None  # "no rule matched" has no outcome: not the loader's reading
    for var, values in found.items():
        constants.setdefault(var, set()).update(values)
    return JobRules(tuple(cases), never, frozenset(support))


def constant_condition(text: str) -> bool | None:
    """The value of a `rules:if` expression that tests no variable (`"a" == "a"`), None
    when it tests one or does not parse: its value is known only when a pipeline is
    created."""
    try:
        node = _Parser(text, frozenset(), "").parse()
    except Unreadable:
        return None
    support: set[object] = set()
    _support(node, support)
    if support:
        return None
    return _evaluate(node, {})
