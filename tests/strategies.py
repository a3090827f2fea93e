"""Hypothesis strategies shared by the test suite, one titled section per subject."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from pdmpolicy.core.location import Loc
from pdmpolicy.core.names import named_stage
from pdmpolicy.gitlab.pipeline import Choice, CiJob, Need, Pipeline, ScriptLine
from tests import builders

# ---------------------------------------------------------------------------------------
# Pipelines for the prover: small GitLab CI pipelines built directly as Pipeline objects
# (stages, needs, when, allow_failure, retry, manual jobs, resource groups, rules choices),
# some jobs executing PDMs. Small enough for the brute-force explorer.
# ---------------------------------------------------------------------------------------

STAGES = (".pre", "build", "test", "deploy", ".post")
PATH = "ci/generated.yml"
EXECUTOR_SCRIPT = (
    "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG SKIP_POST_DEPLOYMENT_MIGRATIONS=false "
    "k-ctl -e gstg upgrade"
)
OTHER_SCRIPT = "echo checking"
LOC_KEYS = ("stage", "needs", "when", "allow_failure", "retry", "resource_group", "script")


def job_loc(index: int, key: str | None = None) -> Loc:
    """Where job `index` (and each of its keys) is "written": distinct lines, so a test can
    tell which setting a finding points at."""
    line = 1 + index * 10
    if key is None:
        return Loc(PATH, line, 1)
    return Loc(PATH, line + 1 + LOC_KEYS.index(key), 5)


def ci_job(
    name: str,
    *,
    index: int = 0,
    executor: bool = False,
    stage: str = "deploy",
    needs: Sequence[str | tuple[str, bool]] | None = None,
    when: str = "on_success",
    allow_failure: bool = False,
    retry: int = 0,
    retry_when: tuple[str, ...] = (),
    resource_group: str | None = None,
    choices: tuple[Choice, ...] = (),
    locs: dict[str, Loc] | None = None,
) -> CiJob:
    """A job with the given effective settings; `locs` default to `job_loc(index, key)`."""
    script = EXECUTOR_SCRIPT if executor else OTHER_SCRIPT
    if locs is None:
        locs = {key: job_loc(index, key) for key in LOC_KEYS}
    return builders.ci_job(
        name,
        stage=stage,
        needs=(
            None
            if needs is None
            else [
                Need(n, False, job_loc(index, "needs"))
                if isinstance(n, str)
                else Need(n[0], n[1], job_loc(index, "needs"))
                for n in needs
            ]
        ),
        when=when,
        allow_failure=allow_failure,
        retry=retry,
        resource_group=resource_group,
        inherit_default=True,
        script=(ScriptLine(script, locs.get("script", job_loc(index))),),
        loc=job_loc(index),
        locs=MappingProxyType(locs),
        retry_when=retry_when,
        choices=choices,
    )


def pipeline_of(*jobs: CiJob, path: str = PATH) -> Pipeline:
    return Pipeline(path=path, source=path, stages=STAGES, variables=(), jobs=tuple(jobs))


@dataclass(frozen=True)
class Generated:
    """A generated pipeline and the names of the jobs that execute PDMs in it."""

    pipeline: Pipeline
    executors: frozenset[str]

    def describe(self) -> str:
        """The pipeline in a few lines, for a failing example's report."""
        lines = [f"executors: {sorted(self.executors)}"]
        for job in self.pipeline.jobs:
            needs = None if job.needs is None else [(n.job, n.optional) for n in job.needs]
            lines.append(
                f"  {job.name}: stage={job.stage} needs={needs} when={job.when} "
                f"allow_failure={job.allow_failure} retry={job.retry}"
                f"{' retry_when=' + str(job.retry_when) if job.retry_when else ''} "
                f"resource_group={job.resource_group} "
                f"choices={[(c.when, c.allow_failure) for c in job.choices]}"
            )
        return "\n".join(lines)


_WHENS = ("on_success", "on_success", "on_success", "manual", "always", "on_failure", "delayed")


@st.composite
def _choices(draw: st.DrawFn, index: int) -> tuple[Choice, ...]:
    outcomes = draw(
        st.lists(
            st.tuples(st.sampled_from((*_WHENS, "never")), st.booleans()),
            min_size=2,
            max_size=3,
            unique=True,
        )
    )
    return tuple(Choice(when, af, job_loc(index, "when")) for when, af in outcomes)


