"""Effect analysis: which jobs execute PDMs, and which jobs are ordered after which.

Two kinds of input: pipelines lowered from environment files (what `check` analyses), and
hand-built pipelines, for what environment files cannot say (jobs in `.pre`, `rules:`
outcomes, scripts in any shape).
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import Document, parse_text
from pdmpolicy.environments.lower import PIPELINE_STAGES, lower
from pdmpolicy.environments.model import build_environment
from pdmpolicy.environments.schema import check_references, validate_shape
from pdmpolicy.gitlab.analysis import DRY_RUN, KUBERNETES, NONE, UNKNOWN, VM, Analysis, analyse
from pdmpolicy.gitlab.pipeline import CiJob, Pipeline
from tests.builders import ci_job as job
from tests.builders import ci_pipeline

HEAD = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: kubernetes-after-vm
  since: 2026-11-16
"""


def lowered(jobs: str, top: str = "") -> Analysis:
    """Analysis of the pipeline lowered from an environment file with these jobs."""
    text = HEAD + top + "jobs:\n" + textwrap.indent(textwrap.dedent(jobs), "  ")
    doc = Document("environments/gstg.yml", parse_text("environments/gstg.yml", text), text)
    assert validate_shape(doc) == []
    assert check_references(doc, "gstg") == []
    return analyse(lower(build_environment(doc)))


def loc(line: int = 1) -> Loc:
    return Loc("ci.yml", line)


def pipeline(*jobs: CiJob, variables: dict[str, str] | None = None) -> Analysis:
    return analyse(ci_pipeline(*jobs, variables=variables))


def effect_of(*script: str, **settings: Any) -> Any:
    variables = settings.pop("top", None)
    return pipeline(job("j", *script, **settings), variables=variables).effect("j")


# Executors from environment files

KCTL_JOB = """\
k:
  runner: kubernetes
  kctl:
    environment: gstg
    action: {action}
    dry_run: {dry_run}
    variables:
      SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
"""


def kctl_effect(action: str = "upgrade", dry_run: str = "false") -> Any:
    return lowered(KCTL_JOB.format(action=action, dry_run=dry_run)).effect("k")


def test_kctl_upgrade_is_a_kubernetes_executor() -> None:
    effect = kctl_effect()
    assert effect.kind == KUBERNETES
    assert effect.is_executor
    assert not effect.is_dry_run
    (call,) = effect.executor_calls
    assert (call.environment, call.stage, call.action, call.dry_run) == (
        "gstg",
        "main",
        "upgrade",
        False,
    )
    assert "runs PDMs" in effect.describe()


def test_kctl_upgrade_with_dry_run_is_a_dry_run() -> None:
    effect = kctl_effect(dry_run="true")
    assert effect.kind is None
    assert effect.is_dry_run
    assert effect.executor_calls == ()
    assert effect.kctl_calls[0].dry_run
    assert effect.describe().startswith("dry run")


def test_kctl_template_is_a_dry_run() -> None:
    effect = kctl_effect(action="template")
    assert not effect.is_executor
    assert effect.is_dry_run


def test_kctl_list_does_nothing_to_pdms() -> None:
    effect = kctl_effect(action="list")
    assert not effect.is_executor
    assert not effect.is_dry_run
    assert effect.describe() == "does not run PDMs"


def test_kctl_canary_stage_is_read_back() -> None:
    effect = lowered(
        KCTL_JOB.format(action="upgrade", dry_run="false").replace(
            "environment: gstg", "environment: gstg\n    stage: cny"
        )
    ).effect("k")
    assert effect.executor_calls[0].stage == "cny"


def test_kctl_without_the_skip_flag_is_conditional() -> None:
    # Pipeline and trigger variables decide: unknown (conditional), never "none".
    effect = lowered(
        KCTL_JOB.format(action="upgrade", dry_run="false").replace(
            '    variables:\n      SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"\n', ""
        )
    ).effect("k")
    assert effect.kind is None
    assert effect.effect == UNKNOWN
    assert effect.conditional
    assert effect.describe().startswith("unknown (conditional)")


