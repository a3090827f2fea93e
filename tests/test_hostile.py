"""The hostile corpus (tests/hostile/): each input refused cleanly, quickly, in bounded memory.

Every case runs in a process of its own, forked from this one and so without the cost of
starting Python, with its address space limited (`RLIMIT_AS`: what this process uses plus
`MEMORY_BUDGET`). It must exit 2 with `file:line:col: error: ...` lines naming the expected
place and words, print nothing else (no traceback, no raw control character), and take
less than `CPU_SECONDS` of processor time. Wall-clock time is measured too and asserted
against `WALL_SECONDS`, which is far looser (it catches a hang): this machine's two cores
are often shared, and a busy machine must not fail the suite.

Environment and policy cases run through `pdmpolicy check`; GitLab CI cases through
`pdmpolicy verify` where the CLI has it, otherwise through `pdmpolicy.gitlab.load_pipelines`
(what `verify` reads with) with the CLI's printing of input errors.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pdmpolicy import cli
from pdmpolicy.core.errors import InputError
from pdmpolicy.gitlab import load_pipelines
from tests.hostile.generated import CASES as GENERATED
from tests.hostile.generated import VALID

CORPUS = Path(__file__).parent / "hostile"
KINDS = ("environments", "policies", "gitlab")
TODAY = "2026-12-01"
CPU_SECONDS = 3.0
"""Far above what any case needs (the 2,000-error file takes about 1.3 s on a 2-core machine
under load), far below what a quadratic reader would take: a bound, not a benchmark."""
WALL_SECONDS = 30.0
MEMORY_BUDGET = 512 * 1024 * 1024
PROBLEM = re.compile(r"^(?P<loc>.+:\d+:\d+): error: (?P<message>.*)$")
SUMMARY = re.compile(r"^pdmpolicy: (?P<count>\d+) input error\(s\); nothing was checked$")


@dataclass(frozen=True)
class Expect:
    where: str
    says: tuple[str, ...]
    hint: tuple[str, ...] = ()
    problems: int | None = None
    comment: str = ""


def parse_expect(text: str) -> Expect:
    """`.expect`: `# what the case is`, `where: path:line:col` of the first problem,
    `says:` words of its message and `hint:` of its hint (each repeatable), and optionally
    `problems: N`, how many are reported."""
    fields: dict[str, list[str]] = {"where": [], "says": [], "hint": [], "problems": []}
    comment = []
    for line in text.splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# "))
        elif line.strip():
            key, _, value = line.partition(": ")
            fields[key].append(value)
    (where,) = fields["where"]
    assert fields["says"], "an expectation names words of the message"
    problems = int(fields["problems"][0]) if fields["problems"] else None
    return Expect(where, tuple(fields["says"]), tuple(fields["hint"]), problems, " ".join(comment))


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    expect: Expect
    build: Callable[[Path, Path], str]


def _file_case(kind: str, source: Path) -> Case:
    def build(root: Path, outside: Path) -> str:
        if kind == "environments":
            target = "environments/gstg.yml"
        elif kind == "policies":
            (root / "environments" / "gstg.yml").write_text(VALID, encoding="utf-8")
            target = "policies/policies.yml"
        else:
            target = ".gitlab-ci.yml"
        shutil.copyfile(source, root / target)
        return target

    expect = parse_expect(source.with_suffix(".expect").read_text(encoding="utf-8"))
    return Case(f"{kind}/{source.stem}", kind, expect, build)


def corpus() -> list[Case]:
    cases = [
        _file_case(kind, source)
        for kind in KINDS
        for source in sorted((CORPUS / kind).glob("*.yml"))
    ]
    cases += [
        Case(f"generated/{name}", case.kind, parse_expect(case.expect), case.build)
        for name, case in sorted(GENERATED.items())
    ]
    return cases


CASES = corpus()


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    cpu: float
    """Processor time of the case's process, user and system."""
    wall: float
    max_rss_mib: float
    reported: list[tuple[str, str, str]] = field(default_factory=list)


