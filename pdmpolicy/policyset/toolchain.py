"""The toolchain: how a team's tools are called, read by the renderer and the effect analysis.

One definition, so that what `render` emits and what the analysis recognises cannot drift
apart: the Kubernetes executor (k-ctl, its flags, how it is made to wait for the migrations
Job), the VM executor (its command and the variables that switch PDMs on), the Rails commands
that run migrations, and the programs known to be harmless. `DEFAULT` holds the built-in
values; a policy set's `toolchain:` section overrides them (docs/toolchain.md).

Status of the defaults (public evidence, docs/toolchain.md has the sources): `k-ctl` with
`-e`/`-s`/`-D` and the actions is the existing interface of k8s-workloads' `bin/k-ctl`;
`WAIT_FOR_JOBS=true` is a *proposed* k-ctl input (k-ctl does not wait for Jobs today); the VM
command `deploy-vms` is a placeholder for the Deployer's own tooling (Ansible playbooks),
which a team replaces; `RUN_POST_DEPLOY_MIGRATIONS` is the Deployer's real switch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import field
from types import MappingProxyType
from typing import Literal

from pdmpolicy.core import names
from pdmpolicy.core.records import record

WaitStyle = Literal["input", "command"]
WAIT_STYLES: tuple[WaitStyle, ...] = ("input", "command")

PLACEHOLDERS = ("database", "environment", "stage", "timeout")
"""What a command word may hold as `{name}`, filled in per job when rendering: the
environment's name and database, k-ctl's stage (`main`, `cny`), the job's timeout in
seconds. `{{` and `}}` write a literal brace (`--for=jsonpath={{.status.succeeded}}=1`). Any
other `{...}` is refused when the toolchain is read."""
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _parts(word: str) -> list[tuple[str, bool]]:
    """`word` as (text, is_placeholder) parts: literal text (escaped braces undone) and the
    names of `{placeholders}`. An unknown name is kept as literal `{name}` text."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in _TOKEN.finditer(word):
        parts.append((word[position : match.start()], False))
        name = match.group(1)
        if name is None:
            parts.append((match.group(0)[0], False))
        elif name in PLACEHOLDERS:
            parts.append((name, True))
        else:
            parts.append((match.group(0), False))
        position = match.end()
    parts.append((word[position:], False))
    return [part for part in parts if part[0] or part[1]]


def unknown_placeholders(word: str) -> list[str]:
    """The `{...}` parts of `word` that are not PLACEHOLDERS."""
    return [
        name
        for name in (m.group(1) for m in _TOKEN.finditer(word))
        if name is not None and name not in PLACEHOLDERS
    ]


