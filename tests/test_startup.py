"""A command imports what it uses and no more: start-up is most of a pre-commit run.

`pdmpolicy check` on the shipped repository must not import the modules of other
commands and formats (the merge-request note client, the Markdown, JUnit and Code Quality
writers, the manifest readers, the GitLab CI loader, the prover's brute-force explorer).
The modules are read from `sys.modules` at the end of the run, which also lists those
imported through `importlib` (`python -X importtime` does not). Time itself is measured
in benchmarks/, not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pdmpolicy.cli import COMMANDS
from pdmpolicy.policies.plugins import GROUP, _may_declare_plugins
from tests.conftest import REPO_ROOT

NOT_FOR_CHECK = (
    "pdmpolicy.reports.mrnote",
    "pdmpolicy.reports.diff",
    "pdmpolicy.reports.graph",
    "pdmpolicy.output.render",
    # the GitLab CI reader (the pipeline model and the job analysis beside it are check's)
    "pdmpolicy.gitlab.loader",
    "pdmpolicy.gitlab.yaml",
    "pdmpolicy.gitlab.include",
    "pdmpolicy.gitlab.inputs",
    "pdmpolicy.gitlab.expand",
    "pdmpolicy.manifests",
    "pdmpolicy.prover.explorer",
    "pdmpolicy.docgen.policydocs",
    "pdmpolicy.reports.markdown",
    "pdmpolicy.reports.junit",
    "pdmpolicy.reports.codequality",
    "pdmpolicy.reports.json",
    "gitlab",
    "cerberus",  # only to word the errors of a file the schema's quick walk does not pass
    "pdmpolicy.environments.gitref",  # git runs only for --base
    "pdmpolicy.output.atomic",  # nothing is written when the report goes to standard output
    "importlib.metadata",  # only when an installed package may declare a policy plugin
    *(f"pdmpolicy.cli.{name}" for name in COMMANDS if name != "check"),
)


RUN = """
import sys
from pdmpolicy.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\n".join(["MODULES", *sorted(sys.modules)]))
raise SystemExit(code)
"""


def _imported(*args: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stderr.rpartition("MODULES\n")[2].splitlines())


def _unneeded(modules: set[str]) -> set[str]:
    return {m for m in modules for n in NOT_FOR_CHECK if m == n or m.startswith(n + ".")}


def test_check_imports_only_what_check_uses() -> None:
    modules = _imported("check", "--today", "2026-12-01")
    assert "pdmpolicy.policyset.engine" in modules  # the listing is real
    assert _unneeded(modules) == set()


def test_a_report_format_is_imported_when_asked_for() -> None:
    modules = _imported("check", "--today", "2026-12-01", "--format", "junit")
    assert "pdmpolicy.reports.junit" in modules
    assert "pdmpolicy.reports.markdown" not in modules


def test_note_defaults_are_the_clients() -> None:
    from pdmpolicy.cli import note
    from pdmpolicy.reports import mrnote

    assert note.TOKEN_VARIABLE == mrnote.DEFAULT_TOKEN_VARIABLE
    assert note.TIMEOUT == mrnote.DEFAULT_TIMEOUT


def test_help_still_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pdmpolicy", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        check=False,
    )
    assert done.returncode == 0
    listed = re.findall(r"^    (\S+)", done.stdout, re.MULTILINE)
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS), done.stdout


def _dist_info(site: Path, name: str, entry_points: str | None) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """sys.path holding only an empty site directory and this checkout."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), str(REPO_ROOT), str(tmp_path / "missing")])
    return site


def test_no_plugin_is_seen_without_importlib_metadata(bare_path: Path) -> None:
    _dist_info(bare_path, "tool", "[console_scripts]\ntool = tool:main\n")
    _dist_info(bare_path, "plain", None)
    assert not _may_declare_plugins()


def test_a_declared_plugin_is_never_skipped(bare_path: Path) -> None:
    _dist_info(bare_path, "Team_Rules", f"[{GROUP}]\nteam-rule = team_rules:Rule\n")
    assert _may_declare_plugins()


@pytest.mark.parametrize("kind", ["zip", "egg", "egg-info file"])
def test_what_the_scan_cannot_read_is_left_to_importlib_metadata(
    bare_path: Path, kind: str
) -> None:
    if kind == "zip":
        archive = bare_path.parent / "bundle.zip"
        archive.write_bytes(b"PK\x05\x06" + bytes(18))
        sys.path.append(str(archive))
    elif kind == "egg":
        sys.path.append(str(bare_path.parent / "old-1.0-py3.11.egg"))
    else:
        (bare_path / "old-1.0.egg-info").write_text("Metadata-Version: 1.0\n")
    assert _may_declare_plugins()
