"""Hostile cases that cannot live in git as files: too large, symbolic links, odd file names.

Each builder gets the throwaway repository (with `environments/` and `policies/`) and a
directory outside it, lays the case out, and returns the path to give the command.
`CASES` maps the case name to its kind, its builder and its expectation, in the
`.expect` format of the files beside this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VALID = (Path(__file__).parent / "valid.yml").read_text(encoding="utf-8")
"""A valid environment file (gstg at step vm): the base of the environment cases."""

Builder = Callable[[Path, Path], str]


@dataclass(frozen=True)
class Generated:
    kind: str
    """environments | policies | gitlab"""
    build: Builder
    expect: str


def _env(name: str, text: str | bytes) -> Builder:
    def build(root: Path, outside: Path) -> str:
        path = root / "environments" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path.relative_to(root).as_posix()

    return build


def _linked_file(root: Path, outside: Path) -> str:
    (outside / "gstg.yml").write_text(VALID, encoding="utf-8")
    (root / "environments" / "gstg.yml").symlink_to(outside / "gstg.yml")
    return "environments/gstg.yml"


def _linked_directory(root: Path, outside: Path) -> str:
    (outside / "gstg.yml").write_text(VALID, encoding="utf-8")
    (root / "environments").rmdir()
    (root / "environments").symlink_to(outside, target_is_directory=True)
    return "environments/gstg.yml"


def _linked_policies(root: Path, outside: Path) -> str:
    (root / "environments" / "gstg.yml").write_text(VALID, encoding="utf-8")
    (outside / "policies.yml").write_text("policies: {}\n", encoding="utf-8")
    (root / "policies" / "policies.yml").symlink_to(outside / "policies.yml")
    return "policies/policies.yml"


def _policy(text: str) -> Builder:
    def build(root: Path, outside: Path) -> str:
        (root / "environments" / "gstg.yml").write_text(VALID, encoding="utf-8")
        (root / "policies" / "policies.yml").write_text(text, encoding="utf-8")
        return "policies/policies.yml"

    return build


def _ci(text: str) -> Builder:
    def build(root: Path, outside: Path) -> str:
        (root / ".gitlab-ci.yml").write_text(text, encoding="utf-8")
        return ".gitlab-ci.yml"

    return build


def _ci_child_linked_out(root: Path, outside: Path) -> str:
    (outside / "child.yml").write_text("job:\n  script: [echo]\n", encoding="utf-8")
    (root / "child.yml").symlink_to(outside / "child.yml")
    (root / ".gitlab-ci.yml").write_text(
        "trigger-child:\n  trigger:\n    include: child.yml\n    strategy: depend\n",
        encoding="utf-8",
    )
    return ".gitlab-ci.yml"


_MANY_BAD_VARIABLES = VALID.replace(
    "  DEPLOY_ENVIRONMENT: gstg\n",
    "".join(f"  {i}BAD: x\n" for i in range(2000)),
)

CASES: dict[str, Generated] = {
    "env-huge-file": Generated(
        "environments",
        _env("gstg.yml", VALID + "# padding\n" * 20_000),
        "where: environments/gstg.yml:1:1\nsays: more than the 131072 allowed\n",
    ),
    "env-too-many-values": Generated(
        "environments",
        _env("gstg.yml", VALID + "extra:\n" + "- x\n" * 6_000),
        "where: environments/gstg.yml:4985:3\nsays: more than 5000 values\n",
    ),
    "env-long-value": Generated(
        "environments",
        _env("gstg.yml", VALID.replace("environment: gstg", "environment: " + "g" * 120_000)),
        "where: environments/gstg.yml:1:14\nsays: is 120000 characters long\n",
    ),
    "env-two-thousand-errors": Generated(
        "environments",
        _env("gstg.yml", _MANY_BAD_VARIABLES),
        "where: environments/gstg.yml:8:3\nsays: '0BAD' is not a valid variable name\n"
        "problems: 2000\n",
    ),
    "env-symlink-out-of-repository": Generated(
        "environments",
        _linked_file,
        "where: environments/gstg.yml:1:1\nsays: symbolic link leads outside the repository\n",
    ),
    "env-directory-symlink-out-of-repository": Generated(
        "environments",
        _linked_directory,
        "where: environments/gstg.yml:1:1\nsays: symbolic link leads outside the repository\n",
    ),
    "env-file-name-option": Generated(
        "environments",
        _env("-rf.yml", VALID),
        "where: environments/-rf.yml:1:14\nsays: does not match the file name '-rf.yml'\n",
    ),
    "env-file-name-line-break": Generated(
        "environments",
        _env("gstg\nenvironments\\gprd.yml:1:1: error: forged.yml", VALID),
        "where: environments/gstg\\nenvironments\\gprd.yml:1:1: error: forged.yml:1:14\n"
        "says: does not match the file name\n",
    ),
    "policy-huge-file": Generated(
        "policies",
        _policy("policies: {}\n" + "# padding\n" * 20_000),
        "where: policies/policies.yml:1:1\nsays: more than the 131072 allowed\n",
    ),
    "policy-symlink-out-of-repository": Generated(
        "policies",
        _linked_policies,
        "where: policies/policies.yml:1:1\nsays: symbolic link leads outside the repository\n",
    ),
    "gitlab-huge-file": Generated(
        "gitlab",
        _ci("job:\n  script:\n" + "    - echo padding\n" * 80_000),
        "where: .gitlab-ci.yml:1:1\nsays: more than the 1048576 allowed\n",
    ),
    "gitlab-too-many-values": Generated(
        "gitlab",
        _ci("job:\n  script:\n" + "    - e\n" * 60_000),
        "where: .gitlab-ci.yml:49998:7\nsays: more than 50000 values\n",
    ),
    "gitlab-child-symlink-out-of-repository": Generated(
        "gitlab",
        _ci_child_linked_out,
        "where: .gitlab-ci.yml:3:14\nsays: child pipeline 'child.yml' is outside the repository\n",
    ),
}
