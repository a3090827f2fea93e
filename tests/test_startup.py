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
import subprocess
import sys

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
