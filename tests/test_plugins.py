"""Policies from other packages (entry point group `pdmpolicy.policies`, docs/plugins.md).

The example plugin in tests/plugin_example is really installed (pip, into a temporary
virtual environment that sees this one's packages; its build backend from the session's
wheelhouse, no index) and pdmpolicy runs there as a user would run it. Broken plugins are
declared the way pip records any installed package: a `*.dist-info` directory with
`entry_points.txt` on `sys.path`, found by importlib.metadata.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdmpolicy.policies import REGISTRY
from tests.conftest import INSTALLS, REPO_ROOT, Repo, Result

pytestmark = INSTALLS

EXAMPLE = REPO_ROOT / "tests" / "plugin_example"
ORIGIN = (
    "plugin pdmpolicy-team-rules 1.0.0 (team-timeout-cap = pdmpolicy_team_rules:TeamTimeoutCap)"
)


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A Python with the example plugin installed; pdmpolicy is this worktree's."""
    root = tmp_path_factory.mktemp("plugin-venv")
    venv.create(root / "venv", system_site_packages=True, with_pip=False)
    python = root / "venv" / "bin" / "python"
    source = root / "plugin_example"
    shutil.copytree(EXAMPLE, source)  # building writes build/ and *.egg-info next to it
    # pip builds the wheel as for any user: in an isolated build environment with the build
    # backend the plugin's pyproject names (setuptools, from the wheelhouse: no index is
    # asked); pdmpolicy itself is not reinstalled.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--find-links", str(wheelhouse), "--prefix", str(root / "venv"), str(source)],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    return python


def _run(python: Path, cwd: Path, *args: str) -> Result:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [str(python), "-m", "pdmpolicy", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _example(name: str) -> str:
    """The plugin's own documented example, read from its source as a user would copy it."""
    environment = textwrap.dedent(
        (EXAMPLE / "src/pdmpolicy_team_rules/__init__.py")
        .read_text(encoding="utf-8")
        .split('_ENVIRONMENT = """\\\n', 1)[1]
        .split('"""', 1)[0]
    )
    return environment.replace("{timeout}", name)


def test_plugin_is_listed_with_its_origin(plugin_python: Path, tmp_path: Path) -> None:
    result = _run(plugin_python, tmp_path, "policies")
    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if line.startswith("team-timeout-cap"))
    assert "no job runs longer than `maximum`" in line
    assert line.endswith(f"[{ORIGIN}]")
    builtin = next(line for line in result.out.splitlines() if line.startswith("pdm-locked"))
    assert "[" not in builtin


def test_plugin_is_documented_like_a_builtin(plugin_python: Path, tmp_path: Path) -> None:
    result = _run(plugin_python, tmp_path, "policies", "team-timeout-cap")
    assert result.code == 0, result.err
    assert result.out.startswith("## `team-timeout-cap`\n\nFrom " + ORIGIN + ".\n")
    for section in ("What it checks", "Why it matters", "Failing example", "Fix", "Options"):
        assert f"### {section}\n" in result.out
    assert "| `maximum` | `12h` |" in result.out
    assert "-    timeout: 24h\n+    timeout: 10h" in result.out


