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

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from pdmpolicy import names

WaitStyle = Literal["input", "command"]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class VmExecutor:
    """The Deployer's VM tooling."""

    command: tuple[str, ...] = (names.VM_TOOL,)
    """A placeholder: teams name their own tooling (an `ansible-playbook` call, a script)."""
    switches: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({names.VM_RUN_VARIABLE: "true"})
    )
    """Variables that, set to these values in a job's environment, make it run PDMs on the
    VMs whatever it calls."""


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Toolchain:
    kubernetes: KubernetesExecutor = field(default_factory=KubernetesExecutor)
    vm: VmExecutor = field(default_factory=VmExecutor)
    rails: Rails = field(default_factory=Rails)
    harmless: tuple[str, ...] = HARMLESS


DEFAULT = Toolchain()
