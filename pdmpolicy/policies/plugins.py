"""Policies from other packages: the entry point group `pdmpolicy.policies`.

A package declares `[project.entry-points."pdmpolicy.policies"] NAME = "module:Class"`; the
class subclasses `Policy` exactly as a built-in does (docs/plugins.md). Everything a built-in
is held to at test time is checked here at load time, because a plugin has no test suite of
ours: the name, the documentation sections, the severity, the layers, the options. A plugin
that fails any of it is a `PluginError` that names the entry point and its package, never a
traceback and never a silently missing policy.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pdmpolicy.core.errors import UsageError
from pdmpolicy.core.records import record
from pdmpolicy.policies.base import Documentation, Option, Policy

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "pdmpolicy.policies"
BUILTIN = "built-in"
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LAYERS = frozenset({"environments", "pipelines", "manifests"})
_SEVERITIES = ("error", "warning", "off")
_OPTION_KINDS = ("duration", "count", "text")


class PluginError(UsageError):
    """One or more installed plugins cannot be used (exit 2); every problem, one a line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listing = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(
            f"{len(problems)} broken policy plugin(s) (entry point group '{GROUP}'):\n{listing}"
            "\n  hint: fix or uninstall the package named above"
        )


def _may_declare_plugins() -> bool:
    """False only when no installed distribution can declare an entry point in `GROUP`.

    Importing importlib.metadata costs a quarter of a `check` run's start-up (the email
    package, zipfile, csv), and almost no installation has a plugin. This looks where
    importlib.metadata would look (each `*.dist-info` and `*.egg-info` directory of each
    `sys.path` directory, case-insensitively) for an `entry_points.txt` naming the group at
    all; importlib.metadata then reads it properly. Anything this scan does not understand
    (a zip archive or an egg on `sys.path`, an import hook that finds distributions of its
    own) answers True, so the scan can only skip work, never a plugin.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None):
            return True
    for entry in sys.path:
        folder = Path(entry or ".")
        if folder.name.lower().endswith(".egg"):
            return True
        try:
            names = list(folder.iterdir())
        except NotADirectoryError:
            return True
        except OSError:
            continue  # a missing directory holds no distribution
        for name in names:
            if not name.name.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                if GROUP.encode() in (name / "entry_points.txt").read_bytes():
                    return True
            except FileNotFoundError:
                continue
            except OSError:  # unreadable, or an egg-info file: ask importlib.metadata
                return True
    return False


def _entry_points() -> list[EntryPoint]:
    """The installed entry points of `GROUP`, by name."""
    if not _may_declare_plugins():
        return []
    from importlib.metadata import entry_points

    return sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value))


def _origin(entry: EntryPoint) -> str:
    dist = entry.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
    return f"plugin {package} ({entry.name} = {entry.value})"


def _documentation_problems(policy: Policy) -> Iterator[str]:
    doc = getattr(policy, "documentation", None)
    if not isinstance(doc, Documentation):
        yield "has no `documentation = Documentation(...)`"
        return
    for section in ("what", "why", "fix"):
        text = getattr(doc, section)
        if not isinstance(text, str) or not text.strip():
            yield f"documentation section '{section}' is empty"
    for section in ("failing_example", "fixed_example"):
        files = getattr(doc, section)
        if not isinstance(files, Mapping) or not files:
            yield f"documentation section '{section}' holds no file"
        elif not all(isinstance(t, str) and t.strip() for t in files.values()):
            yield f"documentation section '{section}' has an empty file"


def policy_problems(policy: Policy) -> list[str]:
    """What keeps `policy` from standing beside the built-ins; empty when nothing does."""
    problems = []
    if not isinstance(policy.name, str) or not _NAME.fullmatch(policy.name):
        problems.append(f"name {policy.name!r} is not kebab-case (such as 'team-rule')")
    if not isinstance(policy.summary, str) or not policy.summary.strip():
        problems.append("summary is empty")
    if policy.default_severity not in _SEVERITIES:
        problems.append(
            f"default_severity {policy.default_severity!r} is not one of {', '.join(_SEVERITIES)}"
        )
    layers = policy.layers
    if not isinstance(layers, frozenset | set) or not layers or not layers <= _LAYERS:
        valid = ", ".join(sorted(_LAYERS))
        problems.append(f"layers {layers!r} must be a non-empty set of {valid}")
    for option in policy.options:
        if not isinstance(option, Option) or option.kind not in _OPTION_KINDS:
            problems.append(f"option {option!r} is not an Option of kind duration, count or text")
    if type(policy).check is Policy.check:
        problems.append("does not implement check(context)")
    problems.extend(_documentation_problems(policy))
    return problems


def _load(entry: EntryPoint) -> tuple[Policy | None, list[str]]:
    origin = _origin(entry)
    try:
        loaded = entry.load()
    except Exception as exc:  # a plugin's import can fail in any way; say whose it was
        return None, [f"{origin}: cannot be imported: {type(exc).__name__}: {exc}"]
    if isinstance(loaded, type) and issubclass(loaded, Policy):
        try:
            policy = loaded()
        except Exception as exc:
            return None, [f"{origin}: {loaded.__name__}() failed: {type(exc).__name__}: {exc}"]
    elif isinstance(loaded, Policy):
        policy = loaded
    else:
        return None, [
            f"{origin}: is {type(loaded).__name__} {loaded!r}, not a subclass of "
            "pdmpolicy.policies.base.Policy"
        ]
    problems = [f"{origin}: {problem}" for problem in policy_problems(policy)]
    if not problems and policy.name != entry.name:
        problems.append(
            f"{origin}: the entry point is named '{entry.name}' but the policy '{policy.name}'"
        )
    return policy, problems


@record
class _Loaded:
    policies: Mapping[str, Policy]
    origins: Mapping[str, str]


class Registry(Mapping[str, Policy]):
    """The built-ins and the installed plugins' policies, by name; plugins load on first use
    (so a command that never reads a policy never imports a plugin)."""

    def __init__(self, builtins: Mapping[str, Policy]) -> None:
        self._builtins = builtins
        self._loaded: _Loaded | None = None

    def _plugins(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        policies = dict(self._builtins)
        origins = dict.fromkeys(self._builtins, BUILTIN)
        problems: list[str] = []
        for entry in _entry_points():
            policy, found = _load(entry)
            problems.extend(found)
            if policy is None or found:
                continue
            if policy.name in policies:
                problems.append(
                    f"{_origin(entry)}: the name '{policy.name}' is taken by {origins[policy.name]}"
                )
                continue
            policies[policy.name] = policy
            origins[policy.name] = _origin(entry)
        if problems:
            raise PluginError(problems)
        self._loaded = _Loaded(policies, origins)
        return self._loaded

    def __getitem__(self, name: str) -> Policy:
        return self._plugins().policies[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins().policies)

    def __len__(self) -> int:
        return len(self._plugins().policies)

    def origin(self, name: str) -> str:
        """'built-in', or 'plugin <package> <version> (<entry point>)'."""
        return self._plugins().origins[name]

    def reload(self) -> None:
        """Forget what was loaded (tests install and remove plugins)."""
        self._loaded = None