@pytest.fixture
def project(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def test_plugin_fires_at_the_line_with_its_default_severity(
    plugin_python: Path, project: Repo
) -> None:
    project.env("gstg.yml", _example("24h"))
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 0, result.err  # the plugin's default severity is warning
    assert result.out.splitlines()[0] == (
        "environments/gstg.yml:12:14: warning team-timeout-cap: "
        "gstg-vm-post-deploy-migrations may run for 1d, longer than 12h"
    )


def test_fixed_example_passes(plugin_python: Path, project: Repo) -> None:
    project.env("gstg.yml", _example("10h"))
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "0 errors, 0 warnings, 0 waived"
    assert "team-timeout-cap" not in result.out


def test_policy_set_sets_severity_options_and_scope(plugin_python: Path, project: Repo) -> None:
    project.env("gstg.yml", _example("24h"))
    project.policies("policies:\n  team-timeout-cap: {severity: error}\n")
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 1
    assert "error team-timeout-cap:" in result.out
    project.policies("policies:\n  team-timeout-cap: {severity: error, maximum: 1d}\n")
    assert _run(plugin_python, project.root, "check", "--today", "2026-12-01").code == 0
    project.policies("policies:\n  team-timeout-cap: {severity: error, environments: [gprd]}\n")
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 2 and "scoped to environment 'gprd'" in result.err
    project.policies("policies:\n  team-timeout-cap: {severity: error, maximum: soon}\n")
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 2
    assert "team-timeout-cap: option 'maximum' must be a duration" in result.err


def test_plugin_finding_is_waivable(plugin_python: Path, project: Repo) -> None:
    project.env("gstg.yml", _example("24h"))
    project.policies(
        "policies:\n  team-timeout-cap: error\nwaivers:\n"
        "  - {policy: team-timeout-cap, environment: gstg, reason: long backfill,\n"
        '     owner: "@dba", expires: 2026-12-31}\n'
    )
    result = _run(plugin_python, project.root, "check", "--today", "2026-12-01")
    assert result.code == 0, result.out + result.err
    assert "error team-timeout-cap:" in result.out and result.out.count("(waived)") == 1
    expired = _run(plugin_python, project.root, "check", "--today", "2027-01-01")
    assert expired.code == 1


def test_without_the_plugin_its_name_is_unknown(project: Repo) -> None:
    """The same policy set in an environment without the plugin: an input error, not a pass."""
    project.env("gstg.yml", _example("24h"))
    project.policies("policies:\n  team-timeout-cap: error\n")
    result = _run(Path(sys.executable), project.root, "check", "--today", "2026-12-01")
    assert result.code == 2
    assert "unknown policy 'team-timeout-cap'" in result.err


# Broken plugins: declared in-process through a dist-info directory on sys.path.


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    REGISTRY.reload()
    yield directory
    for module in [m for m in sys.modules if m.startswith("broken_team_")]:
        del sys.modules[module]
    monkeypatch.undo()
    REGISTRY.reload()


def _declare(site: Path, package: str, entry: str, module: str) -> None:
    info = site / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[pdmpolicy.policies]\n{entry}\n", encoding="utf-8")
    name = entry.split("=")[1].strip().split(":")[0]
    (site / f"{name}.py").write_text(textwrap.dedent(module), encoding="utf-8")


_GOOD_BODY = """
    from pdmpolicy.policies.base import Documentation, Policy

    class Rule(Policy):
        name = "{name}"
        summary = "a rule"
        documentation = Documentation(
            what="w", why="y", failing_example={{"gstg.yml": "a: 1"}}, fix="f",
            fixed_example={{"gstg.yml": "a: 2"}},
        )

        def check(self, context):
            return []
"""

BROKEN = {
    "import error": (
        "team-a = broken_team_a:Rule",
        "import not_a_module_anywhere\n",
        "plugin broken-team-a 0.1 (team-a = broken_team_a:Rule): cannot be imported: "
        "ModuleNotFoundError: No module named 'not_a_module_anywhere'",
    ),
    "wrong type": (
        "team-b = broken_team_b:rule",
        "def rule():\n    return None\n",
        "plugin broken-team-b 0.1 (team-b = broken_team_b:rule): is function",
    ),
    "duplicate of a built-in": (
        "pdm-locked = broken_team_c:Rule",
        _GOOD_BODY.format(name="pdm-locked"),
        "plugin broken-team-c 0.1 (pdm-locked = broken_team_c:Rule): the name 'pdm-locked' "
        "is taken by built-in",
    ),
    "missing documentation section": (
        "team-d = broken_team_d:Rule",
        _GOOD_BODY.format(name="team-d").replace('why="y"', 'why=""'),
        "plugin broken-team-d 0.1 (team-d = broken_team_d:Rule): documentation section "
        "'why' is empty",
    ),
    "no documentation": (
        "team-e = broken_team_e:Rule",
        _GOOD_BODY.format(name="team-e").replace("documentation =", "documented ="),
        "(team-e = broken_team_e:Rule): has no `documentation = Documentation(...)`",
    ),
    "entry point and policy names differ": (
        "team-f = broken_team_f:Rule",
        _GOOD_BODY.format(name="team-g"),
        "the entry point is named 'team-f' but the policy 'team-g'",
    ),
    "not kebab-case": (
        "Team_H = broken_team_h:Rule",
        _GOOD_BODY.format(name="Team_H"),
        "name 'Team_H' is not kebab-case",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", [["policies"], ["check"]])
def test_broken_plugin_is_a_clear_error_naming_it(
    case: str, command: list[str], site: Path, repo: Repo, run: object
) -> None:
    entry, module, expected = BROKEN[case]
    package = "broken-" + entry.split("=")[1].strip().split(":")[0].removeprefix("broken_").replace(
        "_", "-"
    )
    _declare(site, package, entry, module)
    result: Result = run(*command)  # type: ignore[operator]
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("pdmpolicy: error: 1 broken policy plugin(s)")
    assert expected in result.err
    assert result.out == ""


def test_a_good_plugin_beside_builtins_in_process(site: Path, repo: Repo, run: object) -> None:
    _declare(
        site, "broken-team-ok", "team-ok = broken_team_ok:Rule", _GOOD_BODY.format(name="team-ok")
    )
    result: Result = run("policies")  # type: ignore[operator]
    assert result.code == 0, result.err
    assert "team-ok  " in result.out and "[plugin broken-team-ok 0.1 (team-ok =" in result.out


def test_a_crashing_plugin_policy_is_an_error_that_names_the_plugin(
    site: Path, repo: Repo, run: object
) -> None:
    from pdmpolicy.policies.examples import GSTG

    body = _GOOD_BODY.format(name="team-crash").replace("return []", "raise ValueError('boom')")
    _declare(site, "broken-team-crash", "team-crash = broken_team_crash:Rule", body)
    repo.env("gstg.yml", GSTG)
    result: Result = run("check", "--today", "2026-12-01", "--quiet")  # type: ignore[operator]
    assert result.code == 1
    (line,) = [line for line in result.out.splitlines() if "team-crash" in line]
    assert line.startswith("environments/gstg.yml:1:1: error team-crash: internal error: ")
    assert "crashed (ValueError: boom)" in line
    assert "this is a bug in plugin broken-team-crash 0.1 (team-crash =" in line