VM_JOB = """\
v:
  runner: vm
  variables:
    RUN_POST_DEPLOY_MIGRATIONS: {value}
"""


@pytest.mark.parametrize("value", ['"true"'])
def test_vm_tool_with_run_true_is_a_vm_executor(value: str) -> None:
    effect = lowered(VM_JOB.format(value=value)).effect("v")
    assert effect.kind == VM
    assert effect.describe().startswith("VM executor")


@pytest.mark.parametrize("value", ['"false"', '"TRUE"', '"1"', '"yes"', '""'])
def test_vm_tool_with_any_other_job_value_is_conditional(value: str) -> None:
    # a pipeline variable beats the job's value: the VM tooling may still run PDMs
    effect = lowered(VM_JOB.format(value=value)).effect("v")
    assert effect.kind is None
    assert effect.conditional


def test_vm_tool_without_the_variable_is_conditional() -> None:
    effect = lowered("v:\n  runner: vm\n").effect("v")
    assert effect.kind is None
    assert effect.conditional


def test_a_vm_executor_does_not_inherit_top_level_variables_unless_listed() -> None:
    # Lowering keeps top-level variables (which could carry AUTO_DEPLOY) from executors.
    analysis = lowered(VM_JOB.format(value='"true"'), top='variables:\n  X: "1"\n')
    assert analysis.pipeline.job("v").inherit_variables is False
    assert "X" not in analysis.effect("v").effective_variables


def test_a_job_whose_effect_is_unknown_does_not_inherit_top_level_variables() -> None:
    # A conditional VM job (the switch left to pipeline variables) may run PDMs: lowering
    # keeps top-level variables from it as from an executor; a harmless job keeps them.
    top = 'variables:\n  X: "1"\n'
    analysis = lowered("v:\n  runner: vm\n", top=top)
    assert analysis.effect("v").conditional
    assert analysis.pipeline.job("v").inherit_variables is False
    harmless = lowered("g:\n  runner: generic\n  script:\n    - echo hello\n", top=top)
    assert harmless.pipeline.job("g").inherit_variables is True


def test_run_true_only_at_the_top_level_does_not_reach_the_lowered_vm_job() -> None:
    top = 'variables:\n  RUN_POST_DEPLOY_MIGRATIONS: "true"\n'
    assert lowered("v:\n  runner: vm\n", top=top).effect("v").conditional
    listed = "v:\n  runner: vm\n  inherit_variables: [RUN_POST_DEPLOY_MIGRATIONS]\n"
    assert lowered(listed, top=top).effect("v").kind == VM


def test_generic_script_running_kctl_upgrade_is_an_executor() -> None:
    effect = lowered(
        "g:\n  runner: generic\n  script:\n    - echo start\n"
        "    - SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade\n"
    ).effect("g")
    assert effect.kind == KUBERNETES
    assert effect.executor_calls[0].command.loc.line == HEAD.count("\n") + 6


def test_generic_script_mentioning_kctl_is_not_an_executor() -> None:
    effect = lowered("g:\n  runner: generic\n  script:\n    - echo k-ctl -e gstg upgrade\n")
    assert not effect.effect("g").is_executor


# Executors from hand-written scripts


RUN = "SKIP_POST_DEPLOYMENT_MIGRATIONS=false"


