"""Running rendered pipelines in gitlab-ci-local, with stub executors that record what they see.

A `Workspace` is a throwaway git repository holding the rendered `ci/` files byte for byte,
plus a directory of stub programs (`k-ctl`, `deploy-vms`) put first on PATH. Each stub writes
one JSON line per call to a log: its argv, its *whole* process environment, when it started
and ended, and the exit code it chose. A stub fails (exit 1) when the job that runs it
(`CI_JOB_NAME`) is listed in the workspace's `fail_jobs`, or `<job>/<program>` is (only that
program fails in that job). The stubbed programs are k-ctl and the VM tooling unless the
workspace names others (a toolchain override's `ansible-playbook`, `kubectl`). Everything a
stub needs is baked into it when it is written, so it records even if a script cleared the
environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from pdmpolicy.core import names
from pdmpolicy.policyset.toolchain import DEFAULT

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS = REPO_ROOT / ".e2e-tools"
TOOL_ENV = "PDMPOLICY_GITLAB_CI_LOCAL"
"""Path of a gitlab-ci-local to use instead of the one tests/e2e/install.sh installs."""

STUB_SECONDS = 0.3
"""How long each stub runs: long enough that two overlapping calls visibly overlap."""

TRIGGER_VARIABLES = {"AUTO_DEPLOY": "true", "GITLAB_IMAGE_TAG": "17.7.202611260000-e2etest"}
"""What an auto-deploy trigger passes; given to gitlab-ci-local as pipeline variables."""

# Variables of the host that must not reach the jobs by accident: the domain's own, and
# what a CI system running these tests sets (gitlab-ci-local would pass them through).
_SCRUBBED = {
    *names.AUTO_DEPLOY_VARIABLES,
    names.SKIP_VARIABLE,
    names.VM_RUN_VARIABLE,
    DEFAULT.kubernetes.wait.variable,
    "DEPLOY_ENVIRONMENT",
    "CI",
}
_SCRUBBED_PREFIXES = ("GCL_", "CI_", "GITLAB_")

_STUB = """\
#!{python} -I
# Stub written by tests/e2e/harness.py: records one call of {program}.
import json, os, sys, time

start = time.time()
time.sleep({seconds!r})
job = os.environ.get("CI_JOB_NAME")
code = 1 if job in {fail_jobs!r} or f"{{job}}/{program}" in {fail_jobs!r} else 0
# The environment the job's shell started with (env(1) execs this stub, so the shell is
# the parent): what the job received, before the script removed anything.
try:
    with open(f"/proc/{{os.getppid()}}/environ", "rb") as file:
        words = file.read().split(b"\\0")
    parent = dict(w.decode(errors="replace").split("=", 1) for w in words if b"=" in w)
except OSError:
    parent = {{}}
record = {{
    "program": {program!r},
    "argv": sys.argv[1:],
    "env": dict(os.environ),
    "parent_env": parent,
    "start": start,
    "end": time.time(),
    "exit": code,
}}
fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
try:
    os.write(fd, (json.dumps(record) + "\\n").encode())
finally:
    os.close(fd)
