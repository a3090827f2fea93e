"""The rewrite of one environment file for another rollout step.

The jobs a step requires are built from the ones there: the dry-run job is added (dry-run),
becomes the Kubernetes executor that runs after the VM executor (kubernetes-after-vm), the
order of the two executors is inverted (kubernetes-first), the VM executor goes
(kubernetes-only); moving back undoes each of those. Names, timeouts, variables and k-ctl
settings are carried over; `rollout.step` and `since` are set. The file is edited as a
ruamel.yaml round-trip tree, so everything the step does not touch (comments, key order,
quoting) is written back as it was.

Only the shape changes here; whether the result is acceptable is the policy set's verdict
(`advance` checks it with the engine before anything is written).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

from pdmpolicy.core import names
from pdmpolicy.gitlab.analysis import KUBERNETES, VM
from pdmpolicy.policies.base import EnvironmentView
from pdmpolicy.rollout import yamledit as y


class CannotBuild(Exception):
    """The file's jobs are not ones `advance` can build the step from (it says why)."""


@dataclass(frozen=True)
class Rewrite:
    text: str
    layout_kept: bool
    """False when ruamel.yaml could not write the unchanged file back byte for byte (an
    unusual indentation): untouched lines may then be reformatted too."""
    changes: tuple[str, ...]


def _rank(job: Any) -> int:
    return names.STAGES.index(str(job.get("stage", names.DEFAULT_STAGE)))


def _needs(job: Any) -> list[str] | None:
    return [str(n) for n in job["needs"]] if "needs" in job else None


def _unique(base: str, taken: Any) -> str:
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


@dataclass
class _Edit:
    doc: CommentedMap
    environment: str
    vm: str | None
    kube: str | None
    dry_runs: list[str]
    passive: bool
    """No executors of its own: another environment runs the database's PDMs."""
    changes: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> CommentedMap:
        jobs: CommentedMap = self.doc["jobs"]
        return jobs

    def need(self, step: str, *roles: str) -> None:
        missing = [role for role in roles if getattr(self, role) is None]
        if missing:
            what = {"vm": "a VM executor", "kube": "a Kubernetes executor"}
            raise CannotBuild(
                f"{self.environment} has no {' and no '.join(what[m] for m in missing)} to "
                f"build {step} from; fix its jobs for its current step first "
                f"(`pdmpolicy check` says what is wrong)"
            )

    def references(self, old: str, new: list[str]) -> None:
        """Jobs that need `old` need `new` instead (in place, keeping each list's style)."""
        for name, job in self.jobs.items():
            if name == old or "needs" not in job or old not in job["needs"]:
                continue
            seq = job["needs"]
            position = list(seq).index(old)
            del seq[position]
            for offset, item in enumerate(n for n in new if n not in seq and n != name):
                seq.insert(position + offset, item)
            self.changes.append(f"{name} now needs {', '.join(seq) or 'nothing'} (was {old})")

    def rename(self, old: str, new: str) -> None:
        y.rename(self.jobs, old, new)
        self.references(old, [new])


def _kctl_source(edit: _Edit) -> tuple[str, str]:
    """k-ctl -e and -s for a new dry-run job: those of a Kubernetes job there, else the
    environment's own name."""
    for job in edit.jobs.values():
        if job.get("runner") == "kubernetes" and "kctl" in job:
            kctl = job["kctl"]
            return str(kctl["environment"]), str(kctl.get("stage", "main"))
    return edit.environment, names.named_stage(edit.environment) or "main"


def _add_dry_run(edit: _Edit) -> None:
    if edit.dry_runs:
        return
    environment, stage = _kctl_source(edit)
    name = _unique(f"{edit.environment}-kubernetes-post-deploy-migrations-dry-run", edit.jobs)
    job = y.block_map(
        {
            "runner": "kubernetes",
            "needs": y.flow_list([]),
            "kctl": y.block_map(
                {
                    "environment": environment,
                    "stage": stage,
                    "action": "upgrade",
                    "dry_run": True,
                    "variables": y.block_map({names.SKIP_VARIABLE: y.quoted("false")}),
                }
            ),
        }
    )
    keys = list(edit.jobs)
    position = keys.index(edit.vm) + 1 if edit.vm in keys else len(keys)
    y.insert(edit.jobs, position, name, job)
    edit.dry_runs.append(name)
    edit.changes.append(
        f"added {name}: k-ctl -e {environment} -D upgrade shows the migrations Job, runs nothing"
    )


def _remove_dry_runs(edit: _Edit) -> None:
    if set(edit.jobs) <= set(edit.dry_runs):
        return  # a file needs a job; vm allows dry runs
    for name in list(edit.dry_runs):
        edit.references(name, _needs(edit.jobs[name]) or [])
        y.delete(edit.jobs, name)
        edit.changes.append(f"removed {name} (the dry run)")
    edit.dry_runs.clear()


def _set_wait(kctl: CommentedMap) -> bool:
    if kctl.get("wait_for_jobs") is True:
        return False
    y.put(kctl, "wait_for_jobs", True, after="dry_run" if "dry_run" in kctl else "action")
    return True


