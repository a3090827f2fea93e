"""Effects: what one command of a job's script does to PDMs, read against a `Toolchain`.

Every command gets one effect, from the most dangerous down:
- an *executor* (`kubernetes`, `vm`, `rails`): it runs PDMs;
- `unknown`: the analysis cannot tell (a command word from a variable, `eval`, `source`, a
  script file it cannot read, a helm/helmfile/kubectl call that can create the migrations
  Job, a program neither in the toolchain nor known to be harmless), or the answer depends on
  pipeline variables (*conditional*: a k-ctl upgrade or a VM tooling call whose switch the
  job leaves to them; pipeline and trigger variables beat job variables);
- `dry-run`: it shows the migrations Job and runs nothing;
- `none`: it cannot run PDMs.

Recognition goes by what a command does, never by a job's name, and errs towards danger: a
classification may be more dangerous than the truth, never less (docs/effects.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.pipeline import Variable
from pdmpolicy.gitlab.shell import _SHELLS, OUTPUT, Command, read_script
from pdmpolicy.policyset.toolchain import KubernetesExecutor, Toolchain, match_words

KUBERNETES = "kubernetes"
VM = "vm"
RAILS = "rails"
DECLARED = "declared"
"""The executor kind of a job declared `effect: executor` whose script shows no known one."""
DRY_RUN = "dry-run"
NONE = "none"
UNKNOWN = "unknown"

EXECUTOR_KINDS = (KUBERNETES, VM, RAILS, DECLARED)
DECLARABLE = ("none", "dry-run", "executor")
"""What a `runner: generic` job may declare with `effect:`."""

_DANGER = {NONE: 0, DRY_RUN: 1, UNKNOWN: 2, DECLARED: 3, RAILS: 4, VM: 5, KUBERNETES: 6}
"""Executors outrank everything else; among them the order only decides which kind a job
that does several is shown as (Kubernetes first, as the rollout steps count it)."""

MAX_SCRIPT_DEPTH = 4
"""Script files calling script files: deeper than this, the innermost call is unknown."""
MAX_SCRIPT_BYTES = 256 * 1024
MAX_SCRIPT_FILES = 64
"""Script file calls read for one job, all depths together: a bound against a file that
calls another many times at every depth (past it, a call is unknown)."""

CHART_TOOLS: Mapping[str, frozenset[str]] = {
    "kubectl": frozenset(
        {
            "get", "describe", "logs", "wait", "version", "config", "explain", "top",
            "api-resources", "api-versions", "cluster-info", "auth",
        }
    ),
    "helm": frozenset(
        {
            "list", "ls", "status", "get", "history", "version", "repo", "search", "show",
            "lint", "template", "diff", "dependency", "dep", "pull", "env",
        }
    ),
    "helmfile": frozenset(
        {"diff", "template", "lint", "list", "status", "build", "deps", "repos", "version"}
    ),
}  # fmt: skip
"""Programs that talk to a cluster, with the subcommands known to create nothing. Any other
subcommand is unknown; those below are named as able to create the migrations Job."""
JOB_CREATING = frozenset({"apply", "upgrade", "install", "sync", "create", "replace", "run"})
_CHART_OPTIONS_WITH_VALUE = frozenset(
    {
        "-n", "--namespace", "--context", "--kube-context", "--kubeconfig", "-f", "--file",
        "-e", "--environment", "-l", "--selector", "--cluster", "--user", "-s", "--server",
    }
)  # fmt: skip

_FUNCTION = re.compile(
    r"(?:^|[^\w.:-])(?:function\s+([A-Za-z_][\w.:-]*)|([A-Za-z_][\w.:-]*)\s*\(\s*\))"
)


def dynamic(word: str) -> bool:
    """True when the shell computes the word at run time (a variable or a substitution)."""
    return "$" in word or OUTPUT in word


@dataclass(frozen=True)
class KctlCall:
    """A k-ctl command line, read back from a script."""

    environment: str | None
    stage: str
    action: str | None
    dry_run: bool
    command: Command
    waits: bool = False
    """It is made to wait for the migrations Job (the toolchain's wait input or command)."""
    applies: bool = False
    """The action is one of the toolchain's apply actions (`upgrade`, `install`)."""

    @property
    def runs_for_real(self) -> bool:
        """An apply action without dry run: it creates the migrations Job when told to."""
        return self.applies and not self.dry_run


def parse_kctl(command: Command, arguments: Sequence[str] | None = None,
               kubernetes: KubernetesExecutor | None = None) -> KctlCall:  # fmt: skip
    """The environment, stage, action and dry run of a k-ctl call (`arguments`: the words
    after the toolchain's command, default the command's arguments)."""
    tool = kubernetes or KubernetesExecutor()
    # One reading of the flags for render and analysis: a flag that starts another (`--d`
    # and `--dry-run`) must not take the other for itself with a joined value.
    call = tool.read_arguments(command.args if arguments is None else arguments)
    environment, stage, action, dry_run = call.environment, call.stage, call.action, call.dry_run
    applies = action in tool.apply_actions
    return KctlCall(environment, stage, action, dry_run, command, applies=applies)


@dataclass(frozen=True)
class CommandEffect:
    """What one command does to PDMs, and why the analysis thinks so."""

    effect: str
    command: Command
    why: str
    conditional: bool = False
    """Unknown because pipeline variables decide (a switch the job leaves to them)."""
    kctl: KctlCall | None = None
    via: tuple[str, ...] = ()
    """Script files the command was found in, outermost first (empty: the job's script)."""

    @property
    def danger(self) -> int:
        return _DANGER[self.effect]

    @property
    def is_executor(self) -> bool:
        return self.effect in EXECUTOR_KINDS

    def shown(self) -> str:
        """The command as the finding quotes it: the line, and the script file it is in."""
        where = f" (in {' → '.join(self.via)})" if self.via else ""
        return f"`{self.command.text.strip()}`{where}"


class Reach:
    """Where the value of a variable in a process's environment comes from."""

    SCRIPT = "script"
    """Set, or removed, by the script itself: nothing outside the job changes it."""
    JOB = "job"
    """Job (or inherited top-level) variables: a pipeline or trigger variable beats them."""
    UNSET = "unset"
    """Not set by the job: pipeline and trigger variables decide."""


def reaching(
    command: Command, variables: Mapping[str, Variable], name: str
) -> tuple[str | None, str]:
    """(value, Reach) of `name` in the environment of `command`; value None when absent."""
    if name in command.assigned:
        return command.assigned[name], Reach.SCRIPT
    if name in command.stripped or command.clean_environment:
        return None, Reach.SCRIPT
    variable = variables.get(name)
    if variable is not None:
        return variable.value, Reach.JOB
    return None, Reach.UNSET


def _prefix_rest(command: Command, words: Sequence[str]) -> tuple[str, ...] | None:
    """The arguments after the toolchain's command `words`, or None when it is not a call
    of it. The first word matches by base name (`./bin/k-ctl` is `k-ctl`); a command of one
    word is also recognised by the base name of its last word."""
    if not words:
        return None
    size = len(words)
    program = command.program
    if program == _base_name(words[0]) and (size == 1 or _same_words(words[1:], command.args)):
        return command.args[size - 1 :]
    if size > 1 and program == _base_name(words[-1]):
        return command.args
    return None


def _same_words(template: Sequence[str], args: Sequence[str]) -> bool:
    """Whether `args` start with the toolchain's words, placeholders (`{environment}`)
    matching any value: `-i inventory/{environment}` is `-i inventory/gstg`."""
    head = tuple(args[: len(template)])
    if head == tuple(template):
        return True
    return any("{" in word for word in template) and match_words(template, head) is not None


@lru_cache(maxsize=256)
def _base_name(word: str) -> str:
    """`./bin/k-ctl` -> `k-ctl`: every command of a script is held to the same few words."""
    return word.rsplit("/", 1)[-1]


def _subsequence(pattern: Sequence[re.Pattern[str]], words: Sequence[str]) -> bool:
    position = 0
    for word in words:
        if position < len(pattern) and pattern[position].fullmatch(word):
            position += 1
    return position == len(pattern)


def is_wait_command(command: Command, toolchain: Toolchain) -> bool:
    """A call of the toolchain's "wait for the migrations Job" command (style `command`):
    its words appear in order, placeholders matching any value."""
    wait = toolchain.kubernetes.wait
    if wait.style != "command" or not wait.command:
        return False
    first, *rest = wait.command
    if command.program != first.rsplit("/", 1)[-1]:
        return False
    # Placeholders as the toolchain reads them: any of them matches any text, `{{` and `}}`
    # are one brace (`{database}.yml`, `--for=jsonpath={{.status.succeeded}}=1`).
    position = 0
    for word in command.args:
        if position < len(rest) and match_words(rest[position : position + 1], (word,)) is not None:
            position += 1
    return position == len(rest)


ScriptReader = Callable[[str], "tuple[str, str] | str"]
"""Reads a script file named in a script: (repository path, text), or why it cannot."""


def file_reader(root: Path | None) -> ScriptReader:
    """Script files inside the repository at `root`; none at all without a root.

    Each word is read once per reader: one analysis of a pipeline (whose jobs call the same
    script files again and again) sees one state of the files, and the next analysis makes
    a new reader, so a file changed between two analyses is read again."""
    base: Path | None = None
    seen: dict[str, tuple[str, str] | str] = {}

    def read(word: str) -> tuple[str, str] | str:
        if word not in seen:
            seen[word] = _read(word)
        return seen[word]

    def _read(word: str) -> tuple[str, str] | str:
        nonlocal base
        if root is None:
            return f"{word} is a script file, and no repository was given to read it from"
        if word.startswith("/") or word.startswith("~"):
            return f"{word} is outside the repository"
        if base is None:
            base = root.resolve()
        try:
            path = (base / word).resolve()
            relative = path.relative_to(base).as_posix()
        except (ValueError, OSError):
            return f"{word} is outside the repository"
        if not path.is_file():
            return f"{word} is not a file in the repository"
        try:
            raw = path.read_bytes()[: MAX_SCRIPT_BYTES + 1]
        except OSError as exc:
            return f"{word} cannot be read ({exc.strerror})"
        if len(raw) > MAX_SCRIPT_BYTES:
            return f"{word} is larger than {MAX_SCRIPT_BYTES // 1024} KiB"
        try:
            return relative, raw.decode("utf-8")
        except UnicodeDecodeError:
            return f"{word} is not UTF-8 text"

    return read


@dataclass
class Classifier:
    """Classifies the commands of one job's script."""

    toolchain: Toolchain
    variables: Mapping[str, Variable]
    read_file: ScriptReader
    functions: frozenset[str] = frozenset()
    budget: list[int] = field(default_factory=lambda: [MAX_SCRIPT_FILES])
    """Script file calls left to read for this job, shared with nested classifiers."""

    def job(self, commands: Sequence[Command]) -> list[CommandEffect]:
        return self._all(commands, (), 0)

    def _all(
        self, commands: Sequence[Command], via: tuple[str, ...], depth: int
    ) -> list[CommandEffect]:
        found: list[CommandEffect] = []
        for command in commands:
            found.extend(self._command(command, via, depth))
        return found

    def _command(self, command: Command, via: tuple[str, ...], depth: int) -> list[CommandEffect]:
        tool = self.toolchain
        effect = self._kctl(command)
        if effect is not None and effect.is_executor:
            return [replace(effect, via=via)]
        for name, value in sorted(tool.vm.switches.items()):
            if reaching(command, self.variables, name)[0] == value:
                why = f"{name}={value} reaches it: the VM tooling runs PDMs whatever is called"
                return [CommandEffect(VM, command, why, via=via)]
        if effect is None:
            effect = self._recognised(command)
        if effect is None:
            inner = self._script_file(command, via, depth)
            if isinstance(inner, list):
                return inner
            effect = inner or self._other(command)
        # Most commands are in the job's own script (no via): nothing to replace.
        return [effect if effect.via == via else replace(effect, via=via)]

    # --- k-ctl ---------------------------------------------------------------------------

    def _kctl(self, command: Command) -> CommandEffect | None:
        kubernetes = self.toolchain.kubernetes
        rest = _prefix_rest(command, kubernetes.command)
        if rest is None:
            return None
        call = parse_kctl(command, rest, kubernetes)
        name = " ".join(kubernetes.command)
        values = (call.environment, call.stage)
        computed = any(dynamic(word) for word in rest if word not in values)
        if call.dry_run:
            # k-ctl's dry run shows what any action would do and applies nothing.
            why = f"{name} {kubernetes.dry_run_flag} is a dry run"
            return CommandEffect(DRY_RUN, command, why, kctl=call)
        if call.applies or computed:
            # An action or option computed at run time may be an apply: only the skip value,
            # which decides whether PDMs run at all, can clear it.
            return self._kctl_apply(command, call, name, computed)
        if call.action is None:
            return CommandEffect(UNKNOWN, command, f"{name} is called without an action", kctl=call)
        if call.action in kubernetes.show_actions:
            why = f"{name} {call.action} only shows manifests"
            return CommandEffect(DRY_RUN, command, why, kctl=call)
        if call.action in kubernetes.harmless_actions:
            return CommandEffect(NONE, command, f"{name} {call.action} changes nothing", kctl=call)
        why = f"{name} action {call.action!r} is not in the toolchain"
        return CommandEffect(UNKNOWN, command, why, kctl=call)

    def _kctl_apply(
        self, command: Command, call: KctlCall, name: str, computed: bool
    ) -> CommandEffect:
        kubernetes = self.toolchain.kubernetes
        skip = kubernetes.skip_variable
        run = kubernetes.run_value
        value, reach = reaching(command, self.variables, skip)
        if computed:
            name = f"{name} (with arguments computed at run time)"
        if value == run:
            how = "on its command line" if reach == Reach.SCRIPT else "in job variables"
            why = f"{name} {call.action} with {skip}={run} {how} runs PDMs"
            return CommandEffect(KUBERNETES, command, why, kctl=call)
        if reach == Reach.SCRIPT and value is not None and not dynamic(value):
            why = f"{name} {call.action} is told {skip}={value!r}: it runs no PDMs"
            return CommandEffect(NONE, command, why, kctl=call)
        if reach == Reach.SCRIPT and value is None:
            why = f"{name} {call.action} runs with {skip} removed: it runs no PDMs"
            return CommandEffect(NONE, command, why, kctl=call)
        if reach == Reach.SCRIPT:
            why = f"{skip} is computed at run time ({value}): {name} {call.action} may run PDMs"
        elif reach == Reach.JOB:
            why = (
                f"{skip} is {value!r} only in job variables, which a pipeline or trigger "
                f'variable beats: {name} {call.action} runs PDMs when one says "{run}"'
            )
        else:
            why = (
                f"{name} {call.action} leaves {skip} to pipeline variables: it runs PDMs when "
                f'a pipeline or trigger variable says "{run}"'
            )
        return CommandEffect(UNKNOWN, command, why, conditional=True, kctl=call)

    # --- the VM tooling, Rails, cluster tools ----------------------------------------------

    def _recognised(self, command: Command) -> CommandEffect | None:
        tool = self.toolchain
        if is_wait_command(command, tool):
            return CommandEffect(NONE, command, "waits for the migrations Job")
        if _prefix_rest(command, tool.vm.command) is not None:
            return self._vm(command)
        for words in tool.rails.migrate_commands:
            rest = _prefix_rest(command, words[:1])
            if rest is not None and _subsequence(
                [re.compile(re.escape(w)) for w in words[1:]], rest
            ):
                return self._rails(command, " ".join(words))
        if command.program in CHART_TOOLS:
            return self._chart_tool(command)
        return None

    def _vm(self, command: Command) -> CommandEffect:
        switches = sorted(self.toolchain.vm.switches.items())
        fixed = [reaching(command, self.variables, name) for name, _ in switches]
        if all(reach == Reach.SCRIPT and not dynamic(value or "") for value, reach in fixed):
            return CommandEffect(NONE, command, "the VM tooling, with its PDM switches off")
        names = ", ".join(f"{name}={value}" for name, value in switches)
        why = (
            f"the VM tooling runs PDMs when {names} reaches it, which the job leaves to "
            "pipeline variables (they beat job variables)"
        )
        return CommandEffect(UNKNOWN, command, why, conditional=True)

    def _rails(self, command: Command, spelled: str) -> CommandEffect:
        skip = self.toolchain.rails.skip_variable
        value, _ = reaching(command, self.variables, skip)
        if value is not None:
            return CommandEffect(NONE, command, f"{spelled} with {skip} present skips PDMs")
        return CommandEffect(RAILS, command, f"{spelled} without {skip} runs PDMs")

    def _chart_tool(self, command: Command) -> CommandEffect:
        program = command.program
        words = [w for w in command.args if not w.startswith("-")]
        creating = sorted(JOB_CREATING.intersection(words))
        if creating:
            why = f"{program} {creating[0]} can create the migrations Job"
            return CommandEffect(UNKNOWN, command, why)
        subcommand = _subcommand(command.args)
        if subcommand is not None and dynamic(subcommand):
            why = f"{program}'s subcommand is computed at run time ({subcommand})"
            return CommandEffect(UNKNOWN, command, why)
        # A read-only subcommand stays one whatever its other arguments (`kubectl logs $POD`).
        if subcommand in CHART_TOOLS[program]:
            return CommandEffect(NONE, command, f"{program} {subcommand} creates nothing")
        why = f"{program} {subcommand or '(no subcommand)'} is not known to be harmless"
        return CommandEffect(UNKNOWN, command, why)

    # --- script files ------------------------------------------------------------------------

    def _script_file(
        self, command: Command, via: tuple[str, ...], depth: int
    ) -> list[CommandEffect] | CommandEffect | None:
        word = command.word or command.program
        if command.program in _SHELLS:
            operands = _shell_operands(command.args)
            if not operands:
                why = f"{command.program} reads its commands from standard input"
                return CommandEffect(UNKNOWN, command, why)
            word = operands[0]
        elif "/" not in word or dynamic(word):
            return None
        if dynamic(word):
            return CommandEffect(UNKNOWN, command, f"the script file {word} is named at run time")
        if depth >= MAX_SCRIPT_DEPTH:
            why = f"{word} is nested more than {MAX_SCRIPT_DEPTH} script files deep"
            return CommandEffect(UNKNOWN, command, why)
        if self.budget[0] <= 0:
            why = f"{word} is one script file call more than the {MAX_SCRIPT_FILES} read per job"
            return CommandEffect(UNKNOWN, command, why)
        self.budget[0] -= 1
        found = self.read_file(word)
        if isinstance(found, str):
            return CommandEffect(UNKNOWN, command, found)
        path, text = found
        interpreter = _interpreter(text)
        if interpreter is not None and interpreter not in _SHELLS:
            why = f"{path} is a {interpreter} program, not a shell script"
            return CommandEffect(UNKNOWN, command, why)
        inner, errors = read_script([(text, Loc(path))])
        if errors:
            return CommandEffect(UNKNOWN, command, f"the shell cannot read {path}: {errors[0][1]}")
        functions = self.functions | _functions([text])
        nested = Classifier(self.toolchain, self.variables, self.read_file, functions, self.budget)
        effects = nested._all([_within(command, c) for c in inner], (*via, path), depth + 1)
        if not effects:
            return CommandEffect(NONE, command, f"{path} runs nothing")
        return effects

    def _other(self, command: Command) -> CommandEffect:
        program = command.program
        word = command.word or program
        if dynamic(word):
            return CommandEffect(
                UNKNOWN, command, f"the command word {word} is computed at run time"
            )
        if program == "eval":
            return CommandEffect(UNKNOWN, command, "eval runs a string built at run time")
        if program in ("source", "."):
            return CommandEffect(UNKNOWN, command, f"{program} runs a file inside this shell")
        if program in self.toolchain.harmless:
            return CommandEffect(NONE, command, f"{program} is known to be harmless")
        if program in self.functions:
            return CommandEffect(NONE, command, f"{program} is a function of the script")
        why = f"{program} is not in the toolchain and not known to be harmless"
        return CommandEffect(UNKNOWN, command, why)


def _interpreter(text: str) -> str | None:
    """The program a `#!` line names (`#!/usr/bin/env python3` -> python3); None without."""
    if not text.startswith("#!"):
        return None
    words = text[2:].split("\n", 1)[0].split()
    while words and (words[0].rsplit("/", 1)[-1] == "env" or words[0].startswith("-")):
        words = words[1:]
    return words[0].rsplit("/", 1)[-1] if words else None


def _subcommand(args: Sequence[str]) -> str | None:
    index = 0
    while index < len(args):
        word = args[index]
        if word in _CHART_OPTIONS_WITH_VALUE:
            index += 2
            continue
        if not word.startswith("-"):
            return word
        index += 1
    return None


def _shell_operands(args: Sequence[str]) -> list[str]:
    """The operands of `sh [options] file args`: [] when it reads standard input."""
    index = 0
    while index < len(args):
        word = args[index]
        if word in ("-o", "+o"):
            index += 2
            continue
        if word == "--":
            return list(args[index + 1 :])
        if word.startswith("--") or (len(word) > 1 and word[0] in "-+"):
            if "s" in word[1:] and not word.startswith("--"):
                return []  # `sh -s`: the script comes from standard input
            index += 1
            continue
        return list(args[index:])
    return []


def _within(outer: Command, inner: Command) -> Command:
    """A command of a script file, in the environment the calling command gave the file."""
    if inner.clean_environment:
        return inner
    assigned = {**outer.assigned, **inner.assigned}
    for name in inner.stripped:
        assigned.pop(name, None)
    stripped = (outer.stripped - inner.assigned.keys()) | inner.stripped
    return replace(
        inner,
        assigned=assigned,
        stripped=frozenset(stripped),
        clean_environment=outer.clean_environment,
    )


def _functions(texts: Sequence[str]) -> frozenset[str]:
    """Names of the shell functions the script defines (their bodies are read as commands
    where they are written, so a call of one adds nothing)."""
    found: set[str] = set()
    for text in texts:
        for match in _FUNCTION.finditer(text):
            found.add(match.group(1) or match.group(2))
    return frozenset(found)


def script_functions(lines: Sequence[str]) -> frozenset[str]:
    return _functions(lines)


def worst(effects: Sequence[CommandEffect]) -> CommandEffect | None:
    """The most dangerous effect, the first of equals (script order)."""
    best: CommandEffect | None = None
    for effect in effects:
        if best is None or effect.danger > best.danger:
            best = effect
    return best
