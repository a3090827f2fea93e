"""What render writes cannot be subverted, and reaches the disk all at once or not at all.

- Properties (hypothesis): for any values the schema accepts, hostile ones included, the
  emitted YAML reads back, with GitLab's YAML 1.1 reading and with another YAML 1.1 reader,
  to exactly the intended keys and strings, and every k-ctl / VM command line splits, as a
  shell splits it, into exactly the intended words: no extra command, key or type change.
  A value the loader or schema refuses is refused with a located reason.
- Disk: a render killed at every step of its writing leaves the previous `ci/` or the new
  one, byte for byte, never a mix; foreign files stay the same files; a symbolic link on the
  way out of the repository is refused.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pdmpolicy.core import names
from pdmpolicy.core.errors import InputError
from pdmpolicy.core.location import Loc
from pdmpolicy.environments.load import CONTROL_IN_VALUE, parse_document
from pdmpolicy.environments.lower import lower, parent
from pdmpolicy.environments.model import Environment, build_environment
from pdmpolicy.environments.project import load_project
from pdmpolicy.environments.schema import check_references, validate_shape
from pdmpolicy.gitlab.shell import commands
from pdmpolicy.gitlab.yaml import Map, Node, Scalar, Seq, parse_documents
from pdmpolicy.output import atomic, render
from pdmpolicy.output.render import emit, rendered_files, write_all
from pdmpolicy.policies.examples import GSTG
from pdmpolicy.policyset.toolchain import DEFAULT
from tests.conftest import REPO_ROOT, Repo

# --- Values: what an MR author may write -------------------------------------------------

FRAGMENTS = (
    "$(id)", "`id`", "; rm -rf /", "&& curl x | sh", "||", "|", ">", "<", "'", '"', "\\",
    "\n", "\t", " ", "#", " #", ": ", "- ", "? ", "{a: b}", "[x]", "*a", "&a", "!!python/object",
    "!tag", "%YAML 1.1", "---", "...", "<<", "no", "On", "y", "~", "null", "0x1F", "1:30",
    "010", ".inf", "2026-1-1", ":sym", "${VAR}", "$VAR", "é", "\U0001f600", "=", "@", "%",
    "\\n", "\r", "\x1b[2J", "\u2028", "\x85", "\ufeff",
)  # fmt: skip
"""Pieces of YAML syntax, YAML 1.1 literals, shell syntax and characters that are not text."""

TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=8).map("".join),
    st.sampled_from(FRAGMENTS),
    st.builds(lambda piece, count: piece * count, st.sampled_from(FRAGMENTS), st.integers(1, 400)),
)
NAME = st.from_regex(names.NAME_PATTERN, fullmatch=True)
VARIABLE_NAME = st.from_regex(names.VARIABLE_PATTERN, fullmatch=True) | st.sampled_from(
    ("on", "yes", "no", "y", "n", "true", "NULL", "Off", "TRUE", "_")
)
VARIABLES = st.dictionaries(VARIABLE_NAME, TEXT, max_size=4)
WAIT = DEFAULT.kubernetes.wait
SCRIPT_LINE = TEXT.filter(lambda line: "\n" not in line and "\r" not in line)


@dataclass(frozen=True)
class JobSpec:
    name: str
    runner: str
    variables: dict[str, str]
    kctl: dict[str, Any] | None = None
    script: tuple[str, ...] = ()
    resource_group: str | None = None
    timeout: str | None = None


@st.composite
def job_specs(draw: st.DrawFn, name: str) -> JobSpec:
    runner = draw(st.sampled_from(names.RUNNERS))
    resource_group = draw(st.none() | st.from_regex(names.RESOURCE_GROUP_PATTERN, fullmatch=True))
    timeout = draw(st.none() | st.sampled_from(("10h", "3h 30m", "90 minutes", "1d")))
    if runner == "kubernetes":
        kctl = {
            "environment": draw(NAME),
            "stage": draw(st.sampled_from(names.KCTL_STAGES)),
            "action": draw(st.sampled_from(names.KCTL_ACTIONS)),
            "dry_run": draw(st.booleans()),
            "wait_for_jobs": draw(st.booleans()),
            "variables": draw(VARIABLES),
        }
        return JobSpec(name, runner, {}, kctl, (), resource_group, timeout)
    if runner == "generic":
        script = tuple(draw(st.lists(SCRIPT_LINE, min_size=1, max_size=3)))
        return JobSpec(name, runner, draw(VARIABLES), None, script, resource_group, timeout)
    return JobSpec(name, runner, draw(VARIABLES), None, (), resource_group, timeout)


@dataclass(frozen=True)
class EnvSpec:
    name: str
    database: str
    variables: dict[str, str]
    jobs: tuple[JobSpec, ...]

    def text(self) -> str:
        """The environment file, every scalar written as a JSON string (a YAML
        double-quoted scalar), so that the value is exactly the one generated."""
        q = json.dumps

        def mapping(values: dict[str, str], indent: str) -> str:
            return "".join(f"{indent}{q(k)}: {q(v)}\n" for k, v in values.items())

        lines = [
            f"environment: {q(self.name)}\ndatabase: {q(self.database)}\nupstream: null\n",
            "rollout:\n  step: vm\n  since: 2026-11-16\n",
        ]
        if self.variables:
            lines.append("variables:\n" + mapping(self.variables, "  "))
        lines.append("jobs:\n")
        for job in self.jobs:
            lines.append(f"  {q(job.name)}:\n    runner: {job.runner}\n")
            if job.resource_group is not None:
                lines.append(f"    resource_group: {q(job.resource_group)}\n")
            if job.timeout is not None:
                lines.append(f"    timeout: {q(job.timeout)}\n")
            if job.variables:
                lines.append("    variables:\n" + mapping(job.variables, "      "))
            if job.script:
                lines.append("    script:\n" + "".join(f"      - {q(s)}\n" for s in job.script))
            if job.kctl is not None:
                kctl = dict(job.kctl)
                variables = kctl.pop("variables")
                lines.append("    kctl:\n")
                lines += [f"      {k}: {q(v)}\n" for k, v in kctl.items()]
                if variables:
                    lines.append("      variables:\n" + mapping(variables, "        "))
        return "".join(lines)


@st.composite
def environments(draw: st.DrawFn) -> EnvSpec:
    job_names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    jobs = tuple(draw(job_specs(name)) for name in job_names)
    return EnvSpec(draw(NAME), draw(NAME), draw(VARIABLES), jobs)


def build(spec: EnvSpec) -> Environment:
    """Through the loader and the schema, as `pdmpolicy check` reads a file; InputError
    when they refuse it."""
    doc = parse_document(f"environments/{spec.name}.yml", spec.text().encode("utf-8"))
    problems = validate_shape(doc) or check_references(doc, spec.name)
    if problems:
        raise InputError(problems)
    return build_environment(doc)


# --- Reading the output back -------------------------------------------------------------


def plain(node: Node | None) -> Any:
    """A tree from GitLab's reading (pdmpolicy.gitlab.yaml) as Python values."""
    if isinstance(node, Map):
        return {entry.key: plain(entry.value) for entry in node.entries}
    if isinstance(node, Seq):
        return [plain(item) for item in node.items]
    assert isinstance(node, Scalar), node
    return node.value


