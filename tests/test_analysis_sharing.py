"""What the analysis remembers between jobs never hides what differs between them.

Jobs share scripts through `extends:`, anchors and `!reference`, so the analysis reads a
script once and classifies a (script, variables) pair once. These tests hold that sharing
to the answer each job gets on its own: the same script with other variables, at another
place, or calling a script file that changed between two analyses.
"""

from __future__ import annotations

from pathlib import Path

from pdmpolicy.core.location import Loc
from pdmpolicy.environments.lower import PIPELINE_STAGES
from pdmpolicy.gitlab.analysis import KUBERNETES, NONE, UNKNOWN, analyse
from pdmpolicy.gitlab.pipeline import CiJob, Pipeline, Variable
from pdmpolicy.gitlab.shell import read_script
from tests.test_analysis import job

UPGRADE = "bin/k-ctl -e gstg upgrade"


def _pipeline(*jobs: CiJob, variables: dict[str, str] | None = None) -> Pipeline:
    return Pipeline(
        path="ci.yml",
        source="ci.yml",
        stages=PIPELINE_STAGES,
        variables=tuple(Variable(k, v, Loc("ci.yml")) for k, v in (variables or {}).items()),
        jobs=jobs,
    )


def test_one_script_with_different_job_variables_gets_each_jobs_effect() -> None:
    analysis = analyse(
        _pipeline(
            job("runs", UPGRADE, variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}),
            job("skips", UPGRADE, variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "true"}),
            job("leaves", UPGRADE),
            job("runs-again", UPGRADE, variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}),
        )
    )
    assert analysis.effect("runs").effect == KUBERNETES
    assert analysis.effect("skips").effect == UNKNOWN  # a pipeline variable may say "false"
    assert analysis.effect("leaves").conditional
    assert analysis.effect("runs-again").effect == KUBERNETES
    # Each job keeps its own variables, and its own definition.
    assert analysis.effect("skips").effective_variables[
        "SKIP_POST_DEPLOYMENT_MIGRATIONS"
    ].value == ("true")
    assert analysis.effect("runs-again").job.name == "runs-again"


def test_one_script_with_and_without_inherited_variables() -> None:
    """Top-level variables reach a job only per its `inherit: variables`."""
    analysis = analyse(
        _pipeline(
            job("inherits", "deploy-vms --all"),
            job("does-not", "deploy-vms --all", inherit_variables=False),
            variables={"RUN_POST_DEPLOY_MIGRATIONS": "true"},
        )
    )
    assert analysis.effect("inherits").effect == "vm"
    assert analysis.effect("does-not").effect == UNKNOWN


def test_the_same_text_at_another_place_is_reported_at_its_own_place() -> None:
    first, _ = read_script([(UPGRADE, Loc("a.yml", 3, 7))])
    second, _ = read_script([(UPGRADE, Loc("b.yml", 9, 5))])
    assert (first[0].loc, second[0].loc) == (Loc("a.yml", 3, 7), Loc("b.yml", 9, 5))
    # What a caller does with the lists it gets does not change the next answer.
    first.clear()
    again, errors = read_script([(UPGRADE, Loc("a.yml", 3, 7))])
    assert [c.program for c in again] == ["k-ctl"] and errors == []


def test_a_script_longer_than_what_is_remembered_is_read_the_same() -> None:
    long = [(f"echo {'x' * 100} {i}", Loc("ci.yml", i)) for i in range(1, 400)]
    long.append(("bin/k-ctl -e gprd upgrade", Loc("ci.yml", 400)))
    found, errors = read_script(long)
    assert len(found) == 400 and found[-1].args == ("-e", "gprd", "upgrade") and not errors


def test_a_script_file_changed_between_two_analyses_is_read_again(tmp_path: Path) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text("echo nothing to do\n", encoding="utf-8")
    pipeline = _pipeline(
        job("a", "./deploy.sh", variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}),
        job("b", "./deploy.sh", variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}),
    )
    before = analyse(pipeline, root=tmp_path)
    assert before.effect("a").effect == NONE and before.effect("b").effect == NONE
    script.write_text(f"{UPGRADE}\n", encoding="utf-8")
    after = analyse(pipeline, root=tmp_path)
    assert after.effect("a").effect == KUBERNETES and after.effect("b").effect == KUBERNETES