def expand(words: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """`words` with each `{name}` replaced by `values[name]` and `{{`/`}}` by one brace (one
    pass: a value that holds braces is not expanded again)."""
    return tuple(
        "".join(
            values.get(text, "{" + text + "}") if placeholder else text
            for text, placeholder in _parts(word)
        )
        for word in words
    )


def _base_name(program: str) -> str:
    return program.rsplit("/", 1)[-1]


def match_words(template: Sequence[str], words: Sequence[str]) -> dict[str, str] | None:
    """The placeholder values under which `template` expands to exactly `words`, or None.

    For recognition: a rendered `ansible-playbook -i inventory/gstg post-migrations.yml`
    matches `ansible-playbook -i inventory/{environment} post-migrations.yml` with
    environment "gstg". A placeholder used twice must take one value.
    """
    if len(template) != len(words):
        return None
    found: dict[str, str] = {}
    for pattern, word in zip(template, words, strict=True):
        regex = ""
        named: set[str] = set()
        for text, placeholder in _parts(pattern):
            if not placeholder:
                regex += re.escape(text)
            elif text in named:
                regex += f"(?P={text})"
            else:
                regex += f"(?P<{text}>.+?)"
                named.add(text)
        matched = re.fullmatch(regex, word, re.DOTALL)
        if matched is None:
            return None
        for name, value in matched.groupdict().items():
            if found.setdefault(name, value) != value:
                return None
    return found


@record
class WaitForMigrations:
    """How a Kubernetes executor is made to end only when the migrations Job has finished.

    `input`: a variable given to the executor's own process (`variable=value k-ctl ...`).
    `command`: a command run after the executor in the same job (`kubectl wait ...`); its
    words may hold `{environment}`, `{stage}` and `{timeout}` (the job's timeout in seconds).
    """

    style: WaitStyle = "input"
    variable: str = "WAIT_FOR_JOBS"
    value: str = "true"
    command: tuple[str, ...] = (
        "kubectl",
        "wait",
        "--for=condition=complete",
        "--timeout={timeout}s",
        "job",
        "-l",
        "app=migrations",
    )
    default_timeout: int = 3600
    """`{timeout}` for a job that sets no timeout of its own: GitLab's default job timeout
    (one hour), which is also the chart's `activeDeadlineSeconds` for the migrations Job."""

    def assignment(self) -> str:
        """`WAIT_FOR_JOBS=true`: the word that asks the executor to wait (style input)."""
        return f"{self.variable}={self.value}"

    def step(self, values: Mapping[str, str]) -> tuple[str, ...]:
        """The words of the wait command of one job (style command)."""
        return expand(self.command, values)

    def waits(self, assigned: Mapping[str, str], later: Sequence[Sequence[str]]) -> bool:
        """Whether an executor call waits for the migrations Job: given what the script
        assigns for the call, and the commands the job runs after it (each as the program's
        base name, then its arguments)."""
        if self.style == "input":
            return assigned.get(self.variable) == self.value
        program, *arguments = self.command
        template = (_base_name(program), *arguments)
        return any(
            match_words(template, (_base_name(words[0]), *words[1:])) is not None
            for words in later
            if words
        )


@record
class KubernetesExecutor:
    """k-ctl: `k-ctl -e ENV [-s STAGE] [-D] ACTION`."""

    command: tuple[str, ...] = (names.KCTL,)
    """The words that call it; recognised by the last word's base name too (`bin/k-ctl`)."""
    environment_flag: str = "-e"
    stage_flag: str = "-s"
    dry_run_flag: str = "-D"
    apply_actions: tuple[str, ...] = ("upgrade", "install")
    """Actions that apply the chart: they create the migrations Job unless a dry run."""
    show_actions: tuple[str, ...] = ("template",)
    """Actions that only print manifests: a dry run."""
    harmless_actions: tuple[str, ...] = ("list",)
    skip_variable: str = names.SKIP_VARIABLE
    """k-ctl runs PDMs only when this is given as `run_value` (the seed's premise)."""
    run_value: str = "false"
    wait: WaitForMigrations = field(default_factory=WaitForMigrations)

    def call_words(
        self,
        environment: str,
        stage: str,
        dry_run: bool,
        action: str,
        values: Mapping[str, str] | None = None,
    ) -> tuple[str, ...]:
        """`k-ctl -e ENV [-s STAGE] [-D] ACTION`, with this toolchain's command and flags.
        The stage flag is left out for the main stage, as k-ctl's own default."""
        words = [*expand(self.command, values or {}), self.environment_flag, environment]
        if stage != "main":
            words += [self.stage_flag, stage]
        if dry_run:
            words.append(self.dry_run_flag)
        words.append(action)
        return tuple(words)

    def read_call(self, words: Sequence[str]) -> KubernetesCall | None:
        """The call's environment, stage, dry run and action, if `words` start with this
        executor's command (placeholders match anything); None when they do not."""
        size = len(self.command)
        if match_words(self.command, words[:size]) is None:
            return None
        return self.read_arguments(words[size:])

    def read_arguments(self, arguments: Sequence[str]) -> KubernetesCall:
        """The environment, stage, dry run and action given by the words after the command.
        A flag's value is the next word, or joined to the flag: `-egstg` for a flag of two
        characters, `--environment=gstg` for a long one (`--dry` is not `--d` with value `ry`)."""
        environment: str | None = None
        stage = "main"
        dry_run = False
        action: str | None = None
        valued = {self.environment_flag: "environment", self.stage_flag: "stage"}
        rest = list(arguments)
        index = 0
        while index < len(rest):
            word = rest[index]
            index += 1
            setting: tuple[str, str] | None = None
            if word == self.dry_run_flag:
                dry_run = True
            elif word in valued:
                if index < len(rest):  # a flag at the very end sets nothing
                    setting = (valued[word], rest[index])
                    index += 1
            elif (joined := _joined_flag(word, valued)) is not None:
                setting = joined
            elif not word.startswith("-") and action is None:
                action = word
            if setting is not None and setting[0] == "environment":
                environment = setting[1]
            elif setting is not None:
                stage = setting[1]
        return KubernetesCall(environment, stage, dry_run, action)


def _joined_flag(word: str, valued: Mapping[str, str]) -> tuple[str, str] | None:
    """`-egstg` for `-e gstg`, `--environment=gstg` for `--environment gstg`."""
    for flag, key in valued.items():
        if flag.startswith("--") and word.startswith(flag + "="):
            return key, word[len(flag) + 1 :]
        if len(flag) == 2 and word.startswith(flag) and len(word) > 2:
            return key, word[2:]
    return None


@record
class KubernetesCall:
    """A Kubernetes executor's command line, read back by `KubernetesExecutor.read_call`."""

    environment: str | None
    stage: str
    dry_run: bool
    action: str | None


@record
class VmExecutor:
    """The Deployer's VM tooling."""

    command: tuple[str, ...] = (names.VM_TOOL,)
    """A placeholder: teams name their own tooling (an `ansible-playbook` call, a script)."""
    switches: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({names.VM_RUN_VARIABLE: "true"})
    )
    """Variables that, set to these values in a job's environment, make it run PDMs on the
    VMs whatever it calls."""

    def call_words(self, values: Mapping[str, str]) -> tuple[str, ...]:
        return expand(self.command, values)

    def is_call(self, words: Sequence[str]) -> bool:
        """Whether `words` are this tooling's command (placeholders match anything)."""
        return match_words(self.command, words) is not None


