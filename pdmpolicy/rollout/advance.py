"""`advance`: move one environment (and, when asked, the ones downstream of it) to another
rollout step, or say why not and from when.

Forward, the soak and order rules are asked first (the gates of `plan`), so a refusal names
the rule, the reason and the first day it allows the move. Then the rewritten files are
checked with the full policy set, the current files as the base (as a merge request is
checked against its target): nothing is written unless that check is clean.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from pdmpolicy.core.errors import InputError, Problem
from pdmpolicy.core.findings import Finding
from pdmpolicy.core.names import ROLLOUT_STEPS
from pdmpolicy.environments.load import parse_document
from pdmpolicy.environments.model import Environment, build_environment
from pdmpolicy.environments.project import Project, views_of
from pdmpolicy.environments.schema import check_references, validate_shape
from pdmpolicy.policies.base import EnvironmentView, executors
from pdmpolicy.policyset.engine import evaluate
from pdmpolicy.rollout.edit import CannotBuild, Rewrite, rewrite
from pdmpolicy.rollout.plan import (
    PROMOTION_ORDER,
    deciding,
    gates,
    soak_days,
    states_of,
    timeline,
)


@dataclass(frozen=True)
class Refusal:
    """Why a move is not allowed (yet)."""

    rule: str
    reason: str
    allowed_from: dt.date | None
    """The first day the rule allows it; None when no day does (a skipped step)."""

    def __str__(self) -> str:
        when = (
            f"allowed from {self.allowed_from.isoformat()}"
            if self.allowed_from
            else "not allowed on any day"
        )
        return f"{self.rule}: {self.reason}; {when}"


@dataclass(frozen=True)
class Move:
    environment: str
    old: str
    new: str
    path: str
    before: str
    after: str
    rewrite: Rewrite


@dataclass
class Outcome:
    """What `advance` decided: moves to write, or refusals (rules, or findings)."""

    moves: list[Move] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    standing: list[Finding] = field(default_factory=list)
    """Error-level findings elsewhere that stood before the move and still do."""
    project: Project | None = None
    """The project as it would be after the moves (for rendering)."""

    @property
    def refused(self) -> bool:
        return bool(self.refusals or self.findings)

    def diff(self) -> str:
        return "".join(
            "".join(
                difflib.unified_diff(
                    move.before.splitlines(keepends=True),
                    move.after.splitlines(keepends=True),
                    fromfile=f"a/{move.path}",
                    tofile=f"b/{move.path}",
                )
            )
            for move in self.moves
        )


def _runs_elsewhere(view: EnvironmentView, views: tuple[EnvironmentView, ...]) -> bool:
    """No executors of its own, and another environment runs its database's PDMs."""
    if any(True for _ in executors(view)):
        return False
    return any(
        other.name != view.name
        and other.environment.database == view.environment.database
        and any(True for _ in executors(other))
        for other in views
    )


def _forward_refusals(project: Project, name: str, target: int, today: dt.date) -> list[Refusal]:
    states = states_of(project.environments)
    found = gates(name, target, states, project.policy_set, today)
    plan = timeline(states, project.policy_set, today)
    planned = {entry.step: entry.start for entry in plan[name][1:]}
    refusals = []
    for gate in found:
        if gate.opens is not None and gate.opens <= today:
            continue
        allowed = gate.opens
        if allowed is None and target == states[name].index + 1:
            # Held back by the upstream: the day the plan gets there.
            allowed = planned.get(ROLLOUT_STEPS[target])
        refusals.append(Refusal(gate.rule, gate.reason, allowed))
    decisive = deciding([g for g in found if g.opens is None or g.opens > today])
    refusals.sort(key=lambda r: r.rule != (decisive.rule if decisive else ""))
    return refusals


def downstream_moves(project: Project, name: str, target: int, today: dt.date) -> dict[str, int]:
    """Environments downstream of `name` that promotion-order would fail once `name` is
    back at `target` (entered today): ahead of it, or at its step without the soak. Each
    goes one step behind its upstream (to `vm` at the least), and so on down the chain."""
    moves: dict[str, int] = {}
    pending = [(name, target)]
    while pending:
        upstream, step = pending.pop()
        back = max(step - 1, 0)
        for env in sorted(project.environments, key=lambda e: e.name):
            if env.upstream != upstream or env.name in moves or env.name == name:
                continue
            if soak_days(project.policy_set, PROMOTION_ORDER, env.name, today) is None:
                continue
            if env.step_index > back:
                moves[env.name] = back
                pending.append((env.name, back))
    return moves


