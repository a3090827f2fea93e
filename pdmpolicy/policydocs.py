"""Policy documentation in fixed sections, from the policies' own metadata.

The same text feeds `pdmpolicy policies NAME`, docs/policies.md (a test keeps it current)
and, later, the Markdown report.
"""

from __future__ import annotations

from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import Policy


def _files(examples: dict[str, str] | object) -> str:
    assert isinstance(examples, dict)
    parts = []
    for name, text in examples.items():
        where = name if name.startswith("policies") else f"environments/{name}"
        where = f"policies/{name}" if name.startswith("policies") else where
        parts.append(f"`{where}`:\n\n```yaml\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def policy_markdown(policy: Policy) -> str:
    doc = policy.documentation
    lines = [
        f"## `{policy.name}`",
        "",
        f"{policy.summary[0].upper()}{policy.summary[1:]}. Default severity: "
        f"`{policy.default_severity}`.",
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
        _files(dict(doc.failing_example)),
        "### Fix",
        "",
        doc.fix,
        "",
        _files(dict(doc.fixed_example)),
    ]
    if policy.options:
        lines += ["### Options", "", "| option | default | meaning |", "| --- | --- | --- |"]
        for option in policy.options:
            lines.append(f"| `{option.name}` | `{option.default}` | {option.description} |")
        lines.append("")
    return "\n".join(lines)


def all_policies_markdown() -> str:
    """docs/policies.md."""
    header = [
        "# Policies",
        "",
        "Generated from the policies' own documentation by `python -m pdmpolicy.policydocs`;",
        "`tests/test_policy_docs.py` fails when this file is out of date.",
        "",
        "| policy | what it proves |",
        "| --- | --- |",
    ]
    for name in sorted(REGISTRY):
        header.append(f"| [`{name}`](#{name}) | {REGISTRY[name].summary} |")
    body = [policy_markdown(REGISTRY[name]) for name in sorted(REGISTRY)]
    return "\n".join(header) + "\n\n" + "\n".join(body)


if __name__ == "__main__":
    print(all_policies_markdown(), end="")
