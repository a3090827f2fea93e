"""waiver-valid: waivers are complete, name what exists, and have not expired."""

from __future__ import annotations

from collections.abc import Iterator

from pdmpolicy.policies.base import Context, Documentation, Policy, Violation, Waiver
from pdmpolicy.policies.examples import GSTG

_WAIVER = """\
waivers:
  - policy: pdm-executor-timeout
    environment: gstg
    reason: staging migrations are short
    owner: "@release-managers"
    expires: {expires}
"""


class WaiverValid(Policy):
    name = "waiver-valid"
    summary = "waivers name an existing policy and environment, are complete and not expired"
    documentation = Documentation(
        what="Every waiver in `policies/*.yml` names a known policy and environment (and job, "
        "if it names one), gives a reason, an owner and an expiry date, and has not "
        "expired (`--today`). An expired waiver no longer waives anything. This policy "
        "cannot itself be waived.",
        why="A waiver is a decision someone owns for a while, not a permanent off switch. "
        "Waivers that never expire, or that name a policy that was renamed, silently keep "
        "a safety check off long after the reason is gone.",
        failing_example={"gstg.yml": GSTG, "policies.yml": _WAIVER.format(expires="2026-10-31")},
        fix="Renew the waiver with a new expiry and a current reason, or remove it and fix the "
        "finding it covered.",
        fixed_example={"gstg.yml": GSTG, "policies.yml": _WAIVER.format(expires="2026-12-31")},
    )

    def check(self, context: Context) -> Iterator[Violation]:
        environments = {v.name: v for v in context.all_environments}
        for index, waiver in enumerate(context.waivers):
            environment = waiver.environment if waiver.environment in environments else None
            subject = f"waiver:{waiver.policy}:{waiver.environment}:{waiver.job}:{index}"

            def problem(
                message: str,
                key: str,
                hint: str = "",
                *,
                waiver: Waiver = waiver,
                env: str | None = environment,
                subj: str = subject,
            ) -> Violation:
                return Violation(waiver.loc_of(key), message, env, waiver.job, hint, subj)

            if waiver.policy is None:
                yield problem("waiver names no policy", "policy")
            elif waiver.policy not in context.policy_names:
                yield problem(
                    f"waiver names unknown policy '{waiver.policy}'",
                    "policy",
                    "valid: " + ", ".join(sorted(context.policy_names)),
                )
            elif waiver.policy == self.name:
                yield problem("waiver-valid cannot be waived", "policy")
            if waiver.environment is None:
                yield problem("waiver names no environment", "environment")
            elif environment is None:
                yield problem(
                    f"waiver names unknown environment '{waiver.environment}'",
                    "environment",
                    "known: " + ", ".join(sorted(environments)),
                )
            elif waiver.job is not None:
                jobs = {job.name for job in environments[environment].pipeline.jobs}
                if waiver.job not in jobs:
                    yield problem(
                        f"waiver names job '{waiver.job}', which {environment} does not have", "job"
                    )
            for key, value in (("reason", waiver.reason), ("owner", waiver.owner)):
                if value is None:
                    yield problem(
                        f"waiver has no {key}",
                        key if key in waiver.locs else "policy",
                        f"say {'why' if key == 'reason' else 'who'} the exception is accepted",
                    )
            if waiver.expires is None:
                if "expires" not in waiver.locs:
                    yield problem(
                        "waiver has no expiry date",
                        "policy",
                        "add expires: YYYY-MM-DD; waivers are temporary",
                    )
            elif waiver.expired(context.today):
                yield problem(
                    f"waiver of {waiver.policy} for {waiver.environment} expired on "
                    f"{waiver.expires.isoformat()}; it no longer applies",
                    "expires",
                    "renew it with a new date and reason, or fix the finding",
                )