def read_back(text: str) -> dict[str, Any]:
    """The emitted text as GitLab reads it; another YAML 1.1 reader must agree."""
    (document,) = parse_documents("ci.yml", text)
    gitlab = plain(document)
    other = YAML(typ="safe", pure=True)
    other.version = (1, 1)
    assert other.load(text) == gitlab
    assert isinstance(gitlab, dict)
    return gitlab


JOB_KEYS = {
    "stage", "needs", "when", "allow_failure", "retry", "interruptible", "resource_group",
    "timeout", "inherit", "variables", "script", "artifacts",
}  # fmt: skip


def expected_argv(job: JobSpec) -> list[str]:
    """The words the rendered script line must give the shell, from SPEC.md and the brief:
    trigger variables stripped, then k-ctl (or the VM tooling) with its flags."""
    words = ["env", "-u", "AUTO_DEPLOY", "-u", "GITLAB_IMAGE_TAG"]
    if job.runner == "vm":
        return [*words, *DEFAULT.vm.command]
    assert job.kctl is not None
    # Variables come in name order, whatever order the file wrote them in.
    words += [f"{name}={value}" for name, value in sorted(job.kctl["variables"].items())]
    if job.kctl["wait_for_jobs"]:
        words.append(DEFAULT.kubernetes.wait.assignment())
    words += ["k-ctl", "-e", job.kctl["environment"]]
    if job.kctl["stage"] != "main":
        words += ["-s", job.kctl["stage"]]
    if job.kctl["dry_run"]:
        words.append("-D")
    return [*words, job.kctl["action"]]