@record
class Rails:
    """Rails runs PDMs on these commands unless `skip_variable` is present (any value)."""

    migrate_commands: tuple[tuple[str, ...], ...] = (
        ("gitlab-rake", "db:migrate"),
        ("gitlab-rails", "db:migrate"),
        ("bundle", "exec", "rake", "db:migrate"),
        ("bundle", "exec", "rails", "db:migrate"),
        ("rake", "db:migrate"),
        ("rails", "db:migrate"),
        ("gitlab-ctl", "reconfigure"),
    )
    skip_variable: str = names.SKIP_VARIABLE


HARMLESS: tuple[str, ...] = (
    ":", "[", "basename", "cat", "cd", "chmod", "cp", "cut", "date", "dirname", "echo",
    "exit", "export", "false", "grep", "head", "jq", "ls", "mkdir", "mv", "printf",
    "pwd", "read", "rm", "sed", "set", "sleep", "sort", "tail", "tee", "test", "touch", "tr",
    "true", "uname", "unset", "wc", "yq",
)  # fmt: skip
"""Programs that cannot run PDMs whatever their arguments (no program of these runs another)."""


@record
class Toolchain:
    kubernetes: KubernetesExecutor = field(default_factory=KubernetesExecutor)
    vm: VmExecutor = field(default_factory=VmExecutor)
    rails: Rails = field(default_factory=Rails)
    harmless: tuple[str, ...] = HARMLESS


DEFAULT = Toolchain()