@st.composite
def small_pipelines(
    draw: st.DrawFn, min_jobs: int = 2, max_jobs: int = 6, max_with_rules: int = 2
) -> Generated:
    """Pipelines of `min_jobs`..`max_jobs` jobs; at least two executors or a retried one,
    so that there is something to prove."""
    count = draw(st.integers(min_jobs, max_jobs))
    stage_names = ("build", "test", "deploy")
    jobs: list[CiJob] = []
    executors: set[str] = set()
    stages: list[str] = []
    with_rules = 0
    for index in range(count):
        executor = draw(st.booleans())
        name = f"{'pdm' if executor else 'job'}-{index}"
        stage = draw(st.sampled_from(stage_names))
        earlier = [
            jobs[i].name
            for i in range(index)
            if stage_names.index(stages[i]) <= stage_names.index(stage)
        ]
        needs: list[tuple[str, bool]] | None = None
        if draw(st.booleans()):
            picked = draw(
                st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([])
            )
            needs = [(n, draw(st.integers(0, 5)) == 0) for n in picked]
        when = draw(st.sampled_from(_WHENS))
        allow_failure = draw(st.booleans()) if when == "manual" else draw(st.integers(0, 4)) == 0
        retry = draw(st.sampled_from((0, 0, 0, 1, 2)))
        retry_when: tuple[str, ...] = ()
        if retry and draw(st.integers(0, 3)) == 0:
            retry_when = ("script_failure",)
        group = draw(st.sampled_from((None, None, "db", "other")))
        choices: tuple[Choice, ...] = ()
        if with_rules < max_with_rules and draw(st.integers(0, 4)) == 0:
            choices = draw(_choices(index))
            with_rules += 1
        jobs.append(
            ci_job(
                name,
                index=index,
                executor=executor,
                stage=stage,
                needs=needs,
                when=when,
                allow_failure=allow_failure,
                retry=retry,
                retry_when=retry_when,
                resource_group=group,
                choices=choices,
            )
        )
        stages.append(stage)
        if executor:
            executors.add(name)
    return Generated(pipeline_of(*jobs), frozenset(executors))


@st.composite
def ordered_pipelines(draw: st.DrawFn, max_jobs: int = 6) -> Generated:
    """Pipelines whose executors are ordered on success (a `needs` on the previous executor
    or a later stage), with manual gates, `on_failure`/`always` helpers and retried helper
    jobs around them: mostly safe, so that what breaks them is the subtle mechanisms."""
    count = draw(st.integers(3, max_jobs))
    stage_names = ("build", "test", "deploy")
    jobs: list[CiJob] = []
    stages: list[int] = []
    executors: set[str] = set()
    previous: int | None = None
    with_rules = 0
    for index in range(count):
        executor = draw(st.booleans()) or (index == count - 1 and len(executors) < 2)
        name = f"{'pdm' if executor else 'job'}-{index}"
        low = stages[previous] if executor and previous is not None else 0
        rank = draw(st.integers(low, 2))
        earlier = [i for i in range(index) if stages[i] <= rank]
        needs: list[tuple[str, bool]] | None = None
        if executor and previous is not None:
            if rank == stages[previous] or draw(st.booleans()):
                others = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2))
                needs = [(jobs[i].name, False) for i in sorted({previous, *others})]
        elif draw(st.booleans()):
            picked = (
                draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
            )
            needs = [(jobs[i].name, draw(st.integers(0, 5)) == 0) for i in picked]
        if executor:
            when = draw(st.sampled_from(("on_success",) * 6 + ("manual", "delayed")))
            allow_failure = when == "manual" and draw(st.integers(0, 2)) == 0
            retry = 0
        else:
            when = draw(st.sampled_from(_WHENS))
            allow_failure = (
                draw(st.booleans()) if when == "manual" else draw(st.integers(0, 4)) == 0
            )
            retry = draw(st.sampled_from((0, 0, 1, 2)))
        choices: tuple[Choice, ...] = ()
        if not executor and with_rules < 2 and draw(st.integers(0, 4)) == 0:
            choices = draw(_choices(index))
            with_rules += 1
        jobs.append(
            ci_job(
                name,
                index=index,
                executor=executor,
                stage=stage_names[rank],
                needs=needs,
                when=when,
                allow_failure=allow_failure,
                retry=retry,
                resource_group=draw(st.sampled_from((None, "db"))),
                choices=choices,
            )
        )
        stages.append(rank)
        if executor:
            executors.add(name)
            previous = index
    return Generated(pipeline_of(*jobs), frozenset(executors))


