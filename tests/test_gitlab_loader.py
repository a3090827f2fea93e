"""The GitLab CI loader: effective values, their source lines, unsupported constructs, limits.

Fixture pipelines live in tests/fixtures/gitlab/ (see its README). A line ending in
`# expect: <job> <field>` is where the loader must place that job's effective `<field>`
(`variables.NAME` for one variable); the tests read those markers, so the fixtures say
in one place both what they contain and where each value comes from.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.lower import lower, parent
from pdmpolicy.environments.project import load_environments
from pdmpolicy.gitlab import load_pipelines
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import CiJob, Pipeline, RuleCase
from pdmpolicy.gitlab.yaml import ALIAS_NODE_BUDGET, resolve_plain, ruby_text
from pdmpolicy.output.render import emit
from pdmpolicy.policies.examples import GSTG, GSTG_CNY, GSTG_CNY_EXECUTOR, GSTG_FIRST, changed
from tests.conftest import REPO_ROOT, Repo

FIXTURES = REPO_ROOT / "tests/fixtures/gitlab"
FIXTURE_PATH = "tests/fixtures/gitlab"
VM = "gstg-vm-post-deploy-migrations"
KUBE = "gstg-kubernetes-post-deploy-migrations"
NOWHERE = Loc("-")
_EXPECT = re.compile(r"#\s*expect:\s*(\S+)\s+(\S+)\s*$")


def load(name: str) -> tuple[Pipeline, ...]:
    return load_pipelines(FIXTURES / name, REPO_ROOT)


def one(name: str) -> Pipeline:
    pipelines = load(name)
    assert len(pipelines) == 1
    return pipelines[0]


def expectations(name: str) -> list[tuple[str, str, int]]:
    """(job, field, line) for every `# expect:` marker of a fixture."""
    found = []
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        match = _EXPECT.search(line)
        if match and match.group(1) != "cycle":
            found.append((match.group(1), match.group(2), number))
    return found


def loc_of(pipeline: Pipeline, job_name: str, field: str) -> Loc:
    job = pipeline.job(job_name)
    if field.startswith("variables."):
        name = field.split(".", 1)[1]
        return next(v.loc for v in job.variables if v.name == name)
    assert field in job.locs, f"{job_name}: no location recorded for {field}"
    return job.locs[field]


def write(tmp_path: Path, text: str, name: str = ".gitlab-ci.yml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Pipeline:
    return load_pipelines(write(tmp_path, text), tmp_path)[0]


def error_of(tmp_path: Path, text: str | bytes) -> InputError:
    path = tmp_path / ".gitlab-ci.yml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_pipelines(path, tmp_path)
    return caught.value


# --- the pipelines that run PDMs twice, and the safe ones -------------------------------

UNSAFE = {
    "unsafe-auto-retry.yml": (KUBE, "retry", 2),
    "unsafe-default-retry.yml": (VM, "retry", 2),
    "unsafe-extends-retry.yml": (KUBE, "retry", 1),
    "unsafe-anchor-retry.yml": (VM, "retry", 2),
    "unsafe-when-always.yml": (KUBE, "when", "always"),
    "unsafe-on-failure.yml": (VM, "when", "on_failure"),
    "unsafe-allow-failure.yml": (VM, "allow_failure", True),
    "unsafe-same-stage.yml": (KUBE, "needs", None),
    "unsafe-manual-unordered.yml": (KUBE, "allow_failure", True),
    "unsafe-missing-needs.yml": (KUBE, "needs", ("prepare",)),
}
SAFE_STEPS = {
    "safe-vm.yml": ["vm"],
    "safe-dry-run.yml": ["vm"],
    "safe-kubernetes-after-vm.yml": ["vm", "kubernetes"],
    "safe-kubernetes-first.yml": ["kubernetes", "vm"],
    "safe-kubernetes-only.yml": ["kubernetes"],
}


def test_every_fixture_is_listed() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.yml")}
    assert on_disk == set(UNSAFE) | set(SAFE_STEPS)


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_fixture_carries_its_mechanism(name: str) -> None:
    pipeline = one(name)
    assert pipeline.unsupported == ()
    job_name, field, expected = UNSAFE[name]
    job = pipeline.job(job_name)
    value: Any = getattr(job, field)
    if field == "needs" and value is not None:
        value = tuple(need.job for need in value)
    assert value == expected
    assert analyse(pipeline).effect(job_name).is_executor
    markers = expectations(name)
    assert markers, f"{name} marks the line responsible"
    for marked_job, marked_field, line in markers:
        assert loc_of(pipeline, marked_job, marked_field).line == line


def test_unsafe_retry_locations_point_at_default_template_and_anchor() -> None:
    default = one("unsafe-default-retry.yml").job(VM).loc_of("retry")
    assert (default.path, default.line) == (f"{FIXTURE_PATH}/unsafe-default-retry.yml", 5)
    extended = one("unsafe-extends-retry.yml").job(KUBE)
    assert extended.retry_when == ("script_failure",)
    assert extended.loc_of("retry").line == 5  # the template's `max:`, two levels up
    anchored = one("unsafe-anchor-retry.yml").job(VM)
    assert anchored.loc_of("retry").line == 6  # the anchored mapping, not `retry: 0`


def test_two_executors_in_one_stage_have_nothing_between_them() -> None:
    pipeline = one("unsafe-same-stage.yml")
    analysis = analyse(pipeline)
    assert not analysis.ordered_after_success(VM, KUBE)
    assert not analysis.ordered_after_success(KUBE, VM)


@pytest.mark.parametrize("name", sorted(SAFE_STEPS))
def test_safe_fixture_executors_are_safe_and_ordered(name: str) -> None:
    pipeline = one(name)
    assert pipeline.unsupported == ()
    analysis = analyse(pipeline)
    order = [effect.job.name for effect in analysis.executors]
    kinds = [analysis.effect(job).kind for job in analysis.execution_order() if job in order]
    assert kinds == SAFE_STEPS[name]
    for effect in analysis.executors:
        job = effect.job
        assert (job.retry, job.interruptible, job.allow_failure) == (0, False, False)
        assert job.when == "on_success"
        assert job.resource_group == "gstg-postdeploy-migrations"
        assert job.timeout == "10h"
        assert pipeline.inherited_variables(job) == ()
    executors = [job for job in analysis.execution_order() if job in order]
    for first, second in itertools.pairwise(executors):
        assert analysis.ordered_after_success(first, second)


def test_safe_vm_opts_out_of_the_default_retry_that_other_jobs_get() -> None:
    pipeline = one("safe-vm.yml")
    assert pipeline.job("lint").retry == 2
    assert pipeline.job("lint").interruptible is True
    executor = pipeline.job(VM)
    assert (executor.retry, executor.interruptible, executor.inherit_default) == (0, False, False)


def test_safe_dry_run_has_a_dry_run_and_no_kubernetes_executor() -> None:
    analysis = analyse(one("safe-dry-run.yml"))
    assert analysis.effect("gstg-kubernetes-post-deploy-migrations-dry-run").is_dry_run


def test_safe_kubernetes_first_strips_variables_through_a_reference() -> None:
    pipeline = one("safe-kubernetes-first.yml")
    job = pipeline.job(KUBE)
    assert [line.text for line in job.script] == [
        "unset AUTO_DEPLOY GITLAB_IMAGE_TAG",
        "SKIP_POST_DEPLOYMENT_MIGRATIONS=false WAIT_FOR_JOBS=true k-ctl -e gstg upgrade",
    ]
    assert job.script[0].loc.line == 8  # the referenced template's line
    (call,) = analyse(pipeline).effect(KUBE).executor_calls
    assert {"AUTO_DEPLOY", "GITLAB_IMAGE_TAG"} <= call.command.stripped


def test_safe_kubernetes_only_rule_gives_run_or_absent() -> None:
    job = one("safe-kubernetes-only.yml").job(KUBE)
    assert [(c.when, c.allow_failure) for c in job.choices] == [
        ("on_success", False),
        ("never", False),
    ]
    assert [rule.if_ for rule in job.rules] == ['$DEPLOY_ENVIRONMENT == "gstg"']


# --- constructs ---------------------------------------------------------------------------


def test_stages_always_have_pre_first_and_post_last() -> None:
    assert one("constructs/needs-and-when.yml").stages == (
        ".pre",
        "build",
        "deploy",
        "verify",
        ".post",
    )
    assert one("constructs/retry.yml").stages == (".pre", "build", "test", "deploy", ".post")


def test_default_keywords_and_inherit() -> None:
    pipeline = one("constructs/defaults.yml")
    for job, field, line in expectations("constructs/defaults.yml"):
        assert loc_of(pipeline, job, field).line == line
    everything = pipeline.job("inherits-all")
    assert (everything.retry, everything.interruptible, everything.timeout) == (1, True, None)
    assert [line.text for line in everything.script] == [
        'echo "default before_script"',
        'echo "all"',
    ]
    assert [v.name for v in pipeline.inherited_variables(everything)] == ["GLOBAL_A", "GLOBAL_B"]
    nothing = pipeline.job("inherits-none")
    assert (nothing.retry, nothing.interruptible, nothing.inherit_default) == (0, False, False)
    assert [line.text for line in nothing.script] == ['echo "none"']
    assert pipeline.inherited_variables(nothing) == ()
    some = pipeline.job("inherits-some")
    assert (some.retry, some.interruptible, some.inherit_default) == (1, False, True)
    assert [line.text for line in some.script] == ['echo "some"']
    assert some.inherit_variables == ("GLOBAL_B",)
    assert [v.name for v in pipeline.inherited_variables(some)] == ["GLOBAL_B"]
    own = pipeline.job("own-values")
    assert (own.retry, own.interruptible, own.timeout) == (0, False, "2h")
    assert [line.text for line in own.script] == ['echo "own before_script"', 'echo "one line"']
    (note,) = pipeline.notes
    assert note.loc.line == 5 and "default: timeout has no effect" in note.what


def test_variable_values_are_what_gitlab_passes() -> None:
    pipeline = one("constructs/variables.yml")
    assert {v.name: v.value for v in pipeline.variables} == {
        "PLAIN": "text",
        "QUOTED_NO": "no",
        "PLAIN_NO": "false",
        "PLAIN_YES": "true",
        "PLAIN_ON": "true",
        "PLAIN_OFF": "false",
        "PLAIN_TRUE": "true",
        "SINGLE_Y": "y",
        "NUMBER": "42",
        "OCTAL": "8",
        "HEX": "31",
        "FLOAT": "1.5",
        "SEXAGESIMAL": "5400",
        "EMPTY": "",
        "WITH_DESCRIPTION": "false",
        "DESCRIPTION_ONLY": "",
        "BOOL_IN_VALUE": "false",
    }
    job = pipeline.job("job")
    assert {v.name: v.value for v in job.variables} == {
        "JOB_FLOAT": "1.0",
        "SKIP_POST_DEPLOYMENT_MIGRATIONS": "false",
    }
    by_name = {v.name: v for v in pipeline.variables}
    assert by_name["WITH_DESCRIPTION"].loc.line == 18  # the `value:` line
    assert by_name["PLAIN_NO"].loc == Loc(f"{FIXTURE_PATH}/constructs/variables.yml", 5, 13)


def test_needs_when_and_allow_failure() -> None:
    pipeline = one("constructs/needs-and-when.yml")
    for job, field, line in expectations("constructs/needs-and-when.yml"):
        assert loc_of(pipeline, job, field).line == line

    def needs(name: str) -> Any:
        found = pipeline.job(name).needs
        return None if found is None else [(n.job, n.optional) for n in found]

    assert needs("verify-job") is None
    assert needs("needs-strings") == [("build-a", False), ("build-b", False)]
    assert needs("needs-maps") == [
        ("build-a", False),
        ("build-b", True),
        ("not-in-this-pipeline", True),
    ]
    assert needs("needs-nothing") == []
    when = {job.name: (job.when, job.allow_failure) for job in pipeline.jobs}
    assert when["on-failure"] == ("on_failure", False)
    assert when["always"] == ("always", False)
    assert when["manual-default"] == ("manual", True)
    assert when["manual-blocking"] == ("manual", False)
    assert when["delayed"] == ("delayed", False)
    assert when["exit-codes"] == ("on_success", True)
    assert pipeline.job("delayed").start_in == "30 minutes"
    (note,) = pipeline.notes
    assert "exit_codes" in note.what and note.loc.line == 66


def test_retry_forms() -> None:
    pipeline = one("constructs/retry.yml")
    retry = {job.name: (job.retry, job.retry_when) for job in pipeline.jobs}
    assert retry == {
        "number": (2, ()),
        "mapping": (1, ("runner_system_failure", "stuck_or_timeout_failure")),
        "when-only": (0, ("always",)),
        "single-when": (2, ("script_failure",)),
    }
    for job, field, line in expectations("constructs/retry.yml"):
        assert loc_of(pipeline, job, field).line == line
    assert any("retry:exit_codes" in note.what for note in pipeline.notes)


def test_extends_merges_like_gitlab() -> None:
    pipeline = one("constructs/extends.yml")
    for job, field, line in expectations("constructs/extends.yml"):
        assert loc_of(pipeline, job, field).line == line

    def variables(name: str) -> dict[str, str]:
        return {v.name: v.value for v in pipeline.job(name).variables}

    multi = pipeline.job("multi-level")
    assert (multi.stage, multi.retry, multi.interruptible) == ("deploy", 1, True)
    assert variables("multi-level") == {
        "FROM_BASE": "base",
        "OVERRIDDEN": "middle",
        "FROM_MIDDLE": "middle",
        "OWN": "own",
    }
    later = pipeline.job("later-parent-wins")
    assert (later.retry, later.timeout) == (0, "1h")
    assert variables("later-parent-wins")["OVERRIDDEN"] == "other"
    wins = pipeline.job("job-wins")
    assert wins.retry == 2
    assert [line.text for line in wins.script] == ['echo "own script replaces the list"']
    dropped = pipeline.job("drops-key")
    assert (dropped.interruptible, dropped.variables) == (False, ())
    assert pipeline.job("extends-a-job").stage == "test"
    assert variables("extends-a-job")["OWN"] == "own"
    assert [job.name for job in pipeline.jobs] == [
        "multi-level",
        "later-parent-wins",
        "job-wins",
        "drops-key",
        "extends-a-job",
    ]


def test_anchors_and_merge_keys_follow_psych() -> None:
    pipeline = one("constructs/anchors.yml")
    for job, field, line in expectations("constructs/anchors.yml"):
        assert loc_of(pipeline, job, field).line == line
    assert pipeline.job("explicit-after-merge").retry == 0
    before = pipeline.job("explicit-before-merge")
    assert before.retry == 1  # Psych merges in order: the merged value replaces `retry: 0`
    assert (before.interruptible, before.resource_group) == (True, "db-main")
    merged = pipeline.job("merge-list")
    assert (merged.retry, merged.timeout, merged.interruptible) == (2, "2h", True)
    inline = pipeline.job("inline-merge")
    assert (inline.retry, inline.stage) == (2, "deploy")
    assert [line.text for line in inline.script] == ['echo "anchored scalar"', 'echo "own line"']
    assert inline.script[0].loc.line == 12  # where the anchored scalar is written


def test_references_resolve_in_scripts_variables_and_values() -> None:
    pipeline = one("constructs/references.yml")
    for name, field, line in expectations("constructs/references.yml"):
        assert loc_of(pipeline, name, field).line == line
    job = pipeline.job("uses-references")
    assert job.retry == 0
    assert [line.text for line in job.script] == [
        'echo "setup"',
        "unset AUTO_DEPLOY GITLAB_IMAGE_TAG",
        "unset AUTO_DEPLOY GITLAB_IMAGE_TAG",
        "k-ctl -e gstg upgrade",
    ]
    assert [line.loc.line for line in job.script] == [9, 5, 5, 24]
    other = pipeline.job("reads-a-job")
    assert {v.name: v.value for v in other.variables} == {"OTHER": "deploy"}
    assert [line.text for line in other.script] == [line.text for line in job.script[2:]]


def test_rules_become_choices() -> None:
    pipeline = one("constructs/rules.yml")

    def choices(name: str) -> list[tuple[str, bool, int]]:
        return [(c.when, c.allow_failure, c.loc.line) for c in pipeline.job(name).choices]

    assert choices("conditions") == [
        ("manual", False, 7),
        ("on_success", True, 9),
        ("never", False, 12),  # the exists: rule; "no rule matched" gives the same outcome
    ]
    # The job-level `when: manual` still sets allow_failure's default (GitLab's `ignore`).
    assert choices("unconditional-last") == [("never", False, 19), ("on_success", True, 20)]
    first = pipeline.job("unconditional-first")
    assert choices("unconditional-first") == [("delayed", False, 25)]
    assert first.start_in == "1 hour"
    assert choices("manual-in-rules") == [
        ("manual", False, 34),
        ("manual", True, 36),
        ("never", False, 32),  # no rule matched: placed at `rules:`
    ]
    assert choices("job-level-manual") == [("manual", True, 43), ("never", False, 42)]
    interruptible = pipeline.job("interruptible-rule")
    assert interruptible.interruptible is True
    assert interruptible.loc_of("interruptible").line == 49
    assert choices("interruptible-rule") == [("on_success", False, 48)]
    assert choices("empty-rules") == [("never", False, 54)]
    assert [rule.if_ for rule in pipeline.job("conditions").rules] == [
        '$CI_COMMIT_BRANCH == "main"'
    ]
    assert pipeline.unsupported == ()


def test_unsupported_constructs_are_reported_where_they_are() -> None:
    pipeline = one("constructs/unsupported.yml")
    found = {(u.loc.line, u.what.split(" ")[0], u.job) for u in pipeline.unsupported}
    assert found == {
        (5, "workflow:rules:variables", None),
        (9, "trigger:", "cross-project-trigger"),
        (13, "trigger:project", "project-trigger"),
        (19, "needs:pipeline", "cross-pipeline-needs"),
        (25, "after_script", "after-script-runs-kctl"),
        (36, "environment:on_stop", "stops-environment"),
        (48, "rules:needs", "rule-needs-and-variables"),
        (49, "rules:variables", "rule-needs-and-variables"),
        (54, "'retyr'", "typo"),
    }
    assert all(
        u.loc.path == f"{FIXTURE_PATH}/constructs/unsupported.yml" for u in pipeline.unsupported
    )
    assert [note.loc.line for note in pipeline.notes] == [2]  # workflow:, read as created
    # A downstream pipeline that is not read leaves the trigger job's effect unknown.
    for name in ("cross-project-trigger", "project-trigger"):
        assert "downstream pipeline" in (pipeline.job(name).incomplete or "")
    assert pipeline.job("typo").incomplete is None
    assert pipeline.job("cross-project-trigger").trigger is None
    assert pipeline.job("cross-pipeline-needs").needs == ()


def test_root_inputs_without_default_and_legacy_types(tmp_path: Path) -> None:
    pipeline = load_text(
        tmp_path,
        "spec:\n  inputs:\n    env: {}\n---\ntypes: [build, test]\njob:\n  script: [echo]\n"
        "  run: [{name: a, script: echo}]\n",
    )
    assert [(u.loc.line, u.what.split(" ")[0]) for u in pipeline.unsupported] == [
        (3, "input"),
        (8, "run:"),
    ]
    assert pipeline.stages == (".pre", "build", "test", ".post")


def test_trigger_children_are_loaded_once_each_in_every_include_form() -> None:
    pipelines = load("trigger/parent.yml")
    assert [p.path for p in pipelines] == [
        f"{FIXTURE_PATH}/trigger/parent.yml",
        f"{FIXTURE_PATH}/trigger/child-a.yml",
        f"{FIXTURE_PATH}/trigger/child-b.yml",
    ]
    parent_pipeline = pipelines[0]
    triggers = {job.name: job.trigger for job in parent_pipeline.jobs}
    child_a = f"{FIXTURE_PATH}/trigger/child-a.yml"
    child_b = f"{FIXTURE_PATH}/trigger/child-b.yml"
    assert triggers["string-form"] is not None
    assert (triggers["string-form"].include, triggers["string-form"].strategy) == (
        child_a,
        "depend",
    )
    assert triggers["string-form"].forward_yaml_variables is False
    assert triggers["string-form"].forward_pipeline_variables is True
    local = triggers["local-form"]
    assert local is not None
    assert (local.include, local.strategy, local.forward_yaml_variables) == (child_b, None, True)
    assert local.forward_pipeline_variables is False
    listed = triggers["list-form"]
    assert listed is not None and (listed.include, listed.strategy) == (child_a, "mirror")
    manual = parent_pipeline.job("local-form")
    assert (manual.when, manual.allow_failure, manual.script) == ("manual", True, ())
    assert parent_pipeline.job("list-form").resource_group == "gstg-postdeploy-migrations"
    assert pipelines[1].job("to-b").trigger is not None


def test_trigger_include_with_several_files_is_one_child_merged_from_them() -> None:
    parent, both, child_b, generated = load("trigger/merged.yml")
    assert [p.path for p in (parent, both, child_b, generated)] == [
        f"{FIXTURE_PATH}/trigger/merged.yml",
        f"{FIXTURE_PATH}/trigger/child-a.yml + {FIXTURE_PATH}/trigger/child-b.yml",
        f"{FIXTURE_PATH}/trigger/child-b.yml",  # triggered by child A's to-b
        f"{FIXTURE_PATH}/trigger/child-b.yml + artifact: generated.yml",
    ]
    trigger = parent.job("both-children").trigger
    assert trigger is not None and (trigger.include, trigger.strategy) == (both.path, "depend")
    assert parent.job("both-children").incomplete is None
    # Child A's jobs and child B's, as a file including both; its own default: and variables.
    assert [job.name for job in both.jobs] == ["a-job", "to-b", "b-job"]
    assert [(v.name, v.value) for v in both.variables] == [("CHILD", "a")]
    assert (both.warnings, both.unsupported) == ((), ())
    # A file a job generates cannot be read offline: the child is partial, the trigger
    # job's effect unknown.
    assert [job.name for job in generated.jobs] == ["b-job"]
    assert [(w.loc.line, w.what.split(" is not read")[0]) for w in generated.warnings] == [
        (25, "include: artifact 'generated.yml' of job generate")
    ]
    assert "a job of the pipeline creates it" in generated.warnings[0].what
    assert "artifact: generated.yml" in (parent.job("generated-and-local").incomplete or "")


def test_a_merged_child_that_triggers_its_own_list_is_read_once(tmp_path: Path) -> None:
    trigger = "again:\n  trigger:\n    include:\n      - local: a.yml\n      - local: b.yml\n"
    write(tmp_path, "a:\n  script: [x]\n" + trigger, "a.yml")
    write(tmp_path, "b:\n  script: [x]\n", "b.yml")
    _, child = load_pipelines(write(tmp_path, trigger), tmp_path)
    assert child.path == "a.yml + b.yml"
    assert [w.what.split(";")[0] for w in child.warnings] == [
        "trigger includes go round: .gitlab-ci.yml -> a.yml + b.yml -> a.yml + b.yml"
    ]
    # One local file with inputs is that file, its inputs given (read once too).
    write(tmp_path, "spec:\n  inputs:\n    e: {default: x}\n---\n" + trigger, "c.yml")
    text = "t:\n  trigger:\n    include:\n      - local: c.yml\n        inputs: {e: y}\n"
    assert [p.path for p in load_pipelines(write(tmp_path, text), tmp_path)] == [
        ".gitlab-ci.yml",
        "c.yml",
        "a.yml + b.yml",
    ]


def test_a_merged_child_that_names_a_missing_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a:\n  script: [x]\n", "a.yml")
    error = error_of(
        tmp_path, "t:\n  trigger:\n    include:\n      - local: a.yml\n      - local: b.yml\n"
    )
    assert [(p.loc.line, p.message) for p in error.problems] == [
        (5, "included file 'b.yml' does not exist")
    ]


def test_a_merged_child_with_an_executor_is_proved(
    run,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executor = (FIXTURES / "unsafe-auto-retry.yml").read_text(encoding="utf-8")
    write(tmp_path, executor, "ci/deploy.yml")
    write(tmp_path, "stages: [build, test, deploy]\n", "ci/stages.yml")
    parent = write(
        tmp_path,
        "t:\n  trigger:\n    include:\n      - local: ci/stages.yml\n"
        "      - local: ci/deploy.yml\n",
    )
    _, child = load_pipelines(parent, tmp_path)
    assert (child.path, child.job(KUBE).retry) == ("ci/stages.yml + ci/deploy.yml", 2)
    monkeypatch.chdir(tmp_path)
    result = run("verify", ".gitlab-ci.yml", "--format", "json")
    retries = [
        (f["path"], f["line"])
        for f in json.loads(result.out)["findings"]
        if f["policy"] == "pdm-no-auto-retry"
    ]
    line = next(n for n, text in enumerate(executor.splitlines(), 1) if "retry: 2" in text)
    assert (result.code, retries) == (1, [("ci/deploy.yml", line)])


def test_trigger_include_as_a_local_mapping(tmp_path: Path) -> None:
    write(tmp_path, "job:\n  script: [echo]\n", "ci/child.yml")
    pipelines = load_pipelines(
        write(tmp_path, "run-child:\n  trigger:\n    include:\n      local: ci/child.yml\n"),
        tmp_path,
    )
    assert [p.path for p in pipelines] == [".gitlab-ci.yml", "ci/child.yml"]
    trigger = pipelines[0].job("run-child").trigger
    assert trigger is not None and trigger.include == "ci/child.yml"


def test_trigger_jobs_take_no_default_retry_but_keep_their_own(tmp_path: Path) -> None:
    write(tmp_path, "job:\n  script: [echo]\n", "child.yml")
    pipeline = load_text(
        tmp_path,
        "default:\n  retry: 2\n  interruptible: true\n"
        "plain:\n  trigger:\n    include: child.yml\n"
        "own:\n  retry: 1\n  trigger:\n    include: child.yml\n",
    )
    plain, own = pipeline.jobs
    assert (plain.retry, plain.interruptible) == (0, True)
    assert own.retry == 1


def test_trigger_cycle_is_read_once_with_a_warning_at_the_trigger_that_closes_it() -> None:
    pipelines = load("trigger/cycle-a.yml")
    assert [p.path for p in pipelines] == [
        f"{FIXTURE_PATH}/trigger/cycle-a.yml",
        f"{FIXTURE_PATH}/trigger/cycle-b.yml",
    ]
    (warning,) = pipelines[1].warnings
    assert warning.loc == Loc(f"{FIXTURE_PATH}/trigger/cycle-b.yml", 3, 14)
    assert "go round" in warning.what
    assert pipelines[1].job("back-to-a").trigger is not None


# --- round trip: what pdmpolicy renders loads back to what it lowered ---------------------


def _bare(job: CiJob) -> CiJob:
    """The job with every location replaced, so jobs compare field by field."""
    return replace(
        job,
        loc=NOWHERE,
        needs=None if job.needs is None else tuple(replace(n, loc=NOWHERE) for n in job.needs),
        variables=tuple(replace(v, loc=NOWHERE) for v in job.variables),
        script=tuple(replace(line, loc=NOWHERE) for line in job.script),
        choices=tuple(replace(c, loc=NOWHERE) for c in job.choices),
    )


def _assert_round_trip(loaded: tuple[Pipeline, ...], expected: list[Pipeline]) -> None:
    parent_loaded, *children = loaded
    expected_parent, *expected_children = expected
    assert [p.path for p in children] == [p.path for p in expected_children]
    for got, want in zip(children, expected_children, strict=True):
        assert got.stages == want.stages
        assert [(v.name, v.value) for v in got.variables] == [
            (v.name, v.value) for v in want.variables
        ]
        assert [_bare(job) for job in got.jobs] == [_bare(job) for job in want.jobs]
        assert got.unsupported == ()
    assert parent_loaded.stages == expected_parent.stages
    assert parent_loaded.variables == () == expected_parent.variables
    for got_job, want_job in zip(parent_loaded.jobs, expected_parent.jobs, strict=True):
        # The parent's rules are choices: the rule's outcome, or "not added".
        assert [(c.when, c.allow_failure) for c in got_job.choices] == [
            (c.when, c.allow_failure) for c in want_job.choices
        ]
        assert parent_loaded.inherited_variables(got_job) == ()
        assert _bare(replace(got_job, choices=want_job.choices)) == _bare(want_job)


def _render_and_load(tmp_path: Path, files: dict[str, str]) -> None:
    (tmp_path / "environments").mkdir()
    for name, text in files.items():
        (tmp_path / "environments" / name).write_text(text, encoding="utf-8")
    environments = load_environments(tmp_path / "environments", tmp_path)
    lowered = [lower(environment) for environment in environments]
    parent_pipeline = parent(environments)
    for pipeline in [parent_pipeline, *lowered]:
        write(tmp_path, emit(pipeline), pipeline.path)
    loaded = load_pipelines(tmp_path / parent_pipeline.path, tmp_path)
    _assert_round_trip(loaded, [parent_pipeline, *sorted(lowered, key=lambda p: p.path)])


def test_shipped_ci_files_load_to_what_lowering_produced() -> None:
    environments = load_environments(REPO_ROOT / "environments", REPO_ROOT)
    lowered = sorted((lower(e) for e in environments), key=lambda p: p.path)
    loaded = load_pipelines(REPO_ROOT / "ci/postdeploy-migrations.yml", REPO_ROOT)
    _assert_round_trip(loaded, [parent(environments), *lowered])


ROUND_TRIP_EXAMPLES = {
    "after-vm": {"gstg.yml": GSTG},
    "kubernetes-first": {"gstg.yml": GSTG_FIRST},
    "cny-dry-run": {"gstg-cny.yml": GSTG_CNY},
    "cny-executor": {"gstg-cny.yml": GSTG_CNY_EXECUTOR},
    "unsafe-values": {
        "gstg.yml": changed(
            GSTG,
            "    timeout: 10h\n  gstg-kubernetes",
            "    timeout: 10h\n    retry: 2\n    interruptible: true\n    allow_failure: true\n"
            "    when: manual\n    resource_group: shared\n    stage: build\n"
            "    inherit_variables: [DEPLOY_ENVIRONMENT]\n  gstg-kubernetes",
        )
    },
    "generic-script": {
        "gstg.yml": changed(
            GSTG,
            "jobs:\n",
            "jobs:\n  announce:\n    runner: generic\n    when: always\n"
            "    script:\n      - echo PDMs starting\n      - 'true'\n",
        )
    },
}


@pytest.mark.parametrize("example", sorted(ROUND_TRIP_EXAMPLES))
def test_rendered_examples_load_to_what_lowering_produced(tmp_path: Path, example: str) -> None:
    _render_and_load(tmp_path, ROUND_TRIP_EXAMPLES[example])


# --- YAML as GitLab reads it ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("no", False),
        ("No", False),
        ("OFF", False),
        ("yes", True),
        ("on", True),
        ("TRUE", True),
        ("y", "y"),
        ("n", "n"),
        ("~", None),
        ("null", None),
        ("", None),
        ("42", 42),
        ("-17", -17),
        ("1_000", 1000),
        ("1,000", 1000),
        ("010", 8),
        ("0x1F", 31),
        ("0b101", 5),
        ("08", "08"),
        ("1:30", 5400),
        ("1:02:03", 3723),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", "1e3"),
        ("1.0e+3", 1000.0),
        ("2026-11-26", "2026-11-26"),
        (":symbol", ":symbol"),
        ("false-ish", "false-ish"),
        ("nope", "nope"),
        ("$VAR", "$VAR"),
    ],
)
def test_plain_scalars_read_as_yaml_1_1(text: str, value: object) -> None:
    resolved = resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (8, "8"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (1e16, "1.0e+16"),
        (1.5e-5, "1.5e-05"),
        (float("inf"), "Infinity"),
        (None, ""),
    ],
)
def test_values_become_text_as_ruby_to_s(value: Any, text: str) -> None:
    assert ruby_text(value) == text


def test_quoted_and_tagged_scalars_stay_strings(tmp_path: Path) -> None:
    pipeline = load_text(
        tmp_path,
        "variables:\n  A: 'no'\n  B: !!str yes\n  C: |\n    no\n  D: !!int 010\njob:\n"
        "  script: [echo]\n",
    )
    assert {v.name: v.value for v in pipeline.variables} == {
        "A": "no",
        "B": "yes",
        "C": "no\n",
        "D": "8",
    }


# --- refusing bad input: file:line:col, never a traceback ---------------------------------

ERRORS = {
    "invalid-yaml": ("job:\n  script: [echo\n", 3, "expected"),
    "boolean-key": ("yes:\n  script: [a]\n", 1, "read by GitLab (YAML 1.1) as the boolean"),
    "undefined-alias": ("job:\n  script: *nothing\n", 2, "no anchor"),
    "recursive-alias": ("a: &a\n  - *a\n", 2, "refers to the node that contains it"),
    "unknown-tag": ("job:\n  script: !secret [a]\n", 2, "unknown YAML tag"),
    "empty": ("# nothing\n", 1, "file is empty"),
    "top-level-list": ("- a\n", 1, "expected a mapping"),
    "two-documents": ("a: {script: [x]}\n---\nb: {script: [y]}\n", 3, "more than one"),
    "job-not-mapping": ("job: echo\n", 1, "must be a mapping"),
    "no-script": ("job:\n  stage: test\n", 1, "no script: or trigger:"),
    "script-and-trigger": (
        "job:\n  script: [a]\n  trigger: {include: x.yml}\n",
        1,
        "both script: and trigger:",
    ),
    "retry-three": ("job:\n  retry: 3\n  script: [a]\n", 2, "retry must be 0, 1 or 2"),
    "retry-text": ("job:\n  retry: {max: two}\n  script: [a]\n", 2, "retry must be 0, 1 or 2"),
    "retry-key": ("job:\n  retry: {tries: 1}\n  script: [a]\n", 2, "retry has no key"),
    "when-unknown": ("job:\n  when: sometimes\n  script: [a]\n", 2, "when must be one of"),
    "when-never": ("job:\n  when: never\n  script: [a]\n", 2, "when must be one of"),
    "rule-when": ("job:\n  rules: [{when: later}]\n  script: [a]\n", 2, "rules:when"),
    "rule-key": ("job:\n  rules: [{unless: $A}]\n  script: [a]\n", 2, "a rule has no key"),
    "delayed-no-start": ("job:\n  when: delayed\n  script: [a]\n", 2, "needs start_in"),
    "start-in-not-delayed": ("job:\n  start_in: 1h\n  script: [a]\n", 2, "only for when"),
    "undeclared-stage": ("stages: [build]\njob:\n  script: [a]\n", 2, "not in stages"),
    "unknown-need": ("job:\n  needs: [other]\n  script: [a]\n", 2, "not a job of this"),
    "script-number": ("job:\n  script: [1:30]\n", 2, "lines must be strings"),
    "variable-list": ("variables:\n  A: [1]\njob:\n  script: [a]\n", 2, "must be a string"),
    "allow-failure-text": (
        "job:\n  allow_failure: maybe\n  script: [a]\n",
        2,
        "must be true or false",
    ),
    "inherit-unknown": (
        "job:\n  inherit: {default: [image, colour]}\n  script: [a]\n",
        2,
        "not a default: keyword",
    ),
    "extends-unknown": ("job:\n  extends: .nothing\n  script: [a]\n", 2, "not defined"),
    "extends-cycle": (
        ".a:\n  extends: .b\n.b:\n  extends: .a\njob:\n  extends: .a\n  script: [x]\n",
        2,
        "cycle",
    ),
    "reference-unknown": (
        ".t: {script: [a]}\njob:\n  script: !reference [.t, before_script]\n",
        3,
        "has no key 'before_script'",
    ),
    "reference-cycle": (
        ".a:\n  x: !reference [.b, x]\n.b:\n  x: !reference [.a, x]\njob:\n  script: [a]\n",
        2,
        "refers to itself",
    ),
    "reference-scalar": ("job:\n  script: !reference .t\n", 2, "needs a list"),
    "trigger-missing-child": (
        "job:\n  trigger:\n    include: missing.yml\n",
        3,
        "does not exist",
    ),
    "trigger-outside": (
        "job:\n  trigger:\n    include: ../../etc/passwd\n",
        3,
        "outside the repository",
    ),
    "strategy-unknown": (
        "job:\n  trigger: {include: .gitlab-ci.yml, strategy: wait}\n",
        2,
        "depend or mirror",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_an_error_at_its_line(tmp_path: Path, case: str) -> None:
    text, line, message = ERRORS[case]
    error = error_of(tmp_path, text)
    problem = error.problems[0]
    assert problem.loc.path == ".gitlab-ci.yml"
    assert problem.loc.line == line, str(error)
    assert message in problem.message, str(error)


def test_every_bad_job_is_reported_not_only_the_first(tmp_path: Path) -> None:
    error = error_of(tmp_path, "a:\n  retry: 5\n  script: [x]\nb:\n  when: soon\n  script: [x]\n")
    assert [p.loc.line for p in error.problems] == [2, 5]


def test_trigger_include_of_itself_is_read_once(tmp_path: Path) -> None:
    pipeline = load_text(tmp_path, "job:\n  trigger:\n    include: /.gitlab-ci.yml\n")
    assert "go round" in pipeline.warnings[0].what


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("job:\n  script: *a8")
    error = error_of(tmp_path, "\n".join(lines) + "\n")
    assert f"more than {ALIAS_NODE_BUDGET} nodes" in error.problems[0].message
    assert error.problems[0].loc.line == 5  # the first alias that crosses the budget


def test_reference_bomb_is_refused(tmp_path: Path) -> None:
    lines = [".r0: {s: [x, x, x, x, x, x, x, x, x, x]}"]
    refs = ", ".join(["!reference [.r{0}, s]"] * 10)
    lines += [f".r{i}: {{s: [{refs.format(i - 1)}]}}" for i in range(1, 9)]
    lines.append("job:\n  script: [echo]")
    error = error_of(tmp_path, "\n".join(lines) + "\n")
    assert "!reference tags expand" in error.problems[0].message


def test_extends_bomb_is_refused(tmp_path: Path) -> None:
    template = ".t:\n  script:\n" + "".join(f"    - echo {i}\n" for i in range(2000))
    jobs = "".join(f"j{i}: {{extends: .t}}\n" for i in range(600))
    error = error_of(tmp_path, template + jobs)
    assert "expand to more than" in error.problems[0].message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "job: " + "[" * 150 + "]" * 150 + "\n")
    assert "nested more than 100 levels" in error.problems[0].message


def test_large_file_is_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "job:\n  script:\n" + "    - echo padding\n" * 70_000)
    assert "more than the 1048576 allowed" in error.problems[0].message


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"job:\n  script: [\xff]\n", (2, 12)),
        (b"\xef\xbb\xbfjob: {script: [a]}\n", (1, 1)),
        (b"job:\n  script: [a\x00]\n", (2, 13)),
    ],
)
def test_unreadable_bytes_are_refused(tmp_path: Path, raw: bytes, where: tuple[int, int]) -> None:
    problem = error_of(tmp_path, raw).problems[0]
    assert (problem.loc.line, problem.loc.column) == where


def test_a_large_ordinary_pipeline_loads(tmp_path: Path) -> None:
    text = ".t: &t\n  retry: 0\n  script: [echo]\ndefault:\n  retry: 1\n"
    text += "".join(
        f"job{i}:\n  extends: .t\n  needs: [job{i - 1}]\n" if i else "job0:\n  <<: *t\n"
        for i in range(1000)
    )
    pipeline = load_text(tmp_path, text)
    assert len(pipeline.jobs) == 1000
    assert {job.retry for job in pipeline.jobs} == {0}


_MUTABLE = sorted(FIXTURES.rglob("*.yml"))


@given(
    index=st.integers(min_value=0, max_value=len(_MUTABLE) - 1),
    position=st.integers(min_value=0, max_value=5000),
    replacement=st.sampled_from(["", ":", "- ", "*", "&a", "\n", "  ", "!reference [", "<<: "]),
)
def test_mangled_fixtures_load_or_fail_as_input_errors(
    tmp_path_factory: pytest.TempPathFactory, index: int, position: int, replacement: str
) -> None:
    text = _MUTABLE[index].read_text(encoding="utf-8")
    position %= len(text)
    mangled = text[:position] + replacement + text[position + 1 :]
    root = tmp_path_factory.mktemp("mangled")
    (root / "tests/fixtures/gitlab/trigger").mkdir(parents=True)
    for child in ("child-a.yml", "child-b.yml", "cycle-a.yml", "cycle-b.yml"):
        source = FIXTURES / "trigger" / child
        (root / "tests/fixtures/gitlab/trigger" / child).write_text(
            source.read_text(encoding="utf-8"), encoding="utf-8"
        )
    path = root / "pipeline.yml"
    path.write_text(mangled, encoding="utf-8")
    try:
        load_pipelines(path, root)
    except InputError as exc:
        assert exc.problems and all(p.loc.line >= 1 for p in exc.problems)


# --- the fixtures are real GitLab CI -------------------------------------------------------

_SCHEMA = json.loads((REPO_ROOT / "tests/data/gitlab-ci-schema.json").read_text(encoding="utf-8"))
_NOT_SCHEMA_VALID = {
    "constructs/unsupported.yml",  # holds a misspelt keyword on purpose
    "constructs/extends.yml",  # `key: null` drops a key (documented; the schema has no null)
    "constructs/references.yml",  # the schema allows !reference in few places; GitLab in any
    "constructs/legacy.yml",  # types:/type: are gone from the schema; GitLab still reads them
    "constructs/needs-mapping.yml",  # the schema wants a list; GitLab's parser takes a mapping
    "includes/ci/inputs/deploy.yml",  # `retry: $[[ inputs.retries ]]` is a number only later
}


class _GitLabConstructor(SafeConstructor):
    """Reads !reference as the list of strings it is written as (as check-jsonschema does)."""


_GitLabConstructor.add_constructor(
    "!reference",
    lambda loader, node: loader.construct_sequence(node),
)


@pytest.mark.parametrize(
    "name",
    [p.relative_to(FIXTURES).as_posix() for p in sorted(FIXTURES.rglob("*.yml"))],
)
def test_fixtures_pass_gitlab_ci_schema(name: str) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _GitLabConstructor
    yaml.allow_duplicate_keys = True  # GitLab keeps the last (constructs/duplicate-key.yml)
    # A file with a spec: header is validated on its configuration (the last document).
    *_, document = yaml.load_all((FIXTURES / name).read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft7Validator(_SCHEMA).iter_errors(document))
    if name in _NOT_SCHEMA_VALID:
        assert errors
    else:
        assert errors == [], [e.message for e in errors]


# --- GitLab CI as people write it: includes, parallel, only/except, inputs ------------------

INCLUDES = "tests/fixtures/gitlab/includes"


def test_local_includes_in_every_form_merge_in_gitlab_order() -> None:
    pipeline = one("includes/main.yml")
    names = [job.name for job in pipeline.jobs]
    # Wildcards: `*` within one directory, `**` below it; the exists: rule decides.
    assert set(names) == {"nested-job", "build", "lint", "docs", "deploy-gstg", "present"}
    build = pipeline.job("build")
    # The including file deep-merges over its includes (variables merge key by key) ...
    assert [(v.name, v.value) for v in build.variables] == [
        ("FROM_BASE", "yes"),
        ("FROM_MAIN", "yes"),
    ]
    # ... and a later include over an earlier one (.template's retry: 2 beats retry: 1).
    assert build.retry == 2
    assert build.locs["retry"].path == f"{INCLUDES}/ci/override.yml"
    assert [(v.name, v.value) for v in pipeline.variables] == [("LEVEL", "override")]
    assert pipeline.job("nested-job").loc.path == f"{INCLUDES}/ci/nested.yml"
    assert pipeline.warnings == () and pipeline.unsupported == ()


def test_include_inputs_are_interpolated_with_their_types() -> None:
    deploy = one("includes/main.yml").job("deploy-gstg")
    assert deploy.stage == "deploy"  # the default of an input not given
    assert deploy.retry == 0  # a number given in include: inputs:, kept a number
    assert [line.text for line in deploy.script] == ['echo "deploying to gstg"']


def test_missing_local_include_is_an_error(tmp_path: Path) -> None:
    error = error_of(tmp_path, "include:\n  - local: ci/missing.yml\njob:\n  script: [x]\n")
    assert (error.problems[0].loc.line, "does not exist") == (2, "does not exist")
    assert "does not exist" in error.problems[0].message


def test_include_outside_the_repository_is_an_error(tmp_path: Path) -> None:
    error = error_of(tmp_path, "include: ../../etc/passwd.yml\njob:\n  script: [x]\n")
    assert "outside the repository" in error.problems[0].message


def test_included_file_given_an_undeclared_input_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "spec:\n  inputs:\n    a: {default: x}\n---\nj:\n  script: [echo]\n", "t.yml")
    error = error_of(tmp_path, "include:\n  - local: t.yml\n    inputs: {b: 1}\n")
    assert "not declared" in error.problems[0].message


def test_includes_not_read_make_a_partial_pipeline_not_an_invalid_one() -> None:
    pipeline = one("includes/partial.yml")
    assert [w.loc.line for w in pipeline.warnings] == [3, 4, 6, 7]
    # What is not read may change any job (default:, a job of the same name): unmodelled,
    # for the whole pipeline, so it matters once there is an executor.
    assert [(u.loc.line, u.job) for u in pipeline.unsupported] == [(3, None)]
    assert all("is not read" in w.what for w in pipeline.warnings)
    incomplete = {job.name: job.incomplete for job in pipeline.jobs}
    assert "no script: of its own" in (incomplete["sast"] or "")
    assert "extends '.container-build'" in (incomplete["image-build"] or "")
    assert "!reference [.setup-from-template, before_script]" in (incomplete["unit"] or "")
    assert "stage 'release'" in (incomplete["publish"] or "")
    assert incomplete["complete"] is None
    unit = pipeline.job("unit")
    assert [(n.job, n.optional) for n in unit.needs or ()] == [
        ("image-build", False),
        ("lint-from-template", True),  # may be a job of an include not read: no order assumed
    ]
    assert pipeline.stages[-2:] == ("release", ".post")


def test_the_same_references_without_includes_not_read_stay_errors(tmp_path: Path) -> None:
    for text in (
        "job:\n  extends: .nowhere\n  script: [x]\n",
        "job:\n  script: !reference [.nowhere, script]\n",
        "sast:\n  variables: {A: b}\n",
        "job:\n  needs: [nowhere]\n  script: [x]\n",
    ):
        assert error_of(tmp_path, text).problems


def test_references_see_what_extends_brought(tmp_path: Path) -> None:
    pipeline = load_text(
        tmp_path,
        ".base:\n  before_script: [setup]\n.image:\n  extends: .base\n"
        "job:\n  before_script: [!reference [.image, before_script], more]\n  script: [x]\n",
    )
    assert [line.text for line in pipeline.job("job").script] == ["setup", "more", "x"]


def test_parallel_instances_are_named_as_gitlab_names_them() -> None:
    pipeline = one("constructs/parallel.yml")
    assert [job.name for job in pipeline.jobs[:7]] == [
        "shard 1/3",
        "shard 2/3",
        "shard 3/3",
        "build: [amd64, linux]",
        "build: [arm64, linux]",
        "build: [riscv, linux]",
        "build: [riscv, none]",
    ]
    arm = pipeline.job("build: [arm64, linux]")
    assert [(v.name, v.value) for v in arm.variables] == [("ARCH", "arm64"), ("OS", "linux")]

    def needs(name: str) -> list[str]:
        return [n.job for n in pipeline.job(name).needs or ()]

    assert needs("test-all") == ["shard 1/3", "shard 2/3", "shard 3/3"]
    assert needs("test-amd64") == ["build: [amd64, linux]"]
    assert needs("test-linux") == ["build: [arm64, linux]", "build: [riscv, linux]"]


def test_parallel_over_gitlabs_limit_is_an_error(tmp_path: Path) -> None:
    assert (
        "between 1 and 200"
        in error_of(tmp_path, "j:\n  parallel: 201\n  script: [x]\n").problems[0].message
    )


def test_only_and_except_are_inclusion_choices() -> None:
    pipeline = one("constructs/only-except.yml")
    for name in ("refs", "variables-and-changes", "except-schedules"):
        assert [c.when for c in pipeline.job(name).choices] == ["on_success", "never"]
    assert pipeline.job("always-added").choices == ()
    assert pipeline.unsupported == ()


def test_legacy_types_and_type_are_stages() -> None:
    pipeline = one("constructs/legacy.yml")
    assert pipeline.stages == (".pre", "compile", "check", ".post")
    assert [(j.name, j.stage) for j in pipeline.jobs] == [
        ("compile", "compile"),
        ("check", "check"),
    ]


def test_needs_written_as_a_mapping_is_one_need() -> None:
    assert [n.job for n in one("constructs/needs-mapping.yml").job("test").needs or ()] == ["build"]


def test_a_duplicated_key_is_read_as_gitlab_reads_it_with_a_warning() -> None:
    pipeline = one("constructs/duplicate-key.yml")
    assert pipeline.job("build").retry == 1  # the last one
    assert [(w.loc.line, w.what.split(" (")[0]) for w in pipeline.warnings] == [
        (6, "duplicate key 'artifacts'"),
        (9, "duplicate key 'retry'"),
    ]


def test_unmodelled_constructs_are_attributed_to_their_job() -> None:
    pipeline = one("constructs/precision.yml")
    assert {(u.loc.line, u.job) for u in pipeline.unsupported} == {
        (7, None),
        (15, "prepare"),
        (24, "unrelated"),
    }


# --- verify: what is reported, and how ------------------------------------------------------


def test_unmodelled_constructs_are_reported_only_near_executors(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    result = run("verify", f"{FIXTURE_PATH}/constructs/precision.yml", "--format", "json")
    findings = json.loads(result.out)["findings"]
    lines = sorted(f["line"] for f in findings if "not modelled" in f["message"])
    # workflow:rules:variables (whole pipeline) and rules:variables of the job the executor
    # waits for; not environment:on_stop of a job nothing waits for.
    assert lines == [7, 15]
    assert result.code == 1


def test_pipeline_without_executors_gets_no_finding_for_what_is_not_modelled(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    for name in ("constructs/no-executor.yml", "constructs/parallel.yml", "includes/partial.yml"):
        result = run("verify", f"{FIXTURE_PATH}/{name}", "--format", "json")
        findings = json.loads(result.out)["findings"]
        assert result.code == 0, findings
        assert not [f for f in findings if f["policy"] == "pdm-at-most-once"]


def test_includes_not_read_are_warnings_naming_each_include(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    result = run("verify", f"{INCLUDES}/partial.yml", "--format", "json")
    warnings = [f for f in json.loads(result.out)["findings"] if f["policy"] == "gitlab-ci-input"]
    assert [(w["severity"], w["line"]) for w in warnings] == [("warning", n) for n in (3, 4, 6, 7)]
    assert "Jobs/SAST.gitlab-ci.yml" in warnings[0]["message"]


def test_input_errors_are_json_with_format_json_for_verify_and_check(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    (repo.root / ".gitlab-ci.yml").write_text("job:\n  script: [x]\n  stage: nowhere\n")
    result = run("verify", ".gitlab-ci.yml", "--format", "json", "--report", "json=out.json")
    assert result.code == 2
    document = json.loads(result.out)
    assert document["errors"] == [
        {
            "path": ".gitlab-ci.yml",
            "line": 3,
            "column": 10,
            "message": "job 'job' is in stage 'nowhere', which is not in stages:",
            "hint": "stages here: .pre, build, test, deploy, .post",
        }
    ]
    assert document["summary"] == {"errors": 1, "warnings": 0, "waived": 0}
    assert json.loads((repo.root / "out.json").read_text()) == document
    assert "error:" in result.err  # the text stays on standard error
    (repo.root / "environments" / "gstg.yml").write_text("name: [\n")
    result = run("check", "--format", "json")
    assert result.code == 2
    assert json.loads(result.out)["errors"][0]["path"] == "environments/gstg.yml"
    # Text output: nothing on standard output, as before.
    assert run("check").out == ""


def test_vendored_copies_are_read_in_place_of_includes_not_in_the_repository() -> None:
    vendored = FIXTURES / "includes/vendored"
    (pipeline,) = load_pipelines(FIXTURES / "includes/partial.yml", REPO_ROOT, vendored)
    # The template and the project file are read; remote and component have no copy.
    assert [w.loc.line for w in pipeline.warnings] == [6, 7]
    sast = pipeline.job("sast")
    assert (sast.incomplete, [line.text for line in sast.script]) == (None, ['echo "scan"'])
    build = pipeline.job("image-build")
    # The project's own local include is read from the project's copy.
    assert (build.incomplete, build.retry) == (None, 1)
    assert (
        build.locs["retry"].path
        == f"{INCLUDES}/vendored/projects/infrastructure/ci-templates/templates/common.yml"
    )


CONDITIONAL = "includes/conditional"


def test_include_rules_if_on_variables_make_the_included_jobs_possibly_absent(
    tmp_path: Path,
) -> None:
    write(tmp_path, "extra:\n  script: [echo]\n", "ci/extra.yml")
    pipeline = load_text(
        tmp_path,
        "include:\n  - local: ci/extra.yml\n    rules:\n      - if: $CI_COMMIT_TAG\n"
        "  - local: ci/none-*.yml\njob:\n  script: [x]\n",
    )
    assert [job.name for job in pipeline.jobs] == ["extra", "job"]
    assert pipeline.unsupported == ()
    extra = pipeline.job("extra")
    assert [(c.when, c.loc.line) for c in extra.choices] == [("on_success", 1), ("never", 2)]
    assert extra.rule_cases == (RuleCase("$CI_COMMIT_TAG", other=False, choice=0),)
    assert pipeline.job("job").choices == ()
    assert sorted((n.loc.line, n.what.split(" '")[0]) for n in pipeline.notes) == [
        (2, "include: local"),
        (5, "include: local"),
    ]


def test_include_rules_are_decided_where_they_can_be() -> None:
    pipeline = one(f"{CONDITIONAL}/main.yml")
    # `"enabled" == "disabled"` compares constants: never included.
    assert [job.name for job in pipeline.jobs] == [
        "gstg-kubernetes-post-deploy-migrations",
        "gprd-kubernetes-post-deploy-migrations",
        "lint",
        "build",
    ]
    assert pipeline.job("build").choices == ()
    gstg = pipeline.job("gstg-kubernetes-post-deploy-migrations")
    assert [c.when for c in gstg.choices] == ["on_success", "never"]
    assert gstg.rule_cases == (RuleCase('$DEPLOY_ENVIRONMENT == "gstg"', False, 0),)
    # The include's rules first (a schedule leaves it out, anything else lets it in), then
    # the job's own: the job is there on main, except in scheduled pipelines.
    lint = pipeline.job("lint")
    assert [c.when for c in lint.choices] == ["on_success", "never"]
    assert lint.rule_cases == (
        RuleCase('$CI_PIPELINE_SOURCE == "schedule"', False, 1),
        RuleCase('$CI_COMMIT_BRANCH == "main"', False, 0),
        RuleCase(None, False, 1),
    )


def test_nested_conditional_includes_take_both_conditions(tmp_path: Path) -> None:
    write(tmp_path, "inner:\n  rules:\n    - if: $B\n      when: manual\n  script: [x]\n", "b.yml")
    write(tmp_path, "include:\n  - local: b.yml\n    rules: [{if: $A}]\n", "a.yml")
    pipeline = load_text(
        tmp_path, "include:\n  - local: a.yml\n    rules: [{if: $O}]\njob:\n  script: [x]\n"
    )
    inner = pipeline.job("inner")
    assert [c.when for c in inner.choices] == ["manual", "never"]
    assert inner.rule_cases == (
        RuleCase("($O) && (($A) && ($B))", False, 0),
        RuleCase("($O) && ($A)", False, 1),
        RuleCase("$O", False, 1),
    )


def test_a_file_included_twice_under_other_rules_is_there_when_either_matches(
    tmp_path: Path,
) -> None:
    write(tmp_path, "extra:\n  script: [echo]\n", "ci/extra.yml")
    text = (
        "include:\n  - local: ci/extra.yml\n    rules: [{if: $A}]\n"
        "  - local: ci/extra.yml\n    rules: [{if: $B}]\n"
    )
    extra = load_text(tmp_path, text).job("extra")
    assert [c.when for c in extra.choices] == ["on_success", "never"]
    assert extra.rule_cases == ()  # either condition: independent of other jobs
    always = text + "  - local: ci/extra.yml\n"
    assert load_text(tmp_path, always).job("extra").choices == ()


def test_what_a_conditional_include_sets_for_every_job_is_not_modelled(tmp_path: Path) -> None:
    write(
        tmp_path,
        "variables:\n  SKIP_POST_DEPLOYMENT_MIGRATIONS: 'true'\n"
        "deploy:\n  retry: 2\n  script: [x]\n",
        "ci/extra.yml",
    )
    pipeline = load_text(
        tmp_path,
        "include:\n  - local: ci/extra.yml\n    rules: [{if: $CI_COMMIT_TAG}]\n"
        "deploy:\n  script: [k-ctl -e gstg upgrade]\n",
    )
    assert [
        (u.loc.line, u.what.split(" '")[0].split(" (")[0], u.job) for u in pipeline.unsupported
    ] == [
        (2, "variables: of ci/extra.yml, set only in the pipelines that have include: local", None),
        (2, "job deploy, also defined in ci/extra.yml", "deploy"),
    ]
    assert pipeline.job("deploy").choices == ()


def test_include_rules_that_never_match_leave_the_file_out(tmp_path: Path) -> None:
    write(tmp_path, "extra:\n  script: [echo]\n", "ci/extra.yml")
    for rules in (
        "[{if: $A, exists: [no-such-file]}]",
        '[{if: \'"a" == "b"\'}]',
        "[{if: $A, when: never}]",
        "[{when: never}]",
    ):
        text = f"include:\n  - local: ci/extra.yml\n    rules: {rules}\njob:\n  script: [x]\n"
        assert [job.name for job in load_text(tmp_path, text).jobs] == ["job"], rules
    text = "include:\n  - local: ci/extra.yml\n    rules: [{exists: [ci/extra.yml]}]\n"
    assert load_text(tmp_path, text).job("extra").choices == ()
    # Another project's files, or a path from variables: not known offline.
    for exists in ("{paths: [x.yml], project: group/other}", "[$CONFIG_FILE, no-such-file]"):
        text = f"include:\n  - local: ci/extra.yml\n    rules: [{{exists: {exists}}}]\n"
        extra = load_text(tmp_path, text).job("extra")
        assert extra.rule_cases == (RuleCase(None, True, 0),), exists


def test_an_include_rule_with_a_job_keyword_is_an_error(tmp_path: Path) -> None:
    error = error_of(tmp_path, "include:\n  - local: x.yml\n    rules: [{if: $A, when: manual}]\n")
    assert "when: is never or always" in error.problems[0].message
    error = error_of(tmp_path, "include:\n  - local: x.yml\n    rules: [{if: $A, needs: [a]}]\n")
    assert "an include rule has no key 'needs'" in error.problems[0].message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("main.yml", []),  # gstg and gprd executors are never in one pipeline
        (
            "unordered.yml",  # both conditions can hold: the executors meet, one retries
            [
                ("pdm-at-most-once", "ci/gstg.yml", 2),
                ("pdm-at-most-once", "ci/vm.yml", 2),
                ("pdm-at-most-once", "ci/vm.yml", 3),
                ("pdm-no-auto-retry", "ci/vm.yml", 3),
            ],
        ),
    ],
)
def test_executors_in_conditional_includes_keep_their_findings(
    run,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    expected: list[tuple[str, str, int]],
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    result = run("verify", f"{FIXTURE_PATH}/{CONDITIONAL}/{name}", "--format", "json")
    findings = json.loads(result.out)["findings"]
    found = [
        (f["policy"], f["path"].removeprefix(f"{FIXTURE_PATH}/{CONDITIONAL}/"), f["line"])
        for f in findings
        if f["severity"] == "error"
    ]
    assert (result.code, found) == (1 if expected else 0, expected)


def test_a_file_that_includes_itself_is_read_once(tmp_path: Path) -> None:
    pipeline = load_text(tmp_path, "include: .gitlab-ci.yml\njob:\n  script: [x]\n")
    assert [job.name for job in pipeline.jobs] == ["job"]


def test_more_includes_than_gitlab_allows_is_an_error(tmp_path: Path) -> None:
    for number in range(151):
        write(tmp_path, f"j{number}:\n  script: [x]\n", f"ci/{number:03}.yml")
    error = error_of(tmp_path, "include: ci/*.yml\n")
    assert "more than 150 includes" in error.problems[0].message


def test_trigger_inputs_are_accepted(tmp_path: Path) -> None:
    write(tmp_path, "spec:\n  inputs:\n    env: {default: gstg}\n---\nc:\n  script: [x]\n", "c.yml")
    pipelines = load_pipelines(
        write(tmp_path, "t:\n  trigger:\n    include: c.yml\n    inputs: {env: gprd}\n"), tmp_path
    )
    assert [p.path for p in pipelines] == [".gitlab-ci.yml", "c.yml"]


def test_a_wildcard_never_reads_a_link_leaving_the_repository(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yml"
    outside.write_text("secret:\n  script: [x]\n", encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    (repo / "ci" / "link.yml").symlink_to(outside)
    with pytest.raises(InputError, match="outside the repository"):
        load_pipelines(write(repo, "include: ci/*.yml\njob:\n  script: [x]\n"), repo)


def test_an_unreadable_script_matters_only_where_it_could_run_pdms(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    windows = 'windows:\n  script:\n    - echo "a `"quoted`" word\n'
    (repo.root / "a.yml").write_text(windows, encoding="utf-8")
    result = run("verify", "a.yml", "--format", "json")
    assert (result.code, json.loads(result.out)["findings"]) == (0, [])
    kctl = (
        "deploy:\n  script:\n"
        '    - SKIP_POST_DEPLOYMENT_MIGRATIONS=false k-ctl -e gstg upgrade "`x\n'
    )
    (repo.root / "b.yml").write_text(kctl, encoding="utf-8")
    result = run("verify", "b.yml", "--format", "json")
    messages = [f["message"] for f in json.loads(result.out)["findings"]]
    assert result.code == 1
    assert any(m.startswith("cannot tell what deploy runs") for m in messages), messages


def test_a_partial_pipeline_with_an_executor_cannot_be_proved_complete(repo: Repo, run) -> None:  # type: ignore[no-untyped-def]
    executor = (FIXTURES / "safe-kubernetes-only.yml").read_text(encoding="utf-8")
    text = "include:\n  - template: Jobs/SAST.gitlab-ci.yml\n" + executor
    (repo.root / "p.yml").write_text(text, encoding="utf-8")
    result = run("verify", "p.yml", "--format", "json")
    findings = json.loads(result.out)["findings"]
    unmodelled = [f for f in findings if f["policy"] == "pdm-at-most-once"]
    assert result.code == 1
    assert [(f["line"], "may set default:" in f["message"]) for f in unmodelled] == [(2, True)]