def _address_space() -> int | None:
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def isolated(directory: Path, work: Callable[[], int]) -> Outcome:
    """Run `work` in a forked process in `directory`, its memory limited; what it printed,
    its exit code, the time and memory it took."""
    out_file, err_file = directory.parent / "stdout", directory.parent / "stderr"
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.chdir(directory)
            sys.stdout = out_file.open("w", encoding="utf-8")
            sys.stderr = err_file.open("w", encoding="utf-8")
            used = _address_space()
            if used is not None:
                _, hard = resource.getrlimit(resource.RLIMIT_AS)
                resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_BUDGET, hard))
            code = work()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    return Outcome(
        code,
        out_file.read_text(encoding="utf-8"),
        err_file.read_text(encoding="utf-8"),
        usage.ru_utime + usage.ru_stime,
        wall,
        usage.ru_maxrss / 1024,
    )


def _cli_commands() -> set[str]:
    parser = cli._parser()
    return {
        name
        for action in parser._actions
        if action.choices and isinstance(action.choices, dict)
        for name in action.choices
    }


def _verify(path: str) -> int:
    if "verify" in _cli_commands():
        return cli.main(["verify", path])
    try:
        load_pipelines(Path(path), Path.cwd())
    except InputError as exc:  # printed as the CLI prints input errors
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"pdmpolicy: {len(exc.problems)} input error(s); nothing was checked", file=sys.stderr
        )
        return cli.EXIT_INPUT
    return cli.EXIT_OK


def run_case(case: Case, base: Path) -> Outcome:
    root, outside = base / "repo", base / "outside"
    for directory in (root / "environments", root / "policies", outside):
        directory.mkdir(parents=True)
    target = case.build(root, outside)
    if case.kind == "gitlab":
        return isolated(root, lambda: _verify(target))
    return isolated(root, lambda: cli.main(["check", "--today", TODAY]))


def reported(err: str) -> list[tuple[str, str, str]]:
    """(place, message, hint) of each problem on stderr; every line must be one of those
    or the summary."""
    found: list[tuple[str, str, str]] = []
    lines = err.splitlines()
    for line in lines[:-1]:
        match = PROBLEM.match(line)
        if match:
            found.append((match["loc"], match["message"], ""))
        else:
            assert line.startswith("  hint: ") and found, f"unexpected line {line!r}"
            found[-1] = (found[-1][0], found[-1][1], line.removeprefix("  hint: "))
    summary = SUMMARY.match(lines[-1]) if lines else None
    assert summary and int(summary["count"]) == len(found), err[-500:]
    return found


def test_the_corpus_has_at_least_forty_cases_each_with_its_expectation() -> None:
    assert len(CASES) >= 40
    for kind in KINDS:
        inputs = {p.stem for p in (CORPUS / kind).glob("*.yml")}
        expectations = {p.stem for p in (CORPUS / kind).glob("*.expect")}
        assert inputs == expectations, kind
    assert all(case.expect.comment for case in CASES if not case.name.startswith("generated/"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_is_refused_cleanly_quickly_and_in_bounded_memory(
    case: Case, tmp_path: Path
) -> None:
    outcome = run_case(case, tmp_path)
    assert outcome.code == cli.EXIT_INPUT, (outcome.code, outcome.err[-2000:])
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err
    assert outcome.out == ""
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", outcome.err), "raw control character"
    problems = reported(outcome.err)
    first_line = outcome.err.splitlines()[0]
    # Compared as text: a location may itself hold ': error: ' (a file name can).
    assert first_line.startswith(f"{case.expect.where}: error: "), problems[:3]
    message, hint = first_line.removeprefix(f"{case.expect.where}: error: "), problems[0][2]
    for words in case.expect.says:
        assert words in message, (words, message)
    for words in case.expect.hint:
        assert words in hint, (words, hint)
    if case.expect.problems is not None:
        assert len(problems) == case.expect.problems
    assert outcome.cpu < CPU_SECONDS, f"{outcome.cpu:.2f} s of processor time"
    assert outcome.wall < WALL_SECONDS, f"{outcome.wall:.2f} s"