# ---------------------------------------------------------------------------------------
# Environment sets for the property tests (tests/test_properties.py): whole repositories of
# environments/*.yml as documents (plain dicts, so mutations can edit them) and as the YAML
# text a person would write. `environment_sets()` draws any schema-valid set (unsafe values
# included); `safe_environment_sets()` draws sets that `pdmpolicy check` accepts, shaped per
# rollout step, with several environments, shared databases and upstream chains.
# ---------------------------------------------------------------------------------------

TODAY = "2026-11-26"
ENV_NAMES = ("gstg", "gprd", "pre", "ops", "gstg-cny", "gprd-cny", "db-benchmarking")
ROLLOUT = ("vm", "dry-run", "kubernetes-after-vm", "kubernetes-first", "kubernetes-only")
_PLAIN = re.compile(r"^[a-z][a-z0-9_-]*$|^[A-Z_][A-Z0-9_]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"}


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _yaml_lines(mapping: dict[str, Any], indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            if value:
                out.append(f"{pad}{_scalar(key)}:")
                out += _yaml_lines(value, indent + 1)
            else:
                out.append(f"{pad}{_scalar(key)}: {{}}")
        elif isinstance(value, list):
            out.append(f"{pad}{_scalar(key)}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            out.append(f"{pad}{_scalar(key)}: {_scalar(value)}")
    return out


def env_yaml(document: dict[str, Any]) -> str:
    """An environment document as the YAML a person would write in environments/."""
    return "\n".join(_yaml_lines(document, 0)) + "\n"


def reordered(document: Any, variables: bool = True) -> Any:
    """The same document with every mapping's keys (jobs included) in reverse order; the
    entries of `variables:` mappings too, unless `variables` is false."""
    if isinstance(document, dict):
        return {
            k: document[k]
            if k == "variables" and not variables
            else reordered(document[k], variables)
            for k in reversed(list(document))
        }
    if isinstance(document, list):
        return [reordered(v, variables) for v in document]
    return document


@dataclass
class EnvSet:
    """A generated repository: environment documents by name, and extra policy files."""

    docs: dict[str, dict[str, Any]]
    owner: str
    """An environment that executes its database's PDMs (a root: no upstream)."""
    policy_files: dict[str, str] = field(default_factory=dict)

    def files(self) -> dict[str, str]:
        """Repository-relative path -> text."""
        out = {f"environments/{name}.yml": env_yaml(doc) for name, doc in self.docs.items()}
        out.update({f"policies/{name}": text for name, text in self.policy_files.items()})
        return out

    def describe(self) -> str:
        """Every file, ready to paste into a repository."""
        return "\n".join(f"# --- {path}\n{text}" for path, text in self.files().items())

    def __repr__(self) -> str:  # the files themselves are in the note above
        return f"EnvSet(<{', '.join(self.docs)}: files printed above>)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))

    def copy(self) -> EnvSet:
        return EnvSet(copy.deepcopy(self.docs), self.owner, dict(self.policy_files))


def vm_job_name(env: str) -> str:
    return f"{env}-vm-post-deploy-migrations"


def kube_job_name(env: str) -> str:
    return f"{env}-kubernetes-post-deploy-migrations"


def executor_jobs(doc: dict[str, Any]) -> list[str]:
    """The jobs of a generated document that execute PDMs, first executor first."""
    found = []
    for name, job in doc["jobs"].items():
        if job["runner"] == "vm" and job.get("variables", {}).get(VM_RUN) == "true":
            found.append(name)
        if job["runner"] == "kubernetes":
            kctl = job["kctl"]
            if kctl["action"] == "upgrade" and not kctl.get("dry_run", False):
                found.append(name)
    step = doc["rollout"]["step"]
    if step == "kubernetes-first":
        found.sort(key=lambda n: doc["jobs"][n]["runner"] != "kubernetes")
    else:
        found.sort(key=lambda n: doc["jobs"][n]["runner"] != "vm")
    return found


VM_RUN = "RUN_POST_DEPLOY_MIGRATIONS"
SKIP = "SKIP_POST_DEPLOYMENT_MIGRATIONS"
_TIMEOUTS = ("10h", "3h", "4h 30m", "600 minutes", "12h")
_EXEC_STAGES = ("build", "test", "deploy")


def _date(offset_days: int) -> str:
    return (dt.date(2026, 9, 1) + dt.timedelta(days=offset_days)).isoformat()


@st.composite
def _executor(draw: st.DrawFn, env: str, database: str, runner: str) -> dict[str, Any]:
    job: dict[str, Any] = {"runner": runner}
    if runner == "vm":
        job["variables"] = {VM_RUN: "true"}
        if draw(st.booleans()):
            job["variables"]["DEPLOY_NOTE"] = draw(st.sampled_from(("pdm run", "it's 'quoted'")))
    else:
        kctl: dict[str, Any] = {"environment": env}
        if named_stage(env):  # a canary's k-ctl calls name its stage (kctl-environment-match)
            kctl["stage"] = named_stage(env)
        elif draw(st.booleans()):
            kctl["stage"] = draw(st.sampled_from(("main", "cny")))
        kctl["action"] = "upgrade"
        if draw(st.booleans()):
            kctl["dry_run"] = False
        kctl["wait_for_jobs"] = True
        kctl["variables"] = {SKIP: "false"}
        if draw(st.booleans()):
            kctl["variables"]["CLUSTER_SKIP"] = draw(st.sampled_from(("", "us-east1-b")))
        job["kctl"] = kctl
    job["timeout"] = draw(st.sampled_from(_TIMEOUTS))
    for key, values in (
        ("retry", (0,)),
        ("allow_failure", (False,)),
        ("interruptible", (False,)),
        ("when", ("on_success",)),
        ("resource_group", (f"{database}-postdeploy-migrations",)),
        ("inherit_variables", (False, ["DEPLOY_ENVIRONMENT"])),
    ):
        if draw(st.integers(0, 3)) == 0:
            job[key] = draw(st.sampled_from(values))
    return job


def _stage_of(env: str) -> dict[str, str]:
    """The k-ctl stage a canary environment's calls must name (none elsewhere: main)."""
    stage = named_stage(env)
    return {"stage": stage} if stage else {}


@st.composite
def _helper_jobs(draw: st.DrawFn, env: str, dry_run: bool) -> dict[str, dict[str, Any]]:
    """Jobs that execute no PDMs: dry runs, templates, listings, generic scripts."""
    jobs: dict[str, dict[str, Any]] = {}
    if dry_run or draw(st.integers(0, 2)) == 0:
        kctl: dict[str, Any] = {"environment": env, **_stage_of(env)}
        kctl |= {"action": "upgrade", "dry_run": True}
        if draw(st.booleans()):
            kctl["variables"] = {SKIP: "false"}
        job: dict[str, Any] = {"runner": "kubernetes", "kctl": kctl}
        if draw(st.booleans()):
            job["needs"] = []
        jobs[f"{env}-kubernetes-dry-run"] = job
    if draw(st.integers(0, 3)) == 0:
        action = draw(st.sampled_from(("template", "list")))
        jobs[f"{env}-kubernetes-{action}"] = {
            "runner": "kubernetes",
            "stage": draw(st.sampled_from(_EXEC_STAGES)),
            "kctl": {"environment": env, **_stage_of(env), "action": action},
        }
    for index in range(draw(st.integers(0, 2))):
        job = {
            "runner": "generic",
            "stage": draw(st.sampled_from((".pre", "build", "test", "deploy", ".post"))),
            "script": draw(
                st.lists(
                    st.sampled_from(
                        ("echo PDMs starting", "echo 'done: ok'", "true", "date -u", 'echo "$CI"')
                    ),
                    min_size=1,
                    max_size=2,
                )
            ),
        }
        if draw(st.booleans()):
            job["when"] = draw(st.sampled_from(("on_success", "always", "on_failure", "manual")))
        if draw(st.integers(0, 3)) == 0:
            job["allow_failure"] = True
        if draw(st.integers(0, 3)) == 0:
            job["retry"] = draw(st.integers(0, 2))
        if draw(st.integers(0, 3)) == 0:
            job["interruptible"] = draw(st.booleans())
        jobs[f"{env}-notify-{index}"] = job
    return jobs


_STAGE_RANK = {".pre": 0, "build": 1, "test": 2, "deploy": 3, ".post": 4}


@st.composite
def _owner_jobs(draw: st.DrawFn, env: str, database: str, step: str) -> dict[str, Any]:
    """The job graph `step` requires, executors in a safe order, helpers around them."""
    helpers = draw(_helper_jobs(env, dry_run=step == "dry-run"))
    runners = {
        "vm": ["vm"],
        "dry-run": ["vm"],
        "kubernetes-after-vm": ["vm", "kubernetes"],
        "kubernetes-first": ["kubernetes", "vm"],
        "kubernetes-only": ["kubernetes"],
    }[step]
    executors: dict[str, dict[str, Any]] = {}
    names = {"vm": vm_job_name(env), "kubernetes": kube_job_name(env)}
    first_rank = 1
    for position, runner in enumerate(runners):
        job = draw(_executor(env, database, runner))
        rank = draw(st.integers(first_rank, 3))
        if rank != 3 or draw(st.booleans()):
            job = {"runner": job.pop("runner"), "stage": _EXEC_STAGES[rank - 1], **job}
        if position == 1:
            first = names[runners[0]]
            if rank == first_rank or draw(st.booleans()):
                job = {"runner": job.pop("runner"), "needs": [first], **job}
        elif len(runners) == 1 and draw(st.integers(0, 4)) == 0:
            job["when"] = "manual"
        first_rank = rank
        executors[names[runner]] = job
    # A Kubernetes executor that nothing follows may return before its Job finishes.
    for name, job in executors.items():
        if job["runner"] != "kubernetes":
            continue
        rank = _STAGE_RANK[job.get("stage", "deploy")]
        followed = any(
            _STAGE_RANK[other.get("stage", "deploy")] > rank or name in other.get("needs", [])
            for other_name, other in {**executors, **helpers}.items()
            if other_name != name
        )
        if not followed and draw(st.booleans()):
            job["kctl"]["wait_for_jobs"] = False
    jobs = list(executors.items()) + list(helpers.items())
    order = draw(st.permutations(range(len(jobs))))
    return dict(jobs[i] for i in order)


@st.composite
def safe_environment_sets(
    draw: st.DrawFn,
    owner_steps: Sequence[str] = ROLLOUT,
    min_databases: int = 1,
    max_environments: int = 4,
) -> EnvSet:
    """Environment sets `pdmpolicy check --today TODAY` accepts. The first environment is a
    root that executes its database's PDMs at one of `owner_steps`."""
    count = draw(st.integers(max(1, min_databases), max_environments))
    names = draw(st.lists(st.sampled_from(ENV_NAMES), min_size=count, max_size=count, unique=True))
    docs: dict[str, dict[str, Any]] = {}
    steps: dict[str, int] = {}
    since: dict[str, int] = {}
    owners: dict[str, str] = {}
    for index, name in enumerate(names):
        earlier = names[:index]
        upstream = None
        if index and draw(st.booleans()):
            upstream = draw(st.sampled_from(earlier))
        if index == 0:
            step = ROLLOUT.index(draw(st.sampled_from(tuple(owner_steps))))
        elif upstream is None:
            step = draw(st.integers(0, 4))
        else:
            step = draw(st.integers(0, steps[upstream]))
        if upstream is not None and step == steps[upstream]:
            day = since[upstream] + draw(st.integers(7, 10))
        else:
            day = draw(st.integers(0, 50))
        databases = sorted(set(owners))
        if index < min_databases or not databases or draw(st.booleans()):
            database = name.split("-")[0] if name.split("-")[0] not in owners else name
            if database in owners:
                database = f"{name}-db"
        else:
            database = draw(st.sampled_from(databases))
        doc: dict[str, Any] = {
            "environment": name,
            "database": database,
            "upstream": upstream,
            "rollout": {"step": ROLLOUT[step], "since": _date(day)},
        }
        if draw(st.booleans()):
            doc["variables"] = {"DEPLOY_ENVIRONMENT": name}
            if draw(st.booleans()):
                doc["variables"]["CHAT_CHANNEL"] = "#releases"
        if database not in owners:
            owners[database] = name
            doc["jobs"] = draw(_owner_jobs(name, database, ROLLOUT[step]))
        else:
            jobs = draw(_helper_jobs(name, dry_run=ROLLOUT[step] == "dry-run"))
            if not jobs:
                jobs = {f"{name}-notify": {"runner": "generic", "script": ["echo nothing to do"]}}
            doc["jobs"] = jobs
        docs[name] = doc
        steps[name] = step
        since[name] = day
    return EnvSet(docs, names[0])


_ANY_WHEN = ("on_success", "manual", "always", "on_failure")


def _waiting_for(jobs: dict[str, dict[str, Any]], name: str) -> set[str]:
    """`name` and every job that needs it, directly or through other needs."""
    waiting = {name}
    grew = True
    while grew:
        grew = False
        for other, job in jobs.items():
            if other not in waiting and waiting.intersection(job.get("needs", [])):
                waiting.add(other)
                grew = True
    return waiting


@st.composite
def environment_sets(draw: st.DrawFn) -> EnvSet:
    """Any schema-valid set: a safe set whose jobs then get arbitrary (well-typed) values for
    the settings the policies care about. Most of these are unsafe."""
    env_set = draw(safe_environment_sets())
    for doc in env_set.docs.values():
        names = list(doc["jobs"])
        for position, (name, job) in enumerate(doc["jobs"].items()):
            if draw(st.integers(0, 2)):
                continue
            key = draw(
                st.sampled_from(
                    ("retry", "when", "allow_failure", "interruptible", "needs", "stage",
                     "timeout", "resource_group", "inherit_variables", "variables")
                )
            )  # fmt: skip
            if key == "retry":
                job[key] = draw(st.integers(0, 2))
            elif key == "when":
                job[key] = draw(st.sampled_from(_ANY_WHEN))
            elif key in ("allow_failure", "interruptible"):
                job[key] = draw(st.booleans())
            elif key == "needs":
                # Earlier jobs only, and none that already waits for this one: the safe set
                # can order its second executor after a job written below it, so position
                # alone does not rule out a cycle (which load refuses, as it should).
                waiting = _waiting_for(doc["jobs"], name)
                candidates = [n for n in names[:position] if n not in waiting]
                job[key] = (
                    draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
                )
            elif key == "stage":
                job[key] = draw(st.sampled_from(_EXEC_STAGES))
            elif key == "timeout":
                job[key] = draw(st.sampled_from(("30m", "1h", "3h", "10h")))
            elif key == "resource_group":
                job[key] = draw(
                    st.sampled_from(("shared", f"{doc['database']}-postdeploy-migrations"))
                )
            elif key == "inherit_variables":
                job[key] = draw(st.sampled_from((True, False, ["AUTO_DEPLOY"])))
            else:
                job.setdefault("variables", {})["AUTO_DEPLOY"] = "true"
            if job["runner"] == "kubernetes" and draw(st.integers(0, 3)) == 0:
                job["kctl"]["wait_for_jobs"] = draw(st.booleans())
    return env_set


# ---------------------------------------------------------------------------------------
# Scripts that hide a command: a PDM command (or a harmless one) spelled through wrappers,
# paths, quoting, line continuations, `sh -c`, functions, `if`, exported variables and
# script files (transparent: the analysis must see through them), or through `eval`, a
# command word from a variable, `source` and missing files (opaque: unknown at best).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellCommand:
    """A command to hide: `assignments` for its process, then its words."""

    assignments: tuple[tuple[str, str], ...]
    words: tuple[str, ...]
    runs_pdms: bool


PDM_COMMANDS = (
    ShellCommand(
        (("SKIP_POST_DEPLOYMENT_MIGRATIONS", "false"),), ("k-ctl", "-e", "gstg", "upgrade"), True
    ),
    ShellCommand((), ("gitlab-rake", "db:migrate"), True),
    ShellCommand((), ("bundle", "exec", "rake", "db:migrate"), True),
    ShellCommand((("RUN_POST_DEPLOY_MIGRATIONS", "true"),), ("ansible-playbook", "pdm.yml"), True),
)
HARMLESS_COMMANDS = (
    ShellCommand(
        (("SKIP_POST_DEPLOYMENT_MIGRATIONS", "true"),), ("k-ctl", "-e", "gstg", "upgrade"), False
    ),
    ShellCommand((), ("k-ctl", "-e", "gstg", "list"), False),
    ShellCommand((("SKIP_POST_DEPLOYMENT_MIGRATIONS", ""),), ("gitlab-rake", "db:migrate"), False),
    ShellCommand((), ("echo", "k-ctl", "upgrade"), False),
)


TRANSPARENT_STEPS = ("sh -c", "bash -c", "if", "function", "and", "or", "file", "bash file")
OPAQUE_STEPS = ("eval", "variable", "missing", "source")


@dataclass
class HiddenScript:
    """Job script lines and the repository files they call."""

    lines: list[str]
    files: dict[str, str]
    transparent: bool
    runs_pdms: bool
    steps: list[str] = field(default_factory=list)


def _quote(draw: Any, word: str) -> str:
    style = draw(st.sampled_from(("plain", "single", "double")))
    if style == "single":
        return f"'{word}'"
    if style == "double":
        return f'"{word}"'
    return word


@st.composite
def hidden_scripts(draw: Any, commands: Sequence[ShellCommand] = PDM_COMMANDS) -> HiddenScript:
    command = draw(st.sampled_from(commands))
    steps: list[str] = []
    before: list[str] = []
    how = draw(st.sampled_from(("inline", "env", "export")))
    steps.append(how)
    prefix = [
        f"{name}={_quote(draw, value) if value else value}" for name, value in command.assignments
    ]
    program, *args = command.words
    if program == "k-ctl":
        program = draw(st.sampled_from(("", "bin/", "./bin/", "/usr/local/bin/"))) + program
    wrapper = draw(st.sampled_from(("", "exec ", "command ", "timeout 1h ", "nice -n 5 ")))
    words = [_quote(draw, program)] + [_quote(draw, word) for word in args]
    separator = " \\\n  " if draw(st.booleans()) else " "
    if how == "inline":
        line = " ".join(prefix) + (" " if prefix else "") + wrapper + separator.join(words)
    elif how == "env":
        line = "env " + " ".join(prefix) + (" " if prefix else "") + wrapper + separator.join(words)
    else:
        before = [f"export {assignment}" for assignment in prefix]
        line = wrapper + separator.join(words)
    files: dict[str, str] = {}
    transparent = True
    for index in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(TRANSPARENT_STEPS + OPAQUE_STEPS))
        steps.append(kind)
        quoted = shlex.quote(line)
        if kind in ("sh -c", "bash -c"):
            line = f"{kind} {quoted}"
        elif kind == "if":
            line = f"if true; then\n  {line}\nfi"
        elif kind == "function":
            line = f"run_{index}() {{\n  {line}\n}}\nrun_{index}"
        elif kind == "and":
            line = f"echo start && {line}"
        elif kind == "or":
            line = f"{line} || exit 1"
        elif kind in ("file", "bash file"):
            path = f"scripts/step-{index}.sh"
            files[path] = f"#!/bin/sh\nset -eu\n{line}\n"
            line = f"./{path}" if kind == "file" else f"bash {path}"
        elif kind == "eval":
            line = f"eval {quoted}"
            transparent = False
        elif kind == "variable":
            line = f'STEP={quoted}; sh -c "$STEP"'
            transparent = False
        elif kind == "missing":
            line = f"./scripts/missing-{index}.sh"
            transparent = False
        else:
            path = f"scripts/sourced-{index}.sh"
            files[path] = line + "\n"
            line = f". ./{path}"
            transparent = False
    return HiddenScript([*before, line], files, transparent, command.runs_pdms, steps)
