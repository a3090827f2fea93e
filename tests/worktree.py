"""A copy of this working tree (tracked and new files, not ignored ones) for tools that build
or clone the project: they write build/ and *.egg-info into what they are given; the wheels
built from it once per test session; and clean Pythons to install them into."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

QUIET_PIP = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}


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


def build_wheelhouse(root: Path) -> Path:
    """Wheels of this working tree's pdmpolicy, its dependencies and setuptools (the build
    backend pdmpolicy and the example plugin name). With PIP_FIND_LINKS=<it> and
    PIP_NO_INDEX=1, pip installs pdmpolicy, or builds and installs a project that needs it,
    without an index: built once per test session, for every test that installs pdmpolicy."""
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
         str(copy_working_tree(root / "source")), "setuptools>=69"],
        check=True,
        capture_output=True,
        env={**os.environ, **QUIET_PIP},
    )  # fmt: skip
    return wheels


def clean_python(root: Path) -> Path:
    """The bin/ of a clean virtual environment with pip, as a job's Python image has.

    virtualenv seeds pip from its own cache in about a second (the standard library's
    ensurepip takes several); nothing of this environment's site-packages is visible."""
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "--quiet", str(root / "venv")],
        check=True,
        capture_output=True,
    )
    return root / "venv" / "bin"


def wheels_and_python(root: Path) -> tuple[Path, Path]:
    """A wheelhouse (build_wheelhouse) and the bin/ of a clean Python (clean_python)."""
    return clean_python(root), build_wheelhouse(root)
