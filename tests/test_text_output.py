"""The text report for people: source line and caret, colour only on a terminal, --quiet;
the first line of a finding and every machine report unchanged."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from pdmpolicy.cli.common import use_colour
from pdmpolicy.core.findings import Finding
from pdmpolicy.core.location import Loc
from pdmpolicy.policies.examples import GSTG, changed
from pdmpolicy.reports import REPORTERS, ReportInput
from pdmpolicy.reports.text import TextStyle, render_text
from tests.conftest import Repo

UNSAFE = changed(
    GSTG,
    "    timeout: 10h\n  gstg-kubernetes",
    "    timeout: 10h\n    retry: 1\n    interruptible: true\n  gstg-kubernetes",
)
FINDING_LINE = re.compile(r"^(\S+):(\d+):(\d+): (error|warning) ([a-z0-9-]+): .+$")
ANSI = "\x1b["


@pytest.fixture
def unsafe(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> Repo:
    repo.env("gstg.yml", UNSAFE)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return repo


def _check(run: Any, *args: str) -> Any:
    return run("check", "--today", "2026-11-26", *args)


def test_each_finding_shows_its_source_line_with_a_caret_under_the_column(
    unsafe: Repo, run: Any
) -> None:
    result = _check(run)
    assert result.code == 1
    source = UNSAFE.splitlines()
    lines = result.out.splitlines()
    findings = [i for i, line in enumerate(lines) if FINDING_LINE.match(line)]
    assert len(findings) == 3
    for at in findings:
        match = FINDING_LINE.match(lines[at])
        assert match, lines[at]
        number, column = int(match.group(2)), int(match.group(3))
        gutter, text = lines[at + 2].split(" | ", 1)
        assert gutter.strip() == str(number) and text == source[number - 1]
        caret_line = lines[at + 3]
        caret = caret_line.index("^") - len(gutter) - len(" | ")
        assert caret == column - 1
        assert caret_line.strip().lstrip("|").strip().strip("^") == ""
    carets = {lines[at + 2].split(" | ", 1)[1]: lines[at + 3].count("^") for at in findings}
    assert carets["    interruptible: true"] == len("true")  # the whole value is underlined
    assert lines[-1] == "3 errors, 0 warnings, 0 waived"


def test_first_lines_are_exactly_the_documented_format(unsafe: Repo, run: Any) -> None:
    """Editors and CI parse the first line; the rich report keeps it byte for byte."""
    rich = _check(run).out
    plain = _check(run, "--format", "json").out
    expected = [
        f"{f['path']}:{f['line']}:{f['column']}: {f['severity']} {f['policy']}: {f['message']}"
        for f in json.loads(plain)["findings"]
    ]
    assert [line for line in rich.splitlines() if FINDING_LINE.match(line)] == expected


def test_quiet_prints_first_lines_and_summary(unsafe: Repo, run: Any) -> None:
    result = _check(run, "--quiet")
    lines = result.out.splitlines()
    assert len(lines) == 4
    assert all(FINDING_LINE.match(line) for line in lines[:3])
    assert lines[3] == "3 errors, 0 warnings, 0 waived"
    assert result.code == 1


def test_no_colour_unless_a_terminal_or_forced(
    unsafe: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ANSI not in _check(run).out  # captured output is not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = _check(run).out
    assert ANSI in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert ANSI not in _check(run).out


def test_colour_removed_is_the_plain_report(
    unsafe: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _check(run).out
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert re.sub(r"\x1b\[[0-9;]*m", "", _check(run).out) == plain


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "environ", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
        (False, {"FORCE_COLOR": "1"}, True),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_colour_decision(tty: bool, environ: dict[str, str], expected: bool) -> None:
    assert use_colour(_Stream(tty), environ) is expected


def test_machine_reports_and_report_files_do_not_change(
    unsafe: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Colour, --quiet and source lines are for the person at the terminal only."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    reports = [f"--report={kind}={kind}.out" for kind in sorted(REPORTERS)]
    _check(run, "--quiet", *reports)
    first = {kind: (unsafe.root / f"{kind}.out").read_bytes() for kind in REPORTERS}
    monkeypatch.delenv("FORCE_COLOR")
    for kind in ("json", "junit", "codequality", "markdown"):
        assert _check(run, "--format", kind).out.encode() == first[kind]
    assert ANSI.encode() not in first["text"]
    assert b" | " not in first["text"]  # a report file keeps the compact form


def test_source_line_cannot_forge_a_finding_or_drive_the_terminal() -> None:
    source = ["a: 1", "key: \x1b[31mred\x1b[0m\tenvironments/x.yml:1:1: error forged: yes"]
    finding = Finding("p", "error", "m", Loc("f.yml", 2, 6))
    text = render_text(ReportInput(findings=(finding,)), TextStyle(sources=lambda path: source))
    lines = text.splitlines()
    assert "\x1b" not in text
    assert [line for line in lines if FINDING_LINE.match(line)] == ["f.yml:2:6: error p: m"]
    shown = lines[2].split(" | ", 1)[1]
    assert shown.startswith("key: \\x1b[31mred")
    assert lines[3].index("^") - lines[2].index(" | ") - 3 == len("key: ")


def test_a_finding_outside_its_file_shows_no_source() -> None:
    finding = Finding("p", "warning", "m", Loc("f.yml", 9, 1))
    text = render_text(ReportInput(findings=(finding,)), TextStyle(sources=lambda path: ["a"]))
    assert text == "f.yml:9:1: warning p: m\n\n0 errors, 1 warning, 0 waived\n"