@pytest.mark.parametrize(
    "line",
    [
        f"{RUN} k-ctl -e gstg upgrade",
        f"{RUN} k-ctl -egstg upgrade",
        f"{RUN} k-ctl -e gstg install",
        f"{RUN} /usr/local/bin/k-ctl -e gstg upgrade",
        f"{RUN} ./bin/k-ctl -e gstg upgrade",
        f"sh -c '{RUN} k-ctl -e gstg upgrade'",
        f"bash -c 'export {RUN}; exec k-ctl -e gstg upgrade'",
        f"env -u AUTO_DEPLOY {RUN} k-ctl -e gstg upgrade 2>&1 | tee log",
        f"env {RUN} command k-ctl -e gstg upgrade",
        f"{RUN} k-ctl \\\n  -e gstg \\\n  upgrade",
        f"{RUN} k-ctl -e gstg $ACTION",
    ],
)
def test_kctl_calls_that_execute(line: str) -> None:
    assert effect_of(line).kind == KUBERNETES


@pytest.mark.parametrize(
    ("line", "effect"),
    [
        ("k-ctl -e gstg -D upgrade", DRY_RUN),
        ("k-ctl -e gstg template", DRY_RUN),
        ("k-ctl -e gstg list", NONE),
        ("k-ctl", UNKNOWN),
        ("k-ctl -e gstg remove", UNKNOWN),
        ("SKIP_POST_DEPLOYMENT_MIGRATIONS=true k-ctl -e gstg upgrade", NONE),
        ("env -u SKIP_POST_DEPLOYMENT_MIGRATIONS k-ctl -e gstg upgrade", NONE),
        ("k-ctl -e gstg upgrade", UNKNOWN),
        ("SKIP_POST_DEPLOYMENT_MIGRATIONS=$S k-ctl -e gstg upgrade", UNKNOWN),
        ("k-ctl -e gstg $ACTION", UNKNOWN),
    ],
)
def test_kctl_calls_that_do_not_execute(line: str, effect: str) -> None:
    assert effect_of(line).kind is None
    assert effect_of(line).effect == effect


