"""GitLab CI: the pipeline model, how any GitLab CI file is read into it, and what jobs do.

- `pipeline`: the `Pipeline`/`CiJob` model shared by rendered and hand-written pipelines.
- `yaml`, `include`, `inputs`, `expand`, `loader`: reading a GitLab CI file as GitLab does
  (includes, `spec: inputs`, `extends`, `!reference`, matrices) into `Pipeline`s.
- `shell`, `effects`, `analysis`: what each job's script does (executor, dry run, none,
  unknown) and the order executors run in.

`load_pipelines` is importable from here; the loader is imported on first use, so commands
that only need the model do not pay for the reader.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_pipelines"]


def __getattr__(name: str) -> Any:
    if name == "load_pipelines":
        from pdmpolicy.gitlab.loader import load_pipelines

        return load_pipelines
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
