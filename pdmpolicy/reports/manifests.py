"""The Markdown note's section for `pdmpolicy manifests`: which migrations Jobs were found.

A reviewer of a dry run wants to see what was checked, not only what failed: every file
with the environment it was tied to (and why), and every migrations Job with the values the
`manifest-*` policies read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdmpolicy.manifests.model import ManifestFile
from pdmpolicy.reports.markdown import cell


def _value(mapping: Mapping[str, Any] | None, key: str) -> str:
    if mapping is None or key not in mapping:
        return "—"
    return f"`{cell(str(mapping[key]))}`"


def manifests_section(files: tuple[ManifestFile, ...]) -> str:
    lines = [
        "#### Manifests",
        "",
        "| file | environment | database | objects | migrations Jobs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for file in files:
        environment = f"{file.environment} ({file.how})" if file.environment else "—"
        lines.append(
            f"| `{cell(file.path)}` | {cell(environment)} | {cell(file.database or '—')} "
            f"| {len(file.resources)} | {len(file.jobs)} |"
        )
    jobs = [(file, job) for file in files for job in file.jobs]
    if jobs:
        lines += [
            "",
            "| migrations Job | where | recognised | backoffLimit | restartPolicy "
            "| activeDeadlineSeconds |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for _, job in jobs:
            loc = job.resource.loc
            lines.append(
                f"| {cell(job.resource.describe())} | `{cell(f'{loc.path}:{loc.line}')}` "
                f"| {cell(job.reason)} | {_value(job.spec, 'backoffLimit')} "
                f"| {_value(job.pod_spec, 'restartPolicy')} "
                f"| {_value(job.spec, 'activeDeadlineSeconds')} |"
            )
    return "\n".join(lines) + "\n"