def test_kctl_skip_value_only_in_job_variables() -> None:
    # "false" there runs PDMs unless a pipeline variable says otherwise: an executor.
    run = effect_of("k-ctl -e gstg upgrade", variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"})
    assert run.kind == KUBERNETES
    # any other value there can be beaten by a pipeline variable "false": conditional.
    skip = effect_of("k-ctl -e gstg upgrade", variables={"SKIP_POST_DEPLOYMENT_MIGRATIONS": "true"})
    assert skip.conditional


def test_kctl_arguments_are_read() -> None:
    (call,) = effect_of("k-ctl -s cny -e gprd -D upgrade").kctl_calls
    assert (call.environment, call.stage, call.action, call.dry_run) == (
        "gprd",
        "cny",
        "upgrade",
        True,
    )
    assert not call.runs_for_real


def test_vm_tool_run_variable_set_inline() -> None:
    assert effect_of("RUN_POST_DEPLOY_MIGRATIONS=true deploy-vms").kind == VM
    assert effect_of("RUN_POST_DEPLOY_MIGRATIONS=false deploy-vms").effect == NONE


def test_vm_tool_run_variable_exported_on_an_earlier_line() -> None:
    assert effect_of("export RUN_POST_DEPLOY_MIGRATIONS=true", "deploy-vms").kind == VM


def test_vm_tool_run_variable_from_job_variables() -> None:
    run = {"RUN_POST_DEPLOY_MIGRATIONS": "true"}
    assert effect_of("deploy-vms", variables=run).kind == VM
    # removed for the process, or the whole environment dropped
    assert effect_of("env -u RUN_POST_DEPLOY_MIGRATIONS deploy-vms", variables=run).effect == NONE
    assert effect_of("env -i deploy-vms", variables=run).effect == NONE
    unset = effect_of("unset RUN_POST_DEPLOY_MIGRATIONS", "deploy-vms", variables=run)
    assert unset.effect == NONE
    # the script's own value wins over the job's
    assert effect_of("RUN_POST_DEPLOY_MIGRATIONS=no deploy-vms", variables=run).effect == NONE


@pytest.mark.parametrize(
    "script",
    [
        ("ansible-playbook -i inventory post-deploy-migrations.yml",),
        ("./scripts/whatever.sh",),
        ("echo run",),
    ],
)
def test_the_vm_switch_makes_any_job_a_vm_executor(script: tuple[str, ...]) -> None:
    run = {"RUN_POST_DEPLOY_MIGRATIONS": "true"}
    assert effect_of(*script, variables=run).kind == VM


@pytest.mark.parametrize(
    ("inherit", "kind"),
    [(True, VM), (False, None), (("RUN_POST_DEPLOY_MIGRATIONS",), VM), (("OTHER",), None)],
)
def test_vm_tool_run_variable_inherited_from_the_top_level(
    inherit: bool | tuple[str, ...], kind: str | None
) -> None:
    top = {"RUN_POST_DEPLOY_MIGRATIONS": "true", "OTHER": "x"}
    assert effect_of("deploy-vms", top=top, inherit_variables=inherit).kind == kind


def test_job_variables_beat_top_level_variables() -> None:
    top = {"RUN_POST_DEPLOY_MIGRATIONS": "true"}
    job_false = {"RUN_POST_DEPLOY_MIGRATIONS": "false"}
    assert effect_of("deploy-vms", top=top, variables=job_false).kind is None
    effect = effect_of("deploy-vms", top={"RUN_POST_DEPLOY_MIGRATIONS": "false"})
    assert effect.kind is None


def test_kubernetes_wins_when_a_job_does_both() -> None:
    effect = effect_of("RUN_POST_DEPLOY_MIGRATIONS=true deploy-vms", f"{RUN} k-ctl -e gstg upgrade")
    assert effect.kind == KUBERNETES
    assert len(effect.vm_calls) == 1


def test_generic_scripts_with_unknown_programs_are_unknown() -> None:
    effect = effect_of("echo hello", "make migrate", "kubectl apply -f job.yml")
    assert effect.kind is None
    assert effect.effect == UNKNOWN
    assert [loc.line for loc, _ in effect.unknown_reasons()] == [2, 3]
    assert "kubectl apply can create the migrations Job" in effect.unknown_reasons()[1][1]


def test_generic_scripts_of_harmless_programs_do_nothing() -> None:
    effect = effect_of("echo hello", "mkdir -p out", "kubectl get pods -n gitlab")
    assert effect.effect == NONE
    assert effect.kctl_calls == ()
    assert effect.vm_calls == ()
    assert effect.unparsable == ()


def test_an_unreadable_line_does_not_hide_the_executor_before_it() -> None:
    effect = effect_of(f"{RUN} k-ctl -e gstg upgrade", "echo 'done")
    assert effect.kind == KUBERNETES
    assert effect.unparsable == ((loc(2), "No closing quotation"),)


def test_executors_lists_the_executing_jobs_in_file_order() -> None:
    analysis = pipeline(
        job("a", f"{RUN} k-ctl -e gstg upgrade"),
        job("b", "echo"),
        job("c", "deploy-vms", variables={"RUN_POST_DEPLOY_MIGRATIONS": "true"}),
    )
    assert [e.job.name for e in analysis.executors] == ["a", "c"]


# Ordering


def test_needs_orders_after_success() -> None:
    analysis = pipeline(job("a"), job("b", needs=("a",)))
    assert analysis.ordered_after_success("a", "b")
    assert not analysis.ordered_after_success("b", "a")


def test_stage_order_orders_after_success() -> None:
    analysis = pipeline(job("b", stage="deploy"), job("a", stage="build"))
    assert analysis.ordered_after_success("a", "b")
    assert not analysis.ordered_after_success("b", "a")


def test_pre_and_post_stages_come_first_and_last() -> None:
    analysis = pipeline(job("post", stage=".post"), job("main"), job("pre", stage=".pre"))
    assert analysis.ordered_after_success("pre", "main")
    assert analysis.ordered_after_success("main", "post")
    assert analysis.execution_order() == ("pre", "main", "post")


def test_jobs_of_one_stage_are_not_ordered() -> None:
    analysis = pipeline(job("a"), job("b"))
    assert not analysis.ordered_after_success("a", "b")
    assert not analysis.ordered_after_success("b", "a")


def test_nothing_is_ordered_after_itself() -> None:
    analysis = pipeline(job("a", stage="build"), job("b", needs=("a",)))
    assert not analysis.ordered_after_success("a", "a")
    assert not analysis.ordered_after_success("b", "b")


def test_allow_failure_breaks_the_guarantee() -> None:
    analysis = pipeline(job("a", allow_failure=True), job("b", needs=("a",)))
    assert not analysis.ordered_after_success("a", "b")
    assert analysis.successors("a") == ("b",)  # b still waits for a to finish


def test_allow_failure_in_an_earlier_stage_breaks_the_guarantee() -> None:
    analysis = pipeline(job("a", stage="build", allow_failure=True), job("b"))
    assert not analysis.ordered_after_success("a", "b")


@pytest.mark.parametrize("when", ["always", "on_failure"])
def test_jobs_that_run_after_failures_are_not_ordered_after_success(when: str) -> None:
    by_needs = pipeline(job("a"), job("b", needs=("a",), when=when))
    by_stage = pipeline(job("a", stage="build"), job("b", when=when))
    assert not by_needs.ordered_after_success("a", "b")
    assert not by_stage.ordered_after_success("a", "b")


@pytest.mark.parametrize("when", ["manual", "delayed"])
def test_manual_and_delayed_jobs_become_playable_only_on_success(when: str) -> None:
    analysis = pipeline(job("a", stage="build"), job("b", when=when))
    assert analysis.ordered_after_success("a", "b")


def test_a_blocking_manual_job_in_an_earlier_stage_keeps_the_guarantee() -> None:
    analysis = pipeline(job("gate", stage="test", when="manual"), job("b"))
    assert analysis.ordered_after_success("gate", "b")


def test_a_non_blocking_manual_job_in_an_earlier_stage_breaks_it() -> None:
    # GitLab's default for manual jobs: an unplayed one counts as passed.
    analysis = pipeline(job("gate", stage="test", when="manual", allow_failure=True), job("b"))
    assert not analysis.ordered_after_success("gate", "b")


def test_needs_empty_waits_for_nothing() -> None:
    analysis = pipeline(job("a", stage="build"), job("b", needs=()))
    assert analysis.direct_predecessors["b"] == ()
    assert not analysis.ordered_after_success("a", "b")
    assert analysis.successors("a") == ()


def test_needs_replaces_stage_order() -> None:
    analysis = pipeline(job("a", stage="build"), job("x", stage="build"), job("b", needs=("x",)))
    assert not analysis.ordered_after_success("a", "b")
    assert analysis.ordered_after_success("x", "b")


def test_a_need_on_a_job_not_in_the_pipeline_is_ignored() -> None:
    analysis = pipeline(job("b", needs=("gone",)))
    assert analysis.direct_predecessors["b"] == ()


def test_transitive_chain() -> None:
    analysis = pipeline(job("a"), job("b", needs=("a",)), job("c", needs=("b",)))
    assert analysis.ordered_after_success("a", "c")
    assert analysis.after_success["c"] == {"a", "b"}


def test_a_chain_through_an_allow_failure_job_is_broken() -> None:
    analysis = pipeline(
        job("a"), job("b", needs=("a",), allow_failure=True), job("c", needs=("b",))
    )
    assert analysis.ordered_after_success("a", "b")
    assert not analysis.ordered_after_success("b", "c")
    assert not analysis.ordered_after_success("a", "c")


def test_a_chain_through_an_always_job_is_broken_before_it() -> None:
    analysis = pipeline(job("a"), job("b", needs=("a",), when="always"), job("c", needs=("b",)))
    assert not analysis.ordered_after_success("a", "c")
    assert analysis.ordered_after_success("b", "c")


def test_a_broken_chain_with_a_direct_edge_still_holds() -> None:
    analysis = pipeline(
        job("a"), job("b", needs=("a",), allow_failure=True), job("c", needs=("a", "b"))
    )
    assert analysis.ordered_after_success("a", "c")


def test_stage_order_is_transitive_across_three_stages() -> None:
    analysis = pipeline(
        job("a", stage="build"),
        job("b", stage="test", allow_failure=True),
        job("c", stage="deploy"),
    )
    assert analysis.ordered_after_success("a", "c")
    assert not analysis.ordered_after_success("b", "c")


def test_every_outcome_of_rules_must_keep_the_guarantee() -> None:
    # A rule that can make b `when: always`, or a `allow_failure: true`, breaks the order
    # in the pipelines where that rule matches.
    b_may_always = pipeline(
        job("a"), job("b", needs=("a",), choices=(("on_success", False), ("always", False)))
    )
    assert not b_may_always.ordered_after_success("a", "b")
    a_may_fail = pipeline(
        job("a", choices=(("on_success", False), ("on_success", True))), job("b", needs=("a",))
    )
    assert not a_may_fail.ordered_after_success("a", "b")
    never_counts_for_nothing = pipeline(
        job("a", choices=(("on_success", False), ("never", True))),
        job("b", needs=("a",), choices=(("manual", False), ("never", False))),
    )
    assert never_counts_for_nothing.ordered_after_success("a", "b")


def test_lowered_kubernetes_after_vm_is_ordered() -> None:
    analysis = lowered(
        VM_JOB.format(value='"true"')
        + KCTL_JOB.format(action="upgrade", dry_run="false").replace(
            "  runner: kubernetes\n", "  runner: kubernetes\n  needs: [v]\n"
        )
    )
    assert analysis.ordered_after_success("v", "k")
    assert not analysis.ordered_after_success("k", "v")
    assert analysis.execution_order() == ("v", "k")


def test_lowered_jobs_without_needs_in_one_stage_are_not_ordered() -> None:
    analysis = lowered(
        VM_JOB.format(value='"true"') + KCTL_JOB.format(action="upgrade", dry_run="false")
    )
    assert not analysis.ordered_after_success("v", "k")
    assert not analysis.ordered_after_success("k", "v")


def test_lowered_manual_job_blocks_later_stages() -> None:
    # Lowering makes manual jobs blocking (allow_failure false), unlike GitLab's default.
    analysis = lowered(
        "gate:\n  runner: generic\n  stage: test\n  when: manual\n  script: [echo go]\n"
        + VM_JOB.format(value='"true"')
    )
    assert analysis.pipeline.job("gate").allow_failure is False
    assert analysis.ordered_after_success("gate", "v")


def test_lowered_allow_failure_breaks_the_order() -> None:
    analysis = lowered(
        VM_JOB.format(value='"true"')
        + "  allow_failure: true\n"
        + KCTL_JOB.format(action="upgrade", dry_run="false").replace(
            "  runner: kubernetes\n", "  runner: kubernetes\n  needs: [v]\n"
        )
    )
    assert not analysis.ordered_after_success("v", "k")


# successors and execution order


def test_successors_follow_every_wait_edge() -> None:
    analysis = pipeline(
        job("a", stage="build"),
        job("b", stage="test", when="always"),
        job("c", needs=("b",)),
        job("d", stage="build"),
        job("e", needs=()),
    )
    assert analysis.successors("a") == ("b", "c")
    assert analysis.successors("b") == ("c",)
    assert analysis.successors("c") == ()
    assert analysis.successors("e") == ()


def test_successors_are_sorted_by_name() -> None:
    analysis = pipeline(job("z", needs=("a",)), job("m", needs=("z",)), job("a"))
    assert analysis.successors("a") == ("m", "z")


def test_execution_order_respects_waits_and_breaks_ties_by_name() -> None:
    analysis = pipeline(
        job("zeta", stage="build"),
        job("alpha", needs=("zeta",)),
        job("beta", stage="build"),
        job("gamma", needs=()),
    )
    assert analysis.execution_order() == ("beta", "gamma", "zeta", "alpha")


def test_execution_order_does_not_depend_on_the_order_jobs_are_written() -> None:
    jobs = [
        job("a", stage="build"),
        job("b", needs=("a",)),
        job("c", stage="test"),
        job("d", needs=()),
        job("e", stage=".post"),
    ]
    orders = {pipeline(*written).execution_order() for written in itertools.permutations(jobs)}
    assert orders == {("a", "b", "c", "d", "e")}


def test_lowered_pipeline_lists_jobs_in_execution_order() -> None:
    analysis = lowered(
        KCTL_JOB.format(action="upgrade", dry_run="false").replace(
            "  runner: kubernetes\n", "  runner: kubernetes\n  needs: [v]\n"
        )
        + VM_JOB.format(value='"true"')
    )
    assert [j.name for j in analysis.pipeline.jobs] == ["v", "k"]


# Properties on random acyclic job graphs

STAGES = PIPELINE_STAGES
WHEN = ("on_success", "manual", "delayed", "always", "on_failure")


@st.composite
def acyclic_pipelines(draw: st.DrawFn) -> Pipeline:
    """Jobs j0..jn where every wait goes from a lower to a higher number: `needs` name
    earlier jobs only, and stages never decrease along the numbering. Written in any order.
    """
    count = draw(st.integers(min_value=1, max_value=8))
    stages = sorted(
        draw(st.lists(st.sampled_from(STAGES), min_size=count, max_size=count)), key=STAGES.index
    )
    jobs = []
    for index in range(count):
        earlier = [f"j{i}" for i in range(index)]
        written_needs = st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([])
        needs = draw(st.none() | written_needs.map(tuple))
        choices = draw(
            st.just(())
            | st.just(())
            | st.lists(st.tuples(st.sampled_from((*WHEN, "never")), st.booleans()), max_size=3)
            .filter(bool)
            .map(tuple)
        )
        jobs.append(
            job(
                f"j{index}",
                stage=stages[index],
                needs=needs,
                # weighted towards the settings that make edges, so chains are common
                when=draw(st.sampled_from(("on_success", "on_success", *WHEN))),
                allow_failure=draw(st.sampled_from((False, False, True))),
                choices=choices,
            )
        )
    written = draw(st.permutations(jobs))
    return ci_pipeline(*written)


@given(acyclic_pipelines())
def test_ordered_after_success_is_irreflexive_and_transitive(pipeline_: Pipeline) -> None:
    analysis = analyse(pipeline_)
    names = [j.name for j in pipeline_.jobs]
    for a in names:
        assert not analysis.ordered_after_success(a, a)
    for a, b, c in itertools.product(names, repeat=3):
        if analysis.ordered_after_success(a, b) and analysis.ordered_after_success(b, c):
            assert analysis.ordered_after_success(a, c)


@given(acyclic_pipelines())
def test_ordered_after_success_implies_waiting(pipeline_: Pipeline) -> None:
    analysis = analyse(pipeline_)
    for b in analysis.after_success:
        for a in analysis.after_success[b]:
            assert b in analysis.successors(a)


@given(acyclic_pipelines())
def test_execution_order_is_a_deterministic_topological_order(pipeline_: Pipeline) -> None:
    analysis = analyse(pipeline_)
    order = analysis.execution_order()
    assert sorted(order) == sorted(j.name for j in pipeline_.jobs)
    position = {name: i for i, name in enumerate(order)}
    for name, before in analysis.direct_predecessors.items():
        assert all(position[b] < position[name] for b in before)
    reversed_jobs = replace(pipeline_, jobs=tuple(reversed(pipeline_.jobs)))
    assert analyse(reversed_jobs).execution_order() == order
