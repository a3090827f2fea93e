"""Which environment (and so which database) each manifest file was rendered for.

Rendered manifests do not say which database they migrate: every GitLab.com cluster runs the
chart as release `gitlab` in namespace `gitlab`, staging and production alike. So a file
belongs to an environment of `environments/`, and its migrations Jobs to that environment's
`database:`. The environment is `--environment ENV` when given; otherwise, for each file:

1. the file is named after a job that exactly one environment declares (the rendered
   dry-run job saves its output as `dry-run/<job>.yaml`);
2. else the file name up to its first `.`, or failing that a directory of its path (the
   deepest first), is the name of an environment (`gstg.yaml`, `gstg-cny.manifest.yaml`,
   `manifests/gprd/all.yaml`);
3. else, when `environments/` holds a single environment, that one.

A file holding a migrations Job whose environment none of these decides is a usage error
(exit 2) that asks for `--environment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from pdmpolicy.core.errors import UsageError
from pdmpolicy.environments.model import Environment
from pdmpolicy.manifests.model import ManifestFile
from pdmpolicy.manifests.read import STDIN_PATH, ManifestSource
from pdmpolicy.manifests.recognise import recognise


def infer_environment(path: str, environments: Sequence[Environment]) -> tuple[str | None, str]:
    """(environment, how it was decided) for a file shown as `path`; (None, ...) if unknown."""
    if path != STDIN_PATH:
        pure = PurePosixPath(path)
        owners = sorted(
            {e.path: e for e in environments if any(j.name == pure.stem for j in e.jobs)}.items()
        )
        if len(owners) == 1:
            path_of, owner = owners[0]
            return owner.name, f"named after job {pure.stem} of {path_of}"
        known = {e.name for e in environments}
        for candidate in (pure.name.split(".", 1)[0], *reversed(pure.parent.parts)):
            if candidate in known:
                return candidate, f"its path names environment {candidate}"
    if len(environments) == 1:
        return environments[0].name, "the only environment"
    return None, "unknown"


def assign(
    sources: Sequence[ManifestSource], environments: Sequence[Environment], chosen: str | None
) -> tuple[ManifestFile, ...]:
    """The files with their migrations Jobs, environment and database."""
    by_name = {e.name: e for e in environments}
    known = ", ".join(sorted(by_name))
    if chosen is not None and chosen not in by_name:
        raise UsageError(f"--environment {chosen}: no such environment (known: {known})")
    files = []
    undecided = []
    for source in sources:
        jobs = tuple(job for r in source.resources if (job := recognise(r)) is not None)
        if chosen is not None:
            environment: str | None = chosen
            how = "--environment"
        else:
            environment, how = infer_environment(source.path, environments)
        if environment is None and jobs:
            undecided.append(source.path)
        files.append(
            ManifestFile(
                path=source.path,
                resources=source.resources,
                environment=environment,
                database=by_name[environment].database if environment is not None else None,
                how=how,
                jobs=jobs,
            )
        )
    if undecided:
        raise UsageError(
            f"cannot tell which environment {', '.join(undecided)} was rendered for: pass "
            f"--environment ENV (known: {known}), or name the file after the environment "
            "or the dry-run job"
        )
    return tuple(files)
