"""Counterexample runs, played out in the execution model itself.

The prover decides on canonical runs computed job by job; a counterexample must be a real
run. The driver here plays one: it takes the canonical run's intentions (which jobs fail,
which run and keep running, which manual job is left unplayed) and, step by step, picks the
next event the model allows: manual jobs with `allow_failure` are played as soon as they can
be, running jobs end as intended, the jobs the breach depends on start in processing order.
Whatever GitLab does on the way (a job enqueued while a manual job was not played yet, a
skipped job brought back) the model does too, so the run is valid by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdmpolicy.prover.model import (
    AFTER_FAILURE,
    MANUAL,
    OVERLAP,
    RETRIED,
    Breach,
    Event,
    ExecutionModel,
    Instance,
    Kind,
    RunState,
    Status,
)

REVIVAL = "revival"


@dataclass(frozen=True)
class Plan:
    """What the run should do, from the canonical run it comes from.

    - RETRIED: `first` starts, fails, its retry starts.
    - AFTER_FAILURE: `first` fails, then `second` starts.
    - OVERLAP: `first` starts and keeps running, then `second` starts.
    - REVIVAL: `first` starts (and keeps running, or fails when it holds a resource group
      the rest needs), `manual` is played and succeeds, then `second` starts.
    """

    kind: str
    first: int
    second: int | None
    fail: frozenset[int]
    flaky: frozenset[int]
    unplayed: frozenset[int]
    allowed: frozenset[int]
    """The jobs the run may start besides the two executors (the canonical run's)."""
    manual: int | None = None


def play(
    model: ExecutionModel, inst: Instance, plan: Plan, ancestors: frozenset[int]
) -> tuple[list[Event], Breach] | None:
    """The run, cut at its first breach; None when the plan cannot be played out.
    `ancestors`: jobs the run may also start when they block the others."""
    return _Driver(model, inst, plan, ancestors).run()


class _Driver:
    def __init__(
        self, model: ExecutionModel, inst: Instance, plan: Plan, ancestors: frozenset[int]
    ) -> None:
        self.model = model
        self.inst = inst
        self.plan = plan
        self.ancestors = ancestors
        self.state: RunState = model.initial(inst)
        self.enabled = set(model.enabled(self.state))
        self.events: list[Event] = []
        self.breach: Breach | None = None
        self.retried: set[int] = set()
        self.manual_played = False

    def fire(self, event: Event) -> bool:
        if event not in self.enabled:
            return False
        self.state, breach = self.model.step(self.state, event, checked=True)
        self.enabled = set(self.model.enabled(self.state))
        self.events.append(event)
        if breach is not None:
            self.breach = breach
        return True

    def status(self, index: int) -> int:
        return self.state.status[index]

    def name(self, index: int) -> str:
        return self.model.jobs[index].name

    def attempt(self, index: int) -> int:
        return self.state.attempts[index]

    def start(self, index: int) -> bool:
        status = self.status(index)
        if status == Status.PENDING:
            kind = Kind.START
        elif status == Status.MANUAL:
            kind = Kind.PLAY
        else:
            return False
        return self.fire(Event(kind, self.name(index), self.attempt(index) + 1))

    def run(self) -> tuple[list[Event], Breach] | None:
        limit = 8 * len(self.model.jobs) + 16
        for _ in range(limit):
            if self.breach is not None:
                return self.events, self.breach
            if not self.step():
                return None
        return None

    # -- one step: the first thing the plan lets happen ----------------------------

    def step(self) -> bool:
        return (
            self.finish()
            or self.play_eagerly()
            or self.end_running()
            or self.start_next()
            or self.revive()
            or self.retry_flaky()
            or self.start_held()
            or self.unblock()
        )

    def finish(self) -> bool:
        """The breaching event, once the run is where the plan wants it."""
        plan = self.plan
        first, second = plan.first, plan.second
        if plan.kind == RETRIED:
            if self.status(first) in (Status.RETRYING, Status.FAILED):
                return self.fire(Event(Kind.RETRY, self.name(first), self.attempt(first) + 1))
            return False
        assert second is not None
        ready = self.status(second) in (Status.PENDING, Status.MANUAL)
        if plan.kind == AFTER_FAILURE:
            return ready and self.status(first) == Status.FAILED and self.start(second)
        if plan.kind == OVERLAP:
            return ready and self.status(first) == Status.RUNNING and self.start(second)
        # REVIVAL: `first` started before the manual job was played.
        return (
            ready
            and self.manual_played
            and self.status(first) in (Status.RUNNING, Status.FAILED)
            and self.start(second)
        )

    def _targets(self) -> tuple[int, ...]:
        plan = self.plan
        found = [plan.first]
        if plan.second is not None:
            found.append(plan.second)
        if plan.manual is not None:
            found.append(plan.manual)
        return tuple(found)

    def play_eagerly(self) -> bool:
        """Play a manual job with allow_failure as soon as it is playable: until then GitLab
        counts it as passed, which the canonical run does not."""
        inst = self.inst
        targets = self._targets()
        for i in inst.order:
            if (
                self.status(i) == Status.MANUAL
                and inst.when[i] == MANUAL
                and inst.allow_failure[i]
                and i in self.plan.allowed
                and i not in self.plan.unplayed
                and i not in targets
                and self.start(i)
            ):
                return True
        return False

    def end_running(self) -> bool:
        plan = self.plan
        for i in self.inst.order:
            if self.status(i) != Status.RUNNING:
                continue
            name = self.name(i)
            attempt = self.attempt(i)
            if i == plan.first and plan.kind in (OVERLAP, REVIVAL):
                continue  # it keeps running
            if i == plan.first and plan.kind == RETRIED:
                return self.fire(Event(Kind.FAIL_RETRIED, name, attempt))
            if i == plan.first and plan.kind == AFTER_FAILURE:
                return self.fire(Event(Kind.FAIL, name, attempt))
            if i in plan.flaky and i not in self.retried:
                self.retried.add(i)
                return self.fire(Event(Kind.FAIL, name, attempt))
            if i in plan.fail:
                return self.fire(Event(Kind.FAIL, name, attempt))
            return self.fire(Event(Kind.SUCCEED, name, attempt))
        return False

    def start_next(self) -> bool:
        """Start the next job the run needs, in processing order (the first executor of an
        AFTER_FAILURE or RETRIED plan among them)."""
        plan = self.plan
        held = (plan.first,) if plan.kind in (OVERLAP, REVIVAL) else ()
        for i in self.inst.order:
            if i in self._targets() and (i in held or i != plan.first):
                continue
            if (i in plan.allowed or i == plan.first) and self.start(i):
                return True
        return False

    def revive(self) -> bool:
        """REVIVAL: the first executor starts as soon as it can, then the manual job is
        played."""
        plan = self.plan
        if plan.kind != REVIVAL or plan.manual is None:
            return False
        if self.status(plan.first) in (Status.PENDING, Status.MANUAL):
            return self.start(plan.first)
        if self.status(plan.first) in (Status.RUNNING, Status.FAILED) and not self.manual_played:
            if plan.manual == plan.second:
                self.manual_played = True
                return True
            if self.start(plan.manual):
                self.manual_played = True
                return True
        return False

    def retry_flaky(self) -> bool:
        """A flaky job is retried once nothing else can happen: the window in which GitLab
        sees it failed lasts as long as possible."""
        for i in self.inst.order:
            if (
                i in self.plan.flaky
                and self.status(i) == Status.FAILED
                and self.fire(Event(Kind.RETRY, self.name(i), self.attempt(i) + 1))
            ):
                return True
        return False

    def start_held(self) -> bool:
        plan = self.plan
        if plan.kind == OVERLAP:
            return self.start(plan.first)
        if plan.kind == REVIVAL and self.status(plan.first) == Status.RUNNING:
            # It holds a resource group the others wait for: let it fail.
            name = self.name(plan.first)
            return self.fire(Event(Kind.FAIL, name, self.attempt(plan.first)))
        return False

    def unblock(self) -> bool:
        """A job GitLab enqueued that the canonical run had skipped (it saw a manual job
        not yet played): it has to run for the jobs after it to go on."""
        targets = self._targets()
        for i in self.inst.order:
            if i in self.ancestors and i not in targets and self.start(i):
                return True
        return False