sys.exit(code)
"""


def find_gitlab_ci_local() -> Path | None:
    """$PDMPOLICY_GITLAB_CI_LOCAL, else what install.sh installed, else PATH."""
    if os.environ.get(TOOL_ENV):
        return Path(os.environ[TOOL_ENV])
    installed = TOOLS / "bin" / "gitlab-ci-local"
    if installed.is_file():
        return installed
    found = shutil.which("gitlab-ci-local")
    return Path(found) if found else None


def plain_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@dataclass(frozen=True)
class Call:
    """One recorded call of a stub."""

    program: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    parent_env: Mapping[str, str]
    """The environment the job's shell started with (the stub's parent process)."""
    start: float
    end: float
    exit: int

    @property
    def job(self) -> str | None:
        return self.env.get("CI_JOB_NAME")

    @property
    def executor_kind(self) -> str | None:
        """'kubernetes' or 'vm' when this call runs PDMs by what it *did*, else None.

        Read from the process itself, not from the YAML: k-ctl with action upgrade/install
        and no -D; the VM tooling with RUN_POST_DEPLOY_MIGRATIONS=true in its environment.
        """
        if self.program == names.KCTL:
            if "-D" in self.argv:
                return None
            action = _kctl_action(list(self.argv))
            return "kubernetes" if action in ("upgrade", "install") else None
        if self.program == names.VM_TOOL and self.env.get(names.VM_RUN_VARIABLE) == "true":
            return "vm"
        return None

    def describe(self) -> str:
        return f"{self.program} {' '.join(self.argv)} (job {self.job}, exit {self.exit})"


def _kctl_action(argv: list[str]) -> str | None:
    """The first word that is neither an option nor an option's value."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in ("-e", "-s"):
            index += 2
            continue
        if not word.startswith("-"):
            return word
        index += 1
    return None


@dataclass(frozen=True)
class Run:
    """One gitlab-ci-local invocation: its exit code, output, and the stubs' calls."""

    args: tuple[str, ...]
    code: int
    stdout: str
    output: str
    """Standard output and error."""
    calls: tuple[Call, ...]

    def explain(self) -> str:
        calls = "\n".join(f"  {c.describe()}" for c in self.calls) or "  (none)"
        return (
            f"gitlab-ci-local {' '.join(self.args)} exited {self.code}\n"
            f"stub calls, in start order:\n{calls}\n--- output ---\n{self.output}"
        )

    @property
    def executor_calls(self) -> tuple[Call, ...]:
        return tuple(c for c in self.calls if c.executor_kind)


class Workspace:
    """A git repository with the rendered ci/ files, stubs on PATH, and gitlab-ci-local."""

    def __init__(
        self,
        root: Path,
        files: Mapping[str, bytes],
        tool: Path,
        fail_jobs: Iterable[str] = (),
        programs: Iterable[str] = (names.KCTL, names.VM_TOOL),
    ) -> None:
        self.root = root
        self.repo = root / "repo"
        self.stubs = root / "stubs"
        self.home = root / "home"
        self.log = root / "calls.jsonl"
        self.tool = tool
        for directory in (self.repo, self.stubs, self.home):
            directory.mkdir(parents=True)
        for relative, data in files.items():
            path = self.repo / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for program in programs:
            stub = self.stubs / program
            stub.write_text(
                _STUB.format(
                    python=sys.executable,
                    program=program,
                    seconds=STUB_SECONDS,
                    fail_jobs=sorted(fail_jobs),
                    log=str(self.log),
                ),
                encoding="utf-8",
            )
            stub.chmod(0o755)
        self._git("init", "-q", "-b", "main")
        self._git("config", "user.name", "e2e")
        self._git("config", "user.email", "e2e@example.com")
        self._git("add", "-A")
        self._git("commit", "-q", "-m", "rendered ci/ files")
        # A remote like the Deployer project's, so gitlab-ci-local derives the predefined
        # CI_PROJECT_* variables without complaining; nothing is ever fetched from it.
        self._git("remote", "add", "origin", "https://gitlab.example.com/deployer/deployer.git")
        self._git("update-ref", "refs/remotes/origin/main", "HEAD")
        self._git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")

    def _git(self, *args: str) -> None:
        subprocess.run(
            ["git", *args],
            cwd=self.repo,
            check=True,
            capture_output=True,
            env=self._environment(),
        )

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)
        }
        env["PATH"] = f"{self.stubs}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["HOME"] = str(self.home)
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        return env

    def gitlab_ci_local(self, *args: str, timeout: float = 180) -> Run:
        """Run gitlab-ci-local in the repository: shell executor, isolated build dirs."""
        if self.log.exists():
            self.log.unlink()
        full = (
            "--no-color",
            "--home",
            str(self.home),
            "--shell-executor-no-image",
            "--shell-isolation",
            "--ignore-predefined-vars",
            "CI_PIPELINE_SOURCE",
            *args,
        )
        result = subprocess.run(
            [str(self.tool), *full],
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._environment(),
            check=False,
        )
        calls = []
        if self.log.exists():
            for line in self.log.read_text(encoding="utf-8").splitlines():
                data = json.loads(line)
                calls.append(
                    Call(
                        program=data["program"],
                        argv=tuple(data["argv"]),
                        env=data["env"],
                        parent_env=data["parent_env"],
                        start=data["start"],
                        end=data["end"],
                        exit=data["exit"],
                    )
                )
        calls.sort(key=lambda c: c.start)
        return Run(
            tuple(full),
            result.returncode,
            result.stdout,
            result.stdout + result.stderr,
            tuple(calls),
        )

    def pipeline(
        self, path: str, *args: str, variables: Mapping[str, str] = TRIGGER_VARIABLES
    ) -> Run:
        """Run the pipeline of `path` with `variables` as pipeline variables."""
        flags: list[str] = []
        for name, value in variables.items():
            flags += ["--variable", f"{name}={value}"]
        return self.gitlab_ci_local("--file", path, *flags, *args)

    def list_json(self, path: str, *args: str) -> list[dict[str, Any]]:
        run = self.gitlab_ci_local("--file", path, "--list-json", *args)
        assert run.code == 0, run.explain()
        start = run.stdout.index("[")
        jobs: list[dict[str, Any]] = json.JSONDecoder().raw_decode(run.stdout[start:])[0]
        return jobs

    def preview(self, path: str) -> Any:
        """The file as gitlab-ci-local reads it: includes, extends and defaults expanded."""
        run = self.gitlab_ci_local("--file", path, "--preview")
        assert run.code == 0, run.explain()
        return plain_yaml(run.stdout[run.stdout.index("---") :])