def _dry_run_to_executor(edit: _Edit) -> None:
    """dry-run -> kubernetes-after-vm: the dry-run job runs for real, after the VM job."""
    if edit.passive:
        return
    edit.need("kubernetes-after-vm", "vm")
    if not edit.dry_runs:
        raise CannotBuild(
            f"{edit.environment} has no Kubernetes dry-run job (runner: kubernetes, "
            "kctl.dry_run: true) to turn into the Kubernetes executor"
        )
    assert edit.vm is not None
    main = [n for n in edit.dry_runs if edit.jobs[n]["kctl"].get("stage", "main") == "main"]
    source = (main or edit.dry_runs)[0]
    edit.dry_runs.remove(source)
    base = source.removesuffix("-dry-run")
    if base == source or base in edit.jobs:
        base = f"{edit.environment}-kubernetes-post-deploy-migrations"
    name = _unique(base, [n for n in edit.jobs if n != source])
    if name != source:
        edit.rename(source, name)
    job = edit.jobs[name]
    vm = edit.jobs[edit.vm]
    kctl = job["kctl"]
    y.put(kctl, "dry_run", False, after="action")
    _set_wait(kctl)
    if "variables" not in kctl:
        y.put(kctl, "variables", y.block_map({names.SKIP_VARIABLE: y.quoted("false")}))
    elif kctl["variables"].get(names.SKIP_VARIABLE) != "false":
        y.put(kctl["variables"], names.SKIP_VARIABLE, y.quoted("false"))
    if _rank(job) < _rank(vm):
        y.put(job, "stage", vm["stage"], after="runner")
    y.put(job, "needs", y.flow_list([edit.vm]), after="stage" if "stage" in job else "runner")
    timeout = vm.get("timeout")
    if timeout is not None and (
        "timeout" not in job
        or (names.parse_duration(str(job["timeout"])) or 0)
        < (names.parse_duration(str(timeout)) or 0)
    ):
        y.put(job, "timeout", timeout)
    edit.kube = name
    edit.changes.append(
        f"{source} became {name}: k-ctl -e {kctl['environment']} upgrade for real "
        f"(dry_run: false, wait_for_jobs: true), after {edit.vm} succeeded"
        + (f", timeout {job['timeout']}" if "timeout" in job else "")
    )


def _executor_to_dry_run(edit: _Edit) -> None:
    """kubernetes-after-vm -> dry-run: the Kubernetes executor only shows what it would do."""
    if edit.passive:
        _add_dry_run(edit)  # the step needs one, executors or not
        return
    edit.need("dry-run", "vm", "kube")
    assert edit.vm is not None and edit.kube is not None
    source = edit.kube
    name = _unique(f"{source}-dry-run", edit.jobs)
    edit.rename(source, name)
    job = edit.jobs[name]
    kctl = job["kctl"]
    y.put(kctl, "dry_run", True, after="action")
    y.drop(kctl, "wait_for_jobs")
    y.put(job, "needs", y.flow_list([]), after="stage" if "stage" in job else "runner")
    if "timeout" in job and job["timeout"] == edit.jobs[edit.vm].get("timeout"):
        y.drop(job, "timeout")
    edit.kube = None
    edit.dry_runs.insert(0, name)
    edit.changes.append(
        f"{source} became {name}: k-ctl -D (a dry run, runs nothing), needs nothing"
    )


def _put_needs(job: CommentedMap, needs: Any) -> None:
    if needs is None:
        y.drop(job, "needs")
    else:
        y.put(job, "needs", needs, after="stage" if "stage" in job else "runner")


def _put_stage(job: CommentedMap, stage: Any) -> None:
    if stage is None:
        y.drop(job, "stage")
    else:
        y.put(job, "stage", stage, after="runner")


def _copy_needs(needs: Any, renames: dict[str, str]) -> CommentedSeq | None:
    """A fresh list of the same names (renamed), in the same style."""
    if needs is None:
        return None
    items = list(dict.fromkeys(renames.get(str(n), str(n)) for n in needs))
    copy = CommentedSeq(items)
    if needs.fa.flow_style():
        copy.fa.set_flow_style()
    return copy


def _invert(edit: _Edit, first: str) -> None:
    """kubernetes-after-vm <-> kubernetes-first: the two executors swap places in the job
    graph (stage and needs), so the other one runs first; `first` names it."""
    if edit.passive:
        return
    edit.need(first, "vm", "kube")
    assert edit.vm is not None and edit.kube is not None
    leader, follower = (edit.kube, edit.vm) if first == "kubernetes-first" else (edit.vm, edit.kube)
    # Before the swap, `follower` leads: it takes `leader`'s place in the graph.
    new_leader, new_follower = edit.jobs[leader], edit.jobs[follower]
    old_stage = {n: edit.jobs[n].get("stage") for n in (leader, follower)}
    lead_needs = _copy_needs(edit.jobs[follower].get("needs"), {})
    follow_needs = _copy_needs(edit.jobs[leader].get("needs"), {follower: leader})
    _put_stage(new_leader, old_stage[follower])
    _put_stage(new_follower, old_stage[leader])
    _put_needs(new_leader, lead_needs)
    _put_needs(new_follower, follow_needs)
    if edit.kube == leader:
        _set_wait(new_leader["kctl"])
    else:
        _set_wait(new_follower["kctl"])
    waits = " (k-ctl waits for the migrations Job)" if leader == edit.kube else ""
    edit.changes.append(f"{leader} now runs first{waits}; {follower} only after it succeeded")