@given(environments())
def test_rendered_child_pipeline_means_exactly_what_was_written(spec: EnvSpec) -> None:
    try:
        environment = build(spec)
    except InputError as exc:
        # Refused: with a reason and a place in the file, never silently.
        for problem in exc.problems:
            assert problem.loc.path == f"environments/{spec.name}.yml"
            assert problem.loc.line >= 1 and problem.message
        event("refused")
        return
    event("rendered")
    document = read_back(emit(lower(environment)))
    job_names = [job.name for job in spec.jobs]
    expected_top = ["stages", *(["variables"] if spec.variables else []), *job_names]
    assert sorted(document) == sorted(expected_top)
    assert document.get("variables", {}) == spec.variables
    for job in spec.jobs:
        rendered = document[job.name]
        assert set(rendered) <= JOB_KEYS, set(rendered) - JOB_KEYS
        assert rendered.get("variables", {}) == job.variables
        assert rendered["resource_group"] == (
            job.resource_group or f"{spec.database}-postdeploy-migrations"
        )
        assert rendered.get("timeout") == job.timeout
        script = rendered["script"]
        assert all(isinstance(line, str) for line in script)
        if job.runner == "generic":
            assert script == list(job.script)
            continue
        argv = expected_argv(job)
        saved = f"dry-run/{job.name}.yaml"
        if job.kctl is not None and (job.kctl["dry_run"] or job.kctl["action"] == "template"):
            # k-ctl's output is kept for `pdmpolicy manifests`: saved, then shown.
            assert rendered["artifacts"]["paths"] == [saved]
            assert [shlex.split(line) for line in script] == [
                ["mkdir", "-p", "dry-run"],
                [*argv, ">", saved],
                ["cat", saved],
            ]
            line = script[1]
        else:
            assert "artifacts" not in rendered
            (line,) = script
            assert shlex.split(line) == argv
        # The project's own shell reader sees one command in the line, with those words.
        (command,) = commands([(line, Loc("ci.yml"))])
        assert [command.program, *command.args] == argv[len(argv) - len(command.args) - 1 :]
        if job.kctl is not None:
            assert dict(command.assigned) == {
                **job.kctl["variables"],
                **({WAIT.variable: WAIT.value} if job.kctl["wait_for_jobs"] else {}),
            }


@given(st.lists(NAME, min_size=1, max_size=3, unique=True))
def test_rendered_parent_pipeline_means_exactly_what_was_written(env_names: list[str]) -> None:
    vm = JobSpec("vm", "vm", {})
    built = [build(EnvSpec(name, "db", {}, (vm,))) for name in env_names]
    document = read_back(emit(parent(built)))
    assert sorted(document) == sorted(f"{name}-postdeploy-migrations" for name in env_names)
    for name in env_names:
        job = document[f"{name}-postdeploy-migrations"]
        assert job["rules"] == [{"if": f'$DEPLOY_ENVIRONMENT == "{name}"'}]
        assert job["trigger"]["include"] == f"ci/environments/{name}-postdeploy-migrations.yml"


ACCEPTED_TEXT = TEXT.filter(lambda value: CONTROL_IN_VALUE.search(value) is None)


@given(st.dictionaries(VARIABLE_NAME, ACCEPTED_TEXT, min_size=1, max_size=6))
def test_every_variable_value_reads_back_as_the_same_string(values: dict[str, str]) -> None:
    """Any value the loader lets through, straight through `emit`: the emitter alone quotes
    whatever a YAML 1.1 reader would take for something else."""
    from pdmpolicy.gitlab.pipeline import Pipeline, Variable

    variables = tuple(Variable(name, value, Loc("x")) for name, value in values.items())
    pipeline = Pipeline("ci/x.yml", "x", ("deploy",), variables, ())
    assert read_back(emit(pipeline)) == {"variables": values}


@pytest.mark.parametrize(
    ("value", "written"),
    [("no", "'no'"), ("On", "'On'"), ("y", "'y'"), ("1:30", "'1:30'"), ("010", "'010'"),
     ("2026-1-1", "'2026-1-1'"), (":sym", "':sym'"), ("tRuE", "'tRuE'"), ("a b", "a b")],
)  # fmt: skip
def test_yaml_1_1_literals_are_quoted_in_the_output(value: str, written: str) -> None:
    from pdmpolicy.gitlab.pipeline import Pipeline, Variable

    pipeline = Pipeline("ci/x.yml", "x", ("deploy",), (Variable("A", value, Loc("x")),), ())
    assert f"\n  A: {written}\n" in emit(pipeline)