def render(source: Path, today: str) -> subprocess.CompletedProcess[str]:
    """`pdmpolicy render` in `source` (environments/, policies/ -> ci/)."""
    return subprocess.run(
        [sys.executable, "-m", "pdmpolicy", "render", "--today", today],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )


def explain_order(source: Path, environment: str, today: str) -> list[str]:
    """The jobs in the order `pdmpolicy explain` lists them."""
    result = subprocess.run(
        [sys.executable, "-m", "pdmpolicy", "explain", environment, "--today", today],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    order = []
    for line in result.stdout.splitlines():
        head, _, rest = line.strip().partition(". ")
        if head.isdigit() and ":" in rest:
            order.append(rest.split(":", 1)[0])
    return order


def ci_files(source: Path) -> dict[str, bytes]:
    """Every rendered file under `source`/ci, by repository path."""
    return {
        path.relative_to(source).as_posix(): path.read_bytes()
        for path in sorted((source / "ci").rglob("*"))
        if path.is_file()
    }


def waits_from_listing(
    listing: Sequence[Mapping[str, Any]], stages: Sequence[str]
) -> dict[str, set[str]]:
    """What each listed job waits for, by GitLab's rules: its `needs`, or else every job of
    an earlier stage."""
    rank = {stage: index for index, stage in enumerate(stages)}
    present = {job["name"] for job in listing}
    waits: dict[str, set[str]] = {}
    for job in listing:
        if "needs" in job:
            waits[job["name"]] = {need["job"] for need in job["needs"] if need["job"] in present}
        else:
            waits[job["name"]] = {
                other["name"] for other in listing if rank[other["stage"]] < rank[job["stage"]]
            }
    return waits


def closure(direct: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Transitive closure of a 'waits for' relation."""
    result: dict[str, frozenset[str]] = {}

    def visit(name: str, trail: frozenset[str]) -> frozenset[str]:
        if name in result:
            return result[name]
        found: set[str] = set()
        for before in direct.get(name, ()):
            if before not in trail:
                found |= {before} | visit(before, trail | {name})
        result[name] = frozenset(found)
        return result[name]

    for name in direct:
        visit(name, frozenset())
    return result