def _remove_vm(edit: _Edit) -> None:
    """kubernetes-first -> kubernetes-only: the VM executor goes."""
    if edit.passive:
        return
    edit.need("kubernetes-only", "vm", "kube")
    assert edit.vm is not None
    name = edit.vm
    edit.references(name, _needs(edit.jobs[name]) or [])
    y.delete(edit.jobs, name)
    edit.vm = None
    edit.changes.append(f"removed {name} (the VM executor)")


def _add_vm(edit: _Edit) -> None:
    """kubernetes-only -> kubernetes-first: a VM executor again, after the Kubernetes one."""
    if edit.passive:
        return
    edit.need("kubernetes-first", "kube")
    assert edit.kube is not None
    kube = edit.jobs[edit.kube]
    name = _unique(f"{edit.environment}-vm-post-deploy-migrations", edit.jobs)
    job = y.block_map({"runner": "vm"})
    if "stage" in kube:
        job["stage"] = kube["stage"]
    job["needs"] = y.flow_list([edit.kube])
    job["variables"] = y.block_map({names.VM_RUN_VARIABLE: y.quoted("true")})
    job["timeout"] = kube.get("timeout", "10h")
    y.insert(edit.jobs, list(edit.jobs).index(edit.kube) + 1, name, job)
    _set_wait(kube["kctl"])
    edit.vm = name
    edit.changes.append(
        f"added {name}: the VM executor, after {edit.kube} succeeded (finds nothing pending)"
    )


FORWARD = {
    1: _add_dry_run,
    2: _dry_run_to_executor,
    3: lambda edit: _invert(edit, "kubernetes-first"),
    4: _remove_vm,
}
"""Step index entered -> the change that enters it from the step before."""
BACKWARD = {
    0: _remove_dry_runs,
    1: _executor_to_dry_run,
    2: lambda edit: _invert(edit, "kubernetes-after-vm"),
    3: _add_vm,
}
"""Step index entered -> the change that enters it from the step after."""


def roles(view: EnvironmentView) -> tuple[str | None, str | None, list[str]]:
    """The VM executor, the Kubernetes executor and the Kubernetes dry-run jobs, by name."""
    found: dict[str, str] = {}
    for name, effect in view.analysis.effects.items():
        if effect.kind is None:
            continue
        job = view.environment.job(name)
        if job.runner != effect.kind:
            raise CannotBuild(
                f"{name} runs PDMs from a {job.runner} job; advance builds steps from "
                "runner: vm and runner: kubernetes jobs only, so change this file by hand"
            )
        if effect.kind in found:
            raise CannotBuild(
                f"{view.name} has two {effect.kind} executors ({found[effect.kind]}, {name}); "
                "advance builds steps from one of each"
            )
        found[effect.kind] = name
    dry_runs = [
        job.name
        for job in view.environment.jobs
        if job.runner == "kubernetes"
        and job.kctl is not None
        and job.kctl.dry_run
        and job.kctl.action == "upgrade"
    ]
    return found.get(VM), found.get(KUBERNETES), dry_runs


def _set_scalar(mapping: CommentedMap, key: str, value: str) -> None:
    old = mapping.get(key)
    mapping[key] = type(old)(value) if isinstance(old, ScalarString) else value


def rewrite(
    text: str, view: EnvironmentView, target: int, today: dt.date, passive: bool
) -> Rewrite:
    """`text` (the file of `view`) rewritten for step index `target`, entered `today`."""
    vm, kube, dry_runs = roles(view)
    doc, yaml, layout_kept = y.load(text)
    edit = _Edit(doc, view.name, vm, kube, dry_runs, passive)
    current = view.environment.step_index
    while current != target:
        if target > current:
            current += 1
            FORWARD[current](edit)
        else:
            current -= 1
            BACKWARD[current](edit)
    rollout = doc["rollout"]
    _set_scalar(rollout, "step", names.ROLLOUT_STEPS[target])
    since = rollout.get("since")
    if isinstance(since, ScalarString):
        rollout["since"] = type(since)(today.isoformat())
    else:
        rollout["since"] = today
    step = f"rollout.step: {view.environment.step} -> {names.ROLLOUT_STEPS[target]}"
    changes = [step, f"rollout.since: {view.environment.since.isoformat()} -> {today}"]
    return Rewrite(y.dump(yaml, doc), layout_kept, tuple(changes + edit.changes))
