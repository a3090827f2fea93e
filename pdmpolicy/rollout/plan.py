"""What may move next, and when: the gates of a rollout step and the plan to the last step.

Computed from the settings the policies themselves read (`promotion-order` and
`one-step-at-a-time`: severity, scope, `soak_days`, waivers), so `status` and `advance`
say in advance what `check` would say afterwards. A rule that is off, out of scope, only a
warning, or waived (a complete waiver, not expired on the day) opens no gate. The engine,
not this module, has the last word: `advance` checks its result with the full policy set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pdmpolicy.core.names import ROLLOUT_STEPS
from pdmpolicy.environments.model import Environment
from pdmpolicy.policyset.config import PolicySet

PROMOTION_ORDER = "promotion-order"
ONE_STEP_AT_A_TIME = "one-step-at-a-time"
LAST = len(ROLLOUT_STEPS) - 1


@dataclass(frozen=True)
class State:
    """Where one environment is in the rollout (as written, or as planned)."""

    name: str
    upstream: str | None
    index: int
    since: dt.date

    @property
    def step(self) -> str:
        return ROLLOUT_STEPS[self.index]


@dataclass(frozen=True)
class Gate:
    """One rule that holds an environment back from a step."""

    rule: str
    opens: dt.date | None
    """The first day the rule allows the move; None when waiting alone never allows it
    (a skipped step, or an upstream that has not reached the step yet)."""
    reason: str


def states_of(environments: Iterable[Environment]) -> dict[str, State]:
    """Upstreams before the environments that follow them (then by name)."""
    by_name = {e.name: e for e in environments}

    def depth(name: str) -> int:
        seen = {name}
        upstream = by_name[name].upstream
        while upstream in by_name and upstream not in seen:
            seen.add(upstream)
            upstream = by_name[upstream].upstream
        return len(seen)

    return {
        e.name: State(e.name, e.upstream, e.step_index, e.since)
        for e in sorted(by_name.values(), key=lambda e: (depth(e.name), e.name))
    }


def soak_days(policy_set: PolicySet, rule: str, environment: str, day: dt.date) -> int | None:
    """The soak `rule` enforces on `environment` on `day`, or None when it blocks nothing
    there: off, a warning, out of scope, or waived for the environment."""
    setting = policy_set.settings.get(rule)
    if setting is None or setting.severity != "error" or not setting.in_scope(environment):
        return None
    if any(waiver.lifts(rule, environment, None, day) for waiver in policy_set.waivers):
        return None
    return int(setting.options.get("soak_days", 0))


def waiver_for(policy_set: PolicySet, rule: str, environment: str, day: dt.date) -> str | None:
    """'waived until D' when a waiver in force lifts `rule` for `environment`."""
    for waiver in policy_set.waivers:
        if waiver.lifts(rule, environment, None, day) and waiver.expires is not None:
            return f"{rule} waived until {waiver.expires.isoformat()}"
    return None


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def gates(
    name: str,
    target: int,
    states: Mapping[str, State],
    policy_set: PolicySet,
    today: dt.date,
) -> list[Gate]:
    """The rules that hold `name` back from moving forward to step `target`.

    Moving back (target at or before the current step) has no gates: it is the way out of
    an incident. Downstream environments left ahead are `behind_upstream`'s business.
    """
    state = states[name]
    if target <= state.index:
        return []
    found: list[Gate] = []
    one_step = soak_days(policy_set, ONE_STEP_AT_A_TIME, name, today)
    if one_step is not None:
        if target > state.index + 1:
            found.append(
                Gate(
                    ONE_STEP_AT_A_TIME,
                    None,
                    f"{name} is at {state.step}: one step per merge request, "
                    f"so {ROLLOUT_STEPS[state.index + 1]} comes first",
                )
            )
        found.append(
            Gate(
                ONE_STEP_AT_A_TIME,
                state.since + dt.timedelta(days=one_step),
                f"{name} entered {state.step} on {state.since.isoformat()} and must soak "
                f"there {_days(one_step)}",
            )
        )
    upstream = states.get(state.upstream) if state.upstream else None
    promotion = soak_days(policy_set, PROMOTION_ORDER, name, today)
    if upstream is not None and promotion is not None:
        step = ROLLOUT_STEPS[target]
        if upstream.index < target:
            found.append(
                Gate(
                    PROMOTION_ORDER,
                    None,
                    f"its upstream {upstream.name} is at {upstream.step}; {name} may reach "
                    f"{step} {_days(promotion)} after {upstream.name} did",
                )
            )
        elif upstream.index == target and target > 0:
            found.append(
                Gate(
                    PROMOTION_ORDER,
                    upstream.since + dt.timedelta(days=promotion),
                    f"its upstream {upstream.name} entered {step} on "
                    f"{upstream.since.isoformat()} and must soak there {_days(promotion)} first",
                )
            )
    return found


def deciding(found: list[Gate]) -> Gate | None:
    """The gate that opens last (one that waiting never opens first of all)."""
    if not found:
        return None
    return max(found, key=lambda g: (g.opens is None, g.opens or dt.date.min))


@dataclass(frozen=True)
class Entry:
    """A step of the plan: entered on `start` (the day written, or the planned day)."""

    step: str
    start: dt.date
    planned: bool


def timeline(
    states: Mapping[str, State], policy_set: PolicySet, today: dt.date
) -> dict[str, list[Entry]]:
    """Every environment's steps from the current one to the last, each entered on the
    first day the rules allow (never before `today`), upstreams first."""
    current = dict(states)
    plan = {name: [Entry(state.step, state.since, False)] for name, state in states.items()}
    while True:
        candidates = []
        for name, state in current.items():
            if state.index == LAST:
                continue
            found = gates(name, state.index + 1, current, policy_set, today)
            if any(g.opens is None for g in found):
                continue
            day = max([today, *(g.opens for g in found if g.opens is not None)])
            candidates.append((day, name))
        if not candidates:
            return plan
        day, name = min(candidates)
        state = current[name]
        current[name] = State(name, state.upstream, state.index + 1, day)
        plan[name].append(Entry(ROLLOUT_STEPS[state.index + 1], day, True))


@dataclass(frozen=True)
class Status:
    """One row of `pdmpolicy status`."""

    environment: str
    database: str
    step: str
    since: dt.date
    days: int
    upstream: str | None
    upstream_step: str | None
    next_step: str | None
    earliest: dt.date | None
    """The first day the next step is allowed; planned (after the upstream's own moves)
    when `planned`, None at the last step."""
    planned: bool
    rule: str | None
    """The rule that decides the date; None when the environment may advance now."""
    reason: str
    waived: tuple[str, ...]

    @property
    def may_advance(self) -> bool:
        return self.next_step is not None and self.rule is None

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "database": self.database,
            "step": self.step,
            "since": self.since.isoformat(),
            "days_at_step": self.days,
            "upstream": self.upstream,
            "upstream_step": self.upstream_step,
            "next_step": self.next_step,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "planned": self.planned,
            "may_advance_now": self.may_advance,
            "rule": self.rule,
            "reason": self.reason,
            "waived": list(self.waived),
        }


def status(
    environments: Iterable[Environment], policy_set: PolicySet, today: dt.date
) -> list[Status]:
    """One row per environment, upstreams first."""
    by_name = {e.name: e for e in environments}
    states = states_of(by_name.values())
    plan = timeline(states, policy_set, today)
    return [_row(by_name[name], states, plan[name], policy_set, today) for name in states]


def _row(
    env: Environment,
    states: Mapping[str, State],
    entries: list[Entry],
    policy_set: PolicySet,
    today: dt.date,
) -> Status:
    state = states[env.name]
    upstream = states.get(state.upstream) if state.upstream else None
    waived = tuple(
        text
        for text in (
            waiver_for(policy_set, rule, env.name, today)
            for rule in (PROMOTION_ORDER, ONE_STEP_AT_A_TIME)
        )
        if text
    )
    next_step: str | None = None
    earliest: dt.date | None = None
    planned = False
    rule: str | None = None
    reason = "at the last step"
    if state.index < LAST:
        next_step = ROLLOUT_STEPS[state.index + 1]
        gate = deciding(gates(env.name, state.index + 1, states, policy_set, today))
        if gate is None or (gate.opens is not None and gate.opens <= today):
            earliest, reason = today, "may advance now"
        else:
            planned = gate.opens is None
            earliest = gate.opens if gate.opens is not None else _planned(entries)
            rule, reason = gate.rule, gate.reason
    return Status(
        environment=env.name,
        database=env.database,
        step=state.step,
        since=state.since,
        days=(today - state.since).days,
        upstream=state.upstream,
        upstream_step=upstream.step if upstream else None,
        next_step=next_step,
        earliest=earliest,
        planned=planned,
        rule=rule,
        reason=reason,
        waived=waived,
    )


def _planned(entries: list[Entry]) -> dt.date | None:
    return entries[1].start if len(entries) > 1 else None
