"""A copy of this working tree (tracked and new files, not ignored ones) for tools that build
or clone the project: they write build/ and *.egg-info into what they are given."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT


def copy_working_tree(destination: Path, *, commit: bool = False) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    if commit:
        identity = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
        for args in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "tree"]):
            subprocess.run(["git", *args], cwd=destination, check=True, capture_output=True)
    return destination


def wheels_and_python(root: Path) -> tuple[Path, Path]:
    """Wheels of this working tree's pdmpolicy and its dependencies (`pip install
    pdmpolicy==<version>` finds them with PIP_FIND_LINKS and PIP_NO_INDEX=1), and the bin/
    of a clean virtual environment with pip, as a job's Python image has."""
    import os
    import sys
    import venv

    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
         str(copy_working_tree(root / "source"))],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    venv.create(root / "venv", with_pip=True)
    return root / "venv" / "bin", wheels
