"""Policy documentation in fixed sections, from the policies' own metadata.

The same text feeds `pdmpolicy policies NAME`, docs/policies.md (a test keeps it current)
and, later, the Markdown report. The examples are the ones the tests run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from pdmpolicy.policies import BUILTINS
from pdmpolicy.policies.base import Policy

BASE_PREFIX = "base:"
"""Example files named `base:<file>` are the environment before the change (`--base REF`)."""
MANIFEST_SUFFIX = ".manifest.yaml"
"""Example files named `<env>.manifest.yaml` are rendered Kubernetes manifests of `<env>`."""


def _where(name: str) -> str:
    """How a reader finds an example file in the repository."""
    if name.startswith(BASE_PREFIX):
        return f"`environments/{name.removeprefix(BASE_PREFIX)}` before the change (at `--base`)"
    if name.startswith("policies"):
        return f"`policies/{name}`"
    if name.endswith(MANIFEST_SUFFIX):
        environment = name.removesuffix(MANIFEST_SUFFIX)
        return f"`{name}`, rendered manifests of {environment} (`pdmpolicy manifests {name}`)"
    return f"`environments/{name}`"


def _file(name: str, text: str) -> str:
    return f"{_where(name)}:\n\n```yaml\n{text.rstrip()}\n```\n"


def _files(examples: Mapping[str, str]) -> str:
    return "\n".join(_file(name, text) for name, text in examples.items())


def _fix(failing: Mapping[str, str], fixed: Mapping[str, str]) -> str:
    """The fixed example as the edit a reader makes: a diff where the failing example has
    the same file, the whole file where it does not (or where it is the base)."""
    parts = []
    for name, text in fixed.items():
        before = failing.get(name)
        if before == text:
            continue
        if before is None or name.startswith(BASE_PREFIX):
            # A different history is not an edit anyone makes: show it whole.
            parts.append(_file(name, text))
            continue
        diff = difflib.unified_diff(
            before.rstrip().splitlines(), text.rstrip().splitlines(), lineterm="", n=2
        )
        hunks = [line for line in diff if not line.startswith(("---", "+++"))]
        parts.append(f"In {_where(name)}:\n\n```diff\n" + "\n".join(hunks) + "\n```\n")
    return "\n".join(parts)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def policy_markdown(policy: Policy) -> str:
    doc = policy.documentation
    facts = (
        f"**Proves:** {_sentence(policy.summary)} Default severity: `{policy.default_severity}`."
    )
    if getattr(policy, "needs_base", False):
        facts += " Runs only with `--base REF`, on what the change does to each environment."
    if policy.layers == {"manifests"}:
        facts += (
            " Runs in `pdmpolicy manifests`, on rendered Kubernetes manifests (see "
            "[manifests.md](manifests.md))."
        )
    lines = [
        f"## `{policy.name}`",
        "",
        facts,
        "",
        "### What it checks",
        "",
        doc.what,
        "",
        "### Why it matters",
        "",
        doc.why,
        "",
        "### Failing example",
        "",
        _files(doc.failing_example),
        "### Fix",
        "",
        doc.fix,
        "",
        _fix(doc.failing_example, doc.fixed_example),
    ]
    if policy.options:
        lines += ["### Options", "", "| option | default | meaning |", "| --- | --- | --- |"]
        for option in policy.options:
            lines.append(f"| `{option.name}` | `{option.default}` | {option.description} |")
        lines.append("")
    return "\n".join(lines)


def all_policies_markdown() -> str:
    """docs/policies.md: the built-in policies (plugins document themselves)."""
    header = [
        "# Policies",
        "",
        "Generated from the policies' own documentation by "
        "`python -m pdmpolicy.docgen.policydocs > docs/policies.md`;",
        "`tests/test_policy_docs.py` fails when this file is out of date, and every failing and",
        "fixed example below is run by `tests/test_policies.py`.",
        "",
        "Every policy is on by default. `policies/*.yml` sets a policy's severity (`error` fails",
        "the check and blocks rendering, `warning` is reported only, `off`), its options, and",
        "the environments it applies to; a waiver excuses one finding for a while:",
        "",
        "```yaml",
        "policies:",
        "  pdm-executor-timeout: {severity: warning, minimum: 3h, environments: [gstg]}",
        "waivers:",
        "  - policy: pdm-executor-timeout",
        "    environment: gstg",
        "    job: gstg-vm-post-deploy-migrations   # optional: every job when left out",
        "    reason: staging migrations are short",
        '    owner: "@release-managers"',
        "    expires: 2026-12-31",
        "```",
        "",
        "The same files may hold one `toolchain:` section: how k-ctl, the VM tooling and Rails",
        "are called, read by `render` and by the checks ([toolchain.md](toolchain.md)).",
        "",
        "| policy | what it proves |",
        "| --- | --- |",
    ]
    for name in sorted(BUILTINS):
        header.append(f"| [`{name}`](#{name}) | {BUILTINS[name].summary} |")
    body = [policy_markdown(BUILTINS[name]) for name in sorted(BUILTINS)]
    return "\n".join(header) + "\n\n" + "\n".join(body)


if __name__ == "__main__":
    print(all_policies_markdown(), end="")
