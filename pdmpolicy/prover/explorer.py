"""Brute force: every interleaving of job events, breadth first. The prover's test oracle.

Breadth first over the states of the execution model, starting from every combination of
`rules:` outcomes, so the first breach found ends a shortest run that commits one. Only
usable on small pipelines: the number of states grows exponentially with the jobs that can
run at the same time, hence `max_states`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from pdmpolicy.gitlab.pipeline import Pipeline
from pdmpolicy.prover.counterexample import Counterexample, counterexample
from pdmpolicy.prover.model import Event, ExecutionModel, RunState


@dataclass(frozen=True)
class Exploration:
    """What the explorer found: a shortest counterexample, or none in `states` states."""

    counterexample: Counterexample | None
    states: int
    truncated: bool
    """True when `max_states` (or `max_seconds`) was reached first: no verdict."""

    @property
    def safe(self) -> bool:
        return self.counterexample is None and not self.truncated


def explore(
    pipeline: Pipeline,
    *,
    executors: Collection[str] | None = None,
    max_states: int = 200_000,
    max_seconds: float | None = None,
) -> Exploration:
    """Search every run of `pipeline` for a breach of `pdm-at-most-once`."""
    model = ExecutionModel(pipeline, executors)
    return explore_model(model, max_states=max_states, max_seconds=max_seconds)


def explore_model(
    model: ExecutionModel, *, max_states: int = 200_000, max_seconds: float | None = None
) -> Exploration:
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    parent: dict[RunState, tuple[RunState, Event] | None] = {}
    frontier: list[RunState] = []
    if model.combinations > model.MAX_INSTANCES:
        return Exploration(None, 0, True)
    for inst in model.instances():
        state = model.initial(inst)
        if state not in parent:
            parent[state] = None
            frontier.append(state)
    while frontier:
        following: list[RunState] = []
        for state in frontier:
            if deadline is not None and time.monotonic() > deadline:
                return Exploration(None, len(parent), True)
            for event in model.enabled(state):
                after, breach = model.step(state, event)
                if breach is not None:
                    steps = [*_path(parent, state), event]
                    variant = model.instance_of(state).variant
                    found = counterexample(model, variant, steps, breach)
                    return Exploration(found, len(parent), False)
                if after not in parent:
                    if len(parent) >= max_states:
                        return Exploration(None, len(parent), True)
                    parent[after] = (state, event)
                    following.append(after)
        frontier = following
    return Exploration(None, len(parent), False)


def _path(parent: dict[RunState, tuple[RunState, Event] | None], state: RunState) -> list[Event]:
    events: list[Event] = []
    link = parent[state]
    while link is not None:
        state, event = link
        events.append(event)
        link = parent[state]
    events.reverse()
    return events
