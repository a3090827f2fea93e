"""Reading files as they were at a git ref, without a checkout and without writing anything.

`--base REF` compares the environments of a merge request with those of its target branch;
the files come straight from git's object store (`git ls-tree`, `git cat-file`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pdmpolicy.core.errors import UsageError

_TIMEOUT = 30


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("--base needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {' '.join(args)} took more than {_TIMEOUT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}")
    return done.stdout


def resolve(root: Path, ref: str) -> str:
    """The commit `ref` names; a UsageError if it names none."""
    if ref.startswith("-"):
        raise UsageError(f"--base {ref!r} is not a git ref")
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()


def files_at(root: Path, ref: str, directory: str) -> dict[str, bytes]:
    """`directory`'s *.yml / *.yaml files at `ref`: repository path -> content."""
    commit = resolve(root, ref)
    listing = _git(
        root, "ls-tree", "-z", "--name-only", f"{commit}:{directory}" if directory else commit
    )
    names = [n for n in listing.decode("utf-8", "replace").split("\0") if n]
    files = {}
    for name in sorted(names):
        if name.endswith((".yml", ".yaml")):
            path = f"{directory}/{name}" if directory else name
            files[path] = _git(root, "cat-file", "blob", f"{commit}:{path}")
    return files