# --- All or nothing on disk --------------------------------------------------------------

TODAY = "2026-11-26"
GPRD = GSTG.replace("gstg", "gprd")
GPRE = GSTG.replace("gstg", "gpre")


def snapshot(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry under ci/: files by content, links by target, directories by name."""
    found: dict[str, tuple[str, bytes]] = {}
    ci = root / "ci"
    if not ci.exists():
        return found
    for path in sorted(ci.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[key] = ("link", str(path.readlink()).encode())
        elif path.is_dir():
            found[key] = ("dir", b"")
        else:
            found[key] = ("file", path.read_bytes())
    return found


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(".ci.pdmpolicy-*"))


@pytest.fixture
def changing_repo(repo: Repo, run: Any) -> Iterator[Repo]:
    """ci/ rendered for gstg and gprd, with foreign files beside the generated ones; then
    the environments change: gstg's timeout, gprd removed, gpre added."""
    repo.env("gstg.yml", GSTG)
    repo.env("gprd.yml", GPRD)
    assert run("render", f"--today={TODAY}").code == 0
    ci = repo.root / "ci"
    (ci / "hand-written.yml").write_text("# a file of ours, not pdmpolicy's\n", encoding="utf-8")
    (ci / "environments" / "other-postdeploy-migrations.yml").write_text("x: 1\n", "utf-8")
    (ci / "templates").mkdir()
    (ci / "templates" / "deep.yml").write_text("y: 2\n", encoding="utf-8")
    (ci / "link.yml").symlink_to("hand-written.yml")
    repo.env("gstg.yml", GSTG.replace("timeout: 10h", "timeout: 12h"))
    (repo.root / "environments" / "gprd.yml").unlink()
    repo.env("gpre.yml", GPRE)
    yield repo


FOREIGN = ("ci/hand-written.yml", "ci/environments/other-postdeploy-migrations.yml",
           "ci/templates/deep.yml")  # fmt: skip


def _next_files(root: Path) -> dict[str, str]:
    return rendered_files(load_project(root, root / "environments", root / "policies"))


STEPS = ("link", "symlink", "mkdir", "rmdir", "unlink", "rename", "open", "fsync", "chmod")
"""The calls through which write_all changes the disk; a kill before or after any one of
them is an interruption render must survive."""


def _killed_write(root: Path, files: dict[str, str], step: int, after: bool) -> int:
    """Run write_all in a forked process that SIGKILLs itself at its `step`-th call that
    touches the disk (before or after the call); its wait status. With step 0 it runs to
    the end and exits with the number of such calls."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            counter = itertools.count(1)

            def killing(call: Callable[..., Any]) -> Callable[..., Any]:
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    number = next(counter)
                    if number == step and not after:
                        os.kill(os.getpid(), signal.SIGKILL)
                    try:
                        return call(*args, **kwargs)
                    finally:  # a call that fails (mkdir of a directory there) ran too
                        if number == step and after:
                            os.kill(os.getpid(), signal.SIGKILL)

                return wrapper

            for name in STEPS:
                setattr(os, name, killing(getattr(os, name)))
            atomic.exchange = killing(atomic.exchange)
            write_all(root, files)
            os._exit(min(next(counter) - 1, 255))
        except BaseException:
            os._exit(255)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_render_killed_at_any_step_leaves_the_old_ci_or_the_new_one(
    changing_repo: Repo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    template = changing_repo.root
    before = snapshot(template)
    files = _next_files(template)
    finished = tmp_path_factory.mktemp("finished")
    shutil.copytree(template, finished, symlinks=True, dirs_exist_ok=True)
    write_all(finished, files)
    after = snapshot(finished)
    assert after != before and all(after[f] == before[f] for f in FOREIGN)
    assert leftovers(finished) == []

    probe = tmp_path_factory.mktemp("probe")
    shutil.copytree(template, probe, symlinks=True, dirs_exist_ok=True)
    status = _killed_write(probe, files, step=0, after=False)
    total = os.WEXITSTATUS(status)
    assert os.WIFEXITED(status) and 10 < total < 255, status
    assert snapshot(probe) == after

    outcomes = set()
    for step, kill_after in itertools.product(range(1, total + 1), (False, True)):
        work = tmp_path_factory.mktemp(f"kill{step}{'a' if kill_after else 'b'}")
        shutil.copytree(template, work, symlinks=True, dirs_exist_ok=True)
        inodes = {f: (work / f).stat().st_ino for f in FOREIGN}
        status = _killed_write(work, files, step, kill_after)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (step, status)
        state = snapshot(work)
        assert state in (before, after), f"a kill at step {step} left a mix"
        outcomes.add("before" if state == before else "after")
        assert {f: (work / f).stat().st_ino for f in FOREIGN} == inodes  # the same files
        write_all(work, files)  # the next run finishes the job and clears what was left
        assert snapshot(work) == after
        assert leftovers(work) == []
    assert outcomes == {"before", "after"}


KILL_WRAPPER = """
import os, signal, sys
from pdmpolicy.output import atomic
point, count = sys.argv[1], int(sys.argv[2])
calls = []
def kill_at(module, name):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        calls.append(name)
        result = real(*args, **kwargs)
        if len(calls) == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(module, name, wrapper)
kill_at(atomic if point == "exchange" else os, point)
from pdmpolicy.cli import main
sys.exit(main(["render", "--today", sys.argv[3]]))
"""


@pytest.mark.parametrize(
    ("point", "count", "outcome"), [("fsync", 2, "before"), ("exchange", 1, "after")]
)
def test_a_real_render_process_killed_midway(
    changing_repo: Repo, point: str, count: int, outcome: str
) -> None:
    """`pdmpolicy render` in its own process, SIGKILLed while it writes (after the second
    file reached the disk) or right after the switch: ci/ is the old or the new one whole,
    and the next render completes it."""
    root = changing_repo.root
    before = snapshot(root)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", KILL_WRAPPER, point, str(count), TODAY],
        cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = snapshot(root)
    if outcome == "before":
        assert state == before
    else:
        assert state != before and all(state[f] == before[f] for f in FOREIGN)
        check = subprocess.run(
            [sys.executable, "-m", "pdmpolicy", "render", "--check", "--today", TODAY],
            cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    finished = subprocess.run(
        [sys.executable, "-m", "pdmpolicy", "render", "--today", TODAY],
        cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert leftovers(root) == []
    assert all((root / f).exists() for f in FOREIGN)


def test_without_an_atomic_exchange_render_still_writes_every_file(
    changing_repo: Repo, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(first: Path, second: Path) -> None:
        raise OSError(errno.ENOSYS, "no exchange here")

    monkeypatch.setattr(atomic, "exchange", unsupported)
    assert run("render", f"--today={TODAY}").code == 0
    assert run("render", "--check", f"--today={TODAY}").code == 0
    assert leftovers(changing_repo.root) == []
    assert all((changing_repo.root / f).exists() for f in FOREIGN)


def test_a_leftover_staging_tree_keeps_what_is_not_ours(changing_repo: Repo, run: Any) -> None:
    root = changing_repo.root
    stray = root / ".ci.pdmpolicy-crashed"
    (stray / "environments").mkdir(parents=True)
    (stray / "environments" / "gstg-postdeploy-migrations.yml").write_text(
        render.GENERATED_MARK + " from a killed run\n", encoding="utf-8"
    )
    (stray / "notes.txt").write_text("someone's notes\n", encoding="utf-8")
    assert run("render", f"--today={TODAY}").code == 0
    assert not (stray / "environments").exists()
    assert (stray / "notes.txt").read_text(encoding="utf-8") == "someone's notes\n"


@pytest.mark.parametrize("linked", ["ci", "ci/environments", "ci/postdeploy-migrations.yml"])
def test_render_never_writes_through_a_symbolic_link(
    repo: Repo, run: Any, tmp_path_factory: pytest.TempPathFactory, linked: str
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    target = outside / "target"
    if linked.endswith(".yml"):
        target.write_text(render.GENERATED_MARK + " elsewhere\n", encoding="utf-8")
    else:
        target.mkdir()
    link = repo.root / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    repo.env("gstg.yml", GSTG)
    before = sorted(p.name for p in outside.rglob("*"))
    content = target.read_bytes() if target.is_file() else None
    result = run("render", f"--today={TODAY}")
    assert result.code == 2, result.err
    assert f"{linked} is a symbolic link" in result.err
    assert "Traceback" not in result.err
    assert sorted(p.name for p in outside.rglob("*")) == before
    if content is not None:
        assert target.read_bytes() == content
    assert link.is_symlink()
