"""Mermaid graphs of an environment's jobs, executors marked (explain, Markdown note)."""

from __future__ import annotations

from pdmpolicy.policies.base import EnvironmentView


def _node_id(index: int) -> str:
    return f"j{index}"


def mermaid(view: EnvironmentView) -> str:
    """A `graph TD` of the jobs: solid arrows wait for success, dotted ones do not."""
    analysis = view.analysis
    order = analysis.execution_order()
    ids = {name: _node_id(i) for i, name in enumerate(order)}
    lines = ["graph TD"]
    for name in order:
        effect = analysis.effect(name)
        label = name
        declared = " (declared)" if effect.is_declared else ""
        if effect.kind:
            label = f"{name}<br/>{effect.kind.upper()} EXECUTOR"
        elif effect.is_dry_run:
            label = f"{name}<br/>dry run{declared}"
        elif effect.is_unknown:
            label = f"{name}<br/>{effect.label()}"
        elif declared:
            label = f"{name}<br/>none{declared}"
        shape = f'[["{label}"]]' if effect.is_executor else f'["{label}"]'
        lines.append(f"  {ids[name]}{shape}")
    for name in order:
        for before in analysis.direct_predecessors[name]:
            arrow = "-->" if analysis.ordered_after_success(before, name) else "-.->"
            lines.append(f"  {ids[before]} {arrow} {ids[name]}")
    executors = [ids[n] for n in order if analysis.effect(n).is_executor]
    if executors:
        lines.append("  classDef executor fill:#fde2e1,stroke:#c0392b,stroke-width:2px")
        lines.append(f"  class {','.join(executors)} executor")
    return "\n".join(lines) + "\n"


def explain(view: EnvironmentView) -> str:
    """The job order, what each job does to PDMs, and the graph, as plain text."""
    env = view.environment
    analysis = view.analysis
    lines = [
        f"{env.name}: database {env.database}, rollout step {env.step} since "
        f"{env.since.isoformat()}" + (f", upstream {env.upstream}" if env.upstream else ""),
        f"source: {env.path} -> {view.pipeline.path}",
        "",
        "Jobs, in the order they can run:",
    ]
    for number, name in enumerate(analysis.execution_order(), start=1):
        effect = analysis.effect(name)
        after = sorted(analysis.after_success[name])
        waits = sorted(set(analysis.direct_predecessors[name]) - set(after))
        lines.append(f"  {number}. {name}: {effect.describe()}")
        if after:
            lines.append(f"     starts only after {', '.join(after)} succeeded")
        if waits:
            lines.append(f"     waits for {', '.join(waits)} to finish, whatever the outcome")
        if not after and not waits:
            lines.append("     starts as soon as the pipeline does")
    lines += ["", "Mermaid graph:", "```mermaid", mermaid(view).rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"
