"""All-or-nothing file writing: stage every file beside its target, then rename them all.

A failure while staging removes what was staged and leaves every target as it was; a file
is never seen half-written, since each rename replaces a complete file at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
