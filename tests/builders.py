"""Model objects built by hand for tests: a GitLab CI job and pipeline with plain defaults.

One place that knows every field of `CiJob`, so a test names only what it is about and a new
field of the model is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pdmpolicy.core.location import Loc
from pdmpolicy.environments.lower import PIPELINE_STAGES
from pdmpolicy.gitlab.pipeline import Choice, CiJob, Need, Pipeline, ScriptLine, Variable

PATH = "ci.yml"


def ci_job(
    name: str,
    *script: str,
    needs: Sequence[str | Need] | None = None,
    variables: Mapping[str, str] | None = None,
    choices: Sequence[tuple[str, bool] | Choice] = (),
    **overrides: Any,
) -> CiJob:
    """A job of `ci.yml` running `script` (line i written at ci.yml:i): stage `deploy`,
    `when: on_success`, no retry, not interruptible, no resource group, timeout, trigger or
    rules; it inherits the top-level variables but not `default:`. `needs` are job names
    (not optional) or `Need`s, `variables` a mapping, `choices` (when, allow_failure) pairs
    or `Choice`s; any other field of `CiJob` through `overrides` (which win)."""
    fields: dict[str, Any] = {
        "name": name,
        "stage": "deploy",
        "needs": None
        if needs is None
        else tuple(n if isinstance(n, Need) else Need(n, False, Loc(PATH)) for n in needs),
        "when": "on_success",
        "allow_failure": False,
        "retry": 0,
        "interruptible": False,
        "resource_group": None,
        "timeout": None,
        "variables": tuple(Variable(k, v, Loc(PATH)) for k, v in (variables or {}).items()),
        "inherit_default": False,
        "inherit_variables": True,
        "script": tuple(ScriptLine(text, Loc(PATH, i)) for i, text in enumerate(script, 1)),
        "trigger": None,
        "rules": (),
        "loc": Loc(PATH),
        "choices": tuple(
            c if isinstance(c, Choice) else Choice(c[0], c[1], Loc(PATH)) for c in choices
        ),
    }
    fields.update(overrides)
    return CiJob(**fields)


def ci_pipeline(*jobs: CiJob, variables: Mapping[str, str] | None = None) -> Pipeline:
    """`ci.yml` with the stages render writes, top-level `variables`, and `jobs`."""
    return Pipeline(
        path=PATH,
        source=PATH,
        stages=PIPELINE_STAGES,
        variables=tuple(Variable(k, v, Loc(PATH)) for k, v in (variables or {}).items()),
        jobs=jobs,
    )
