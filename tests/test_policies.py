"""Every built-in policy, run end to end through `pdmpolicy check`.

Two sources of cases, both parametrized so a new policy is covered without touching this file:
- the policy's own documentation: its failing example must fail it, its fixed example must
  pass everything (the docs show exactly what is tested);
- `tests/fixtures/policies/<policy>/<fail|pass>-<case>/`, one directory per case (an
  environment file must be named after its `environment:`). A line carrying `#: <policy>` is a
  line a finding of that policy must point at; `#: <policy>:<column>` pins the column too
  (pycodestyle's `#: E221:3:14`). A fail case must produce findings on exactly the marked
  lines; a pass case must be clean. `base.<name>.yml` in a case is `<name>.yml` at the merge
  request's target, for the change-aware policies (the case is then checked with `--base`).

Policies of the "manifests" layer are run through `pdmpolicy manifests` instead of `check`:
their example and fixture files named `<env>.manifest.yaml` are rendered manifests, written to
`manifests/` (so the file name ties them to `<env>`), beside the environment files; an
example without its own `gstg.yml` is checked against `examples.GSTG` as `gstg.yml`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pdmpolicy.docgen.policydocs import MANIFEST_SUFFIX
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.examples import GSTG
from tests.conftest import Repo, Result

TODAY = "2026-11-26"
FIXTURES = Path(__file__).parent / "fixtures" / "policies"
MARKER = re.compile(r"#:\s*(?P<markers>[a-z0-9-]+(?::\d+)?(?:\s+[a-z0-9-]+(?::\d+)?)*)\s*$")


def check_json(repo: Repo, run: Any, files: Mapping[str, str]) -> tuple[Result, dict[str, Any]]:
    extra = repo.files(dict(files))
    result: Result = run("check", "--today", TODAY, "--format", "json", *extra)
    assert result.code != 2, f"input rejected:\n{result.err}"
    return result, json.loads(result.out)


def manifests_json(repo: Repo, run: Any, files: Mapping[str, str]) -> tuple[Result, dict[str, Any]]:
    """`pdmpolicy manifests manifests/` on the `*.manifest.yaml` files, the others (and gstg.yml
    unless given) as the repository's environment and policy files."""
    others = {name: text for name, text in files.items() if not name.endswith(MANIFEST_SUFFIX)}
    others.setdefault("gstg.yml", GSTG)
    repo.files(others)
    (repo.root / "manifests").mkdir()
    for name, text in files.items():
        if name.endswith(MANIFEST_SUFFIX):
            (repo.root / "manifests" / name).write_text(text, encoding="utf-8")
    result: Result = run("manifests", "manifests", "--today", TODAY, "--format", "json")
    assert result.code != 2, f"input rejected:\n{result.err}"
    return result, json.loads(result.out)


def run_json(repo: Repo, run: Any, files: Mapping[str, str]) -> tuple[Result, dict[str, Any]]:
    """The files checked as their kind needs: rendered manifests by `manifests`, else `check`."""
    if any(name.endswith(MANIFEST_SUFFIX) for name in files):
        return manifests_json(repo, run, files)
    return check_json(repo, run, files)


def of_policy(report: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["policy"] == policy]


# --- the documentation's examples ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_failing_example_fails_its_policy(repo: Repo, run: Any, name: str) -> None:
    result, report = run_json(repo, run, REGISTRY[name].documentation.failing_example)
    found = of_policy(report, name)
    assert found, f"the failing example of {name} raises no finding of it: {report}"
    assert all(f["severity"] == "error" and not f["waived"] for f in found)
    assert result.code == 1


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_fixed_example_is_clean(repo: Repo, run: Any, name: str) -> None:
    result, report = run_json(repo, run, REGISTRY[name].documentation.fixed_example)
    assert of_policy(report, name) == []
    assert report["findings"] == [], "the fixed example must pass every policy"
    assert result.code == 0


# --- fixture cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    path: str
    line: int
    column: int | None


@dataclass(frozen=True)
class Case:
    policy: str
    directory: Path

    @property
    def fails(self) -> bool:
        return self.directory.name.startswith("fail-")

    def files(self) -> dict[str, str]:
        """File name -> text; `base.<name>.yml` is `<name>.yml` at the merge request's base."""
        return {
            f"base:{p.name.removeprefix('base.')}" if p.name.startswith("base.") else p.name: (
                p.read_text(encoding="utf-8")
            )
            for p in sorted([*self.directory.glob("*.yml"), *self.directory.glob("*.yaml")])
        }

    def marks(self) -> list[Mark]:
        """The lines (and columns) the case's markers say findings of its policy point at."""
        found = []
        for name, text in self.files().items():
            if name.startswith("base:"):
                continue  # findings point at the working tree, never at the base
            if name.startswith("policies"):
                path = f"policies/{name}"
            elif name.endswith(MANIFEST_SUFFIX):
                path = f"manifests/{name}"
            else:
                path = f"environments/{name}"
            for number, line in enumerate(text.splitlines(), start=1):
                match = MARKER.search(line)
                if not match:
                    continue
                for marker in match.group("markers").split():
                    policy, _, column = marker.partition(":")
                    assert policy in REGISTRY, f"{self.directory}:{number}: unknown {policy}"
                    if policy == self.policy:
                        found.append(Mark(path, number, int(column) if column else None))
        return found


def cases() -> list[Case]:
    return [
        Case(directory.parent.name, directory)
        for directory in sorted(FIXTURES.glob("*/*"))
        if directory.is_dir()
    ]


def _case_id(case: Case) -> str:
    return f"{case.policy}/{case.directory.name}"


def test_fixture_layout() -> None:
    """Directories name real policies and say whether they fail or pass."""
    for directory in FIXTURES.iterdir():
        assert directory.name in REGISTRY, f"fixtures for unknown policy {directory.name}"
    for case in cases():
        assert case.directory.name.startswith(("fail-", "pass-")), case.directory
        assert case.files(), f"{case.directory} has no .yml or .yaml files"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_policy_has_fixtures(name: str) -> None:
    mine = [case for case in cases() if case.policy == name]
    assert [c for c in mine if c.fails], f"add tests/fixtures/policies/{name}/fail-*/"
    assert [c for c in mine if not c.fails], f"add tests/fixtures/policies/{name}/pass-*/"


@pytest.mark.parametrize("case", cases(), ids=_case_id)
def test_fixture(repo: Repo, run: Any, case: Case) -> None:
    result, report = run_json(repo, run, case.files())
    found = of_policy(report, case.policy)
    marks = case.marks()
    if not case.fails:
        assert marks == [], "pass cases carry no markers"
        assert found == []
        assert report["findings"] == [], "a pass case should be clean under every policy"
        assert result.code == 0
        return
    assert marks, "a fail case marks the line its finding points at"
    assert result.code == 1
    assert all(f["severity"] == "error" and not f["waived"] for f in found)
    got_lines = sorted({(f["path"], f["line"]) for f in found})
    want_lines = sorted({(m.path, m.line) for m in marks})
    assert got_lines == want_lines, "\n".join(
        f"{f['path']}:{f['line']}:{f['column']}: {f['message']}" for f in found
    )
    for mark in marks:
        if mark.column is not None:
            columns = {
                f["column"] for f in found if (f["path"], f["line"]) == (mark.path, mark.line)
            }
            assert mark.column in columns, f"{mark}: findings at columns {columns}"
