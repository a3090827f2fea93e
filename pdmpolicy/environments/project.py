"""Loading a repository: every environment file and the policy set, or every problem.

Problems of all files are gathered before giving up, so one run shows everything wrong.
"""

from __future__ import annotations

from pathlib import Path

from pdmpolicy.core.errors import InputError, Problem, UsageError
from pdmpolicy.core.location import Loc
from pdmpolicy.core.records import record
from pdmpolicy.environments.load import Document, parse_document, read_yaml
from pdmpolicy.environments.lower import lower
from pdmpolicy.environments.model import Environment, build_environment
from pdmpolicy.environments.schema import check_references, validate_shape
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.policies import REGISTRY
from pdmpolicy.policies.base import EnvironmentView
from pdmpolicy.policyset.config import PolicySet, load_policy_set
from pdmpolicy.policyset.toolchain import DEFAULT, Toolchain


@record
class Project:
    root: Path
    views: tuple[EnvironmentView, ...]
    policy_set: PolicySet

    @property
    def environments(self) -> tuple[Environment, ...]:
        return tuple(view.environment for view in self.views)


def environment_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def load_environments(directory: Path, root: Path) -> list[Environment]:
    """Every environment in `directory`, validated; InputError lists the problems of all."""
    problems: list[Problem] = []
    environments: list[Environment] = []
    _require_directory(directory, "environments")
    files = environment_files(directory)
    if not files:
        where = directory.as_posix()
        raise InputError.at(
            Loc(where),
            f"no environment files (*.yml) in {where}",
            "run from the repository root, or pass --environments DIR",
        )
    for file in files:
        try:
            doc = read_yaml(file, root)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        _validated(doc, file.stem, environments, problems)
    return _checked_set(environments, {file.stem for file in files}, problems)


def _validated(doc: Document, stem: str, into: list[Environment], problems: list[Problem]) -> None:
    """Schema, then references; a valid document joins `into`, problems join `problems`."""
    shape = validate_shape(doc)
    if shape:
        problems.extend(shape)
        return
    references = check_references(doc, stem)
    if references:
        problems.extend(references)
        return
    into.append(build_environment(doc))


def _checked_set(
    environments: list[Environment], stems: set[str], problems: list[Problem]
) -> list[Environment]:
    first: dict[str, Environment] = {}
    for environment in sorted(environments, key=lambda e: e.path):
        if environment.name in first:
            problems.append(
                Problem(
                    environment.loc_of("environment"),
                    f"environment '{environment.name}' is also defined in "
                    f"{first[environment.name].path}",
                    f"keep one file per environment: remove {environment.path} or "
                    f"{first[environment.name].path}",
                )
            )
        first.setdefault(environment.name, environment)
    # An upstream whose own file is broken is reported there, not here as unknown.
    unreadable = stems - {e.name for e in environments}
    problems.extend(_upstream_problems(environments, unreadable))
    if problems:
        raise InputError(problems)
    return environments


def views_of(
    environments: list[Environment], toolchain: Toolchain = DEFAULT, root: Path | None = None
) -> tuple[EnvironmentView, ...]:
    """Lowered and analysed with the policy set's toolchain, in name order; `root` holds the
    script files jobs call."""
    views = []
    for environment in sorted(environments, key=lambda e: e.name):
        pipeline = lower(environment, toolchain)
        views.append(
            EnvironmentView(environment, pipeline, analyse(pipeline, toolchain, root=root))
        )
    return tuple(views)


def load_base(
    root: Path, ref: str, directory: Path, toolchain: Toolchain = DEFAULT
) -> tuple[EnvironmentView, ...]:
    """The environments as they were at git `ref` (nothing checked out, nothing written),
    lowered with `toolchain` (the current policy set's, so that a change of the toolchain
    alone shows no behavioural difference of the environments).

    Problems are reported at `REF:path`; an environment directory missing at the ref (the
    change creates it) gives no environments.
    """
    try:
        relative = directory.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"--base needs {directory} inside the repository") from None
    from pdmpolicy.environments import gitref  # git runs only for --base: not on every check's path

    files = gitref.files_at(root, ref, "" if relative == "." else relative)
    problems: list[Problem] = []
    environments: list[Environment] = []
    for path, raw in files.items():
        try:
            doc = parse_document(f"{ref}:{path}", raw)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        _validated(doc, Path(path).stem, environments, problems)
    # Script files are read from the working tree (docs/effects.md, "Limits").
    environments_set = _checked_set(environments, {Path(p).stem for p in files}, problems)
    return views_of(environments_set, toolchain, root)


def _require_directory(directory: Path, what: str) -> None:
    """A missing input directory is a usage error: a mistyped path must not check nothing."""
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist"
        raise UsageError(
            f"{what} directory '{directory.as_posix()}' {state}; run from the repository "
            f"root, or pass --{what} DIR"
        )


def _upstream_problems(environments: list[Environment], unreadable: set[str]) -> list[Problem]:
    by_name = {e.name: e for e in environments}
    problems = []
    for environment in environments:
        upstream = environment.upstream
        if upstream is None or upstream in unreadable:
            continue
        loc = environment.loc_of("upstream")
        if upstream == environment.name:
            problems.append(Problem(loc, f"environment '{upstream}' names itself as upstream"))
        elif upstream not in by_name:
            problems.append(
                Problem(
                    loc,
                    f"upstream '{upstream}' is not an environment here",
                    "known: " + ", ".join(sorted(by_name)),
                )
            )
        else:
            seen = [environment.name]
            current: str | None = upstream
            while current is not None and current in by_name and current not in seen:
                seen.append(current)
                current = by_name[current].upstream
            if current == environment.name:
                problems.append(
                    Problem(loc, "upstream chain forms a cycle: " + " -> ".join([*seen, current]))
                )
    return problems


def load_project(root: Path, environments_dir: Path, policies_dir: Path) -> Project:
    """Environments and policy set, both validated; InputError lists every problem."""
    problems: list[Problem] = []
    environments: list[Environment] = []
    policy_set = None
    _require_directory(environments_dir, "environments")
    _require_directory(policies_dir, "policies")
    try:
        environments = load_environments(environments_dir, root)
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        policy_set = load_policy_set(policies_dir, root, REGISTRY)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems or policy_set is None:
        raise InputError(problems)
    return Project(root, views_of(environments, policy_set.toolchain, root), policy_set)