def build_environment_text(path: str, text: str) -> Environment:
    """The model of an environment file's text; InputError when it is not valid."""
    doc = parse_document(path, text.encode("utf-8"))
    problems: list[Problem] = [*validate_shape(doc)]
    if not problems:
        problems += check_references(doc, Path(path).stem)
    if problems:
        raise InputError(problems)
    return build_environment(doc)


def plan_moves(
    project: Project,
    name: str,
    target: int,
    today: dt.date,
    with_downstream: bool = False,
) -> Outcome:
    """Decide `advance NAME --to ROLLOUT_STEPS[target]`; nothing is written here."""
    outcome = Outcome()
    views = {view.name: view for view in project.views}
    current = views[name].environment.step_index
    if target > current:
        outcome.refusals = _forward_refusals(project, name, target, today)
        if outcome.refusals:
            return outcome
        targets = {name: target}
    else:
        outcome.notes.append(
            f"moving {name} back towards the VMs ({ROLLOUT_STEPS[current]} -> "
            f"{ROLLOUT_STEPS[target]}) is always allowed: it is the way out of an incident"
        )
        behind = downstream_moves(project, name, target, today)
        if behind and not with_downstream:
            listed = ", ".join(
                f"{env} ({views[env].environment.step} -> {ROLLOUT_STEPS[step]})"
                for env, step in sorted(behind.items())
            )
            outcome.refusals.append(
                Refusal(
                    "promotion-order",
                    f"moving {name} back to {ROLLOUT_STEPS[target]} would leave downstream "
                    f"environments ahead of it or without their soak: {listed}; pass "
                    "--with-downstream to move them back too",
                    None,
                )
            )
            return outcome
        targets = {name: target, **behind}
    environments = {view.name: view.environment for view in project.views}
    for env_name, step in targets.items():
        view = views[env_name]
        path = view.environment.path
        before = (project.root / path).read_text(encoding="utf-8")
        try:
            result = rewrite(before, view, step, today, _runs_elsewhere(view, project.views))
        except CannotBuild as exc:
            outcome.refusals.append(Refusal("advance", str(exc), None))
            return outcome
        try:
            environments[env_name] = build_environment_text(path, result.text)
        except InputError as exc:
            problems = "; ".join(f"{p.loc}: {p.message}" for p in exc.problems)
            outcome.refusals.append(
                Refusal("advance", f"the rewritten {path} would not be valid: {problems}", None)
            )
            return outcome
        old = view.environment.step
        new = ROLLOUT_STEPS[step]
        outcome.moves.append(Move(env_name, old, new, path, before, result.text, result))
        if not result.layout_kept:
            outcome.notes.append(
                f"{path}: its indentation is not one ruamel.yaml writes back unchanged; "
                "lines the step does not touch may be re-indented (see the diff)"
            )
    after = Project(project.root, views_of(list(environments.values())), project.policy_set)
    outcome.findings, outcome.standing = blocking(
        project, after, today, {move.path for move in outcome.moves}
    )
    outcome.project = after
    return outcome


def _errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error" and not f.waived]


def blocking(
    before: Project, after: Project, today: dt.date, written: set[str]
) -> tuple[list[Finding], list[Finding]]:
    """The error-level findings that forbid writing `written` (any in those files, and any
    the change brings elsewhere), and the ones that stood before and still stand elsewhere.

    `after` is checked against `before` as the base, as its merge request will be.
    """
    found = _errors(evaluate(after, today, base=before.views))
    try:
        earlier = {
            (f.policy, f.loc.path, f.message)
            for f in _errors(evaluate(before, today, base=before.views))
        }
    except InputError:
        earlier = set()
    stops = [
        f
        for f in found
        if f.loc.path in written or (f.policy, f.loc.path, f.message) not in earlier
    ]
    return stops, [f for f in found if f not in stops]
