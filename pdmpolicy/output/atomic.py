"""All-or-nothing file writing.

`write_files` (reports): each file is staged beside its target and renamed over it, so no
file is ever seen half-written; the files are independent of each other.

`replace_directory` (`render`): the directory's next state is built beside it and swapped in
by one atomic exchange of directory entries, so a reader, or a run killed at any instant,
sees the old tree or the new one, never a mix. Files that are not the caller's are carried
into the new tree as hard links: they stay the very same files (content, inode, mode), and
nothing is deleted that is not the caller's. docs/security.md gives the design.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

STAGING_PREFIX = ".{name}.pdmpolicy-"
"""Staging trees are created beside the directory they replace, named from this."""
PARTIAL_SUFFIX = ".pdmpolicy-partial"
"""A file of a staging tree being written."""

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux renameat2
_RENAME_SWAP = 2  # macOS renamex_np
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def write_files(contents: dict[Path, str]) -> None:
    staged: list[tuple[Path, Path]] = []
    try:
        for target, content in contents.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
            staged.append((Path(temp_name), target))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
    except BaseException:
        for staged_file, _ in staged:
            staged_file.unlink(missing_ok=True)
        raise
    for staged_file, target in staged:
        staged_file.replace(target)


def exchange(first: Path, second: Path) -> None:
    """Swap two directory entries in one step (Linux `renameat2`, macOS `renamex_np`).

    Raises OSError; ENOSYS where the system has no such call.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    a, b = os.fsencode(first), os.fsencode(second)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        call = libc.renameat2
        call.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
        result = call(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        call = libc.renamex_np
        call.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        result = call(a, b, _RENAME_SWAP)
    else:
        raise OSError(errno.ENOSYS, "no atomic exchange of directories on this system")
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(second))


def replace_directory(
    directory: Path,
    writes: Mapping[str, str],
    removals: Collection[str],
    is_ours: Callable[[Path], bool],
) -> None:
    """Give `directory` the files `writes` (relative path -> text) and take away `removals`,
    all at once; every other entry stays as it is.

    `is_ours(file)` says which files the caller generated: only those, and hard links to
    files still in `directory`, are ever deleted. The caller has checked that the paths
    written and removed are its own and lead through no symbolic link.
    """
    parent = directory.parent
    discard_leftovers(directory, is_ours)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=STAGING_PREFIX.format(name=directory.name)))
    try:
        modes: list[tuple[Path, int]] = []
        if directory.exists():
            _mirror(directory, staging, {*writes, *removals}, "", modes)
            modes.append((staging, stat.S_IMODE(directory.lstat().st_mode)))
        else:  # mkdtemp made it private; a new directory gets the usual mode
            umask = os.umask(0o022)
            os.umask(umask)
            modes.append((staging, 0o777 & ~umask))
        for relative, content in writes.items():
            _write(staging / relative, content)
        for path, mode in modes:
            path.chmod(mode)
        _sync_tree(staging)
        try:
            if directory.exists():
                exchange(staging, directory)
            else:
                staging.rename(directory)
        except OSError as exc:
            if exc.errno not in _NO_EXCHANGE:
                raise
            # No atomic exchange here (another system, or a filesystem without it): each
            # file is still replaced whole, but a run killed midway can leave a mix.
            _discard(staging, directory, is_ours)
            write_files({directory / relative: text for relative, text in writes.items()})
            for relative in removals:
                (directory / relative).unlink(missing_ok=True)
            return
        _sync(parent)
    except BaseException:
        _discard(staging, directory, is_ours)
        raise
    _discard(staging, directory, is_ours)  # the previous tree, if there was one


def discard_leftovers(directory: Path, is_ours: Callable[[Path], bool]) -> None:
    """Remove, as far as it is safe, the staging trees a killed run left beside `directory`."""
    for leftover in sorted(directory.parent.glob(STAGING_PREFIX.format(name=directory.name) + "*")):
        _discard(leftover, directory, is_ours)


def _mirror(
    source: Path, target: Path, skip: set[str], relative: str, modes: list[tuple[Path, int]]
) -> None:
    """Rebuild `source` in `target`: directories made, files hard-linked, links copied."""
    with os.scandir(source) as entries:
        for entry in entries:
            path = f"{relative}{entry.name}"
            copy = target / entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                copy.symlink_to(Path(entry.path).readlink())
            elif stat.S_ISDIR(mode):
                copy.mkdir()
                modes.append((copy, stat.S_IMODE(mode)))
                _mirror(Path(entry.path), copy, skip, f"{path}/", modes)
            elif stat.S_ISREG(mode):
                if path not in skip:
                    os.link(entry.path, copy, follow_symlinks=False)
            else:
                raise OSError(
                    errno.EPERM, "not a file, a directory or a link; refusing to move it", path
                )


def _write(path: Path, content: str) -> None:
    """Write a file of the staging tree, under a name that says it is unfinished until it
    is complete (a staging tree a killed run left may hold such a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    partial.rename(path)


def _sync(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _sync_tree(directory: Path) -> None:
    for path, _, _ in os.walk(directory):
        _sync(Path(path))


def _discard(tree: Path, live: Path, is_ours: Callable[[Path], bool]) -> None:
    """Delete `tree` (a staging tree, or the tree `live` replaced) as far as it is safe: an
    entry that is also in `live` (same file, or a link to the same place), or a file the
    caller generated. Anything else is left where it is."""
    if not tree.is_dir() or tree.is_symlink():
        return  # renamed into place: nothing was left behind
    _discard_entries(tree, live, is_ours)
    with contextlib.suppress(OSError):  # something was kept
        tree.rmdir()


def _discard_entries(tree: Path, live: Path, is_ours: Callable[[Path], bool]) -> None:
    with os.scandir(tree) as entries:
        for entry in entries:
            path, counterpart = Path(entry.path), live / entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                _discard(path, counterpart, is_ours)
                continue
            try:
                twin = os.lstat(counterpart)
            except OSError:
                twin = None
            if stat.S_ISLNK(mode):
                safe = twin is not None and stat.S_ISLNK(twin.st_mode)
                safe = safe and path.readlink() == counterpart.readlink()
            else:
                same = twin is not None and os.path.samestat(os.lstat(path), twin)
                ours = is_ours(path) or entry.name.endswith(PARTIAL_SUFFIX)
                safe = same or (stat.S_ISREG(mode) and ours)
            if safe:
                path.unlink()
