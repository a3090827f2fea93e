"""Fuzz targets: the readers, the schema, the policies, the analysis and the prover must
answer every input with a result or an `InputError`, never with another exception.

Inputs come from grammars of YAML and shell pieces, from mutations of valid files, from
raw bytes, and from trees shaped like environment and policy files. Each target also
checks a property of its result where one is cheap to state (the linear scanner reads as
ruamel.yaml's; emitted YAML reads back; locations are inside the file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pdmpolicy.core.errors import InputError
from pdmpolicy.environments.load import LinearScanner, parse_document
from pdmpolicy.environments.project import load_project
from pdmpolicy.gitlab import load_pipelines
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.shell import ShellSyntaxError, commands
from pdmpolicy.gitlab.yaml import parse_documents
from pdmpolicy.output.render import emit, rendered_files
from pdmpolicy.policyset.engine import evaluate
from tests.fuzz.conftest import FUZZ, RAN
from tests.hostile.generated import VALID

try:  # the prover arrives with `pdmpolicy verify`
    from pdmpolicy.prover import prover as _prover
except ImportError:  # pragma: no cover
    _prover = None  # type: ignore[assignment]

TODAY = dt.date(2026, 12, 1)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# --- Text grammars -----------------------------------------------------------------------

YAML_PIECES = (
    "\n", "\n  ", "\n    ", "  ", "- ", ": ", ":", "? ", "[", "]", "{", "}", ", ", "&a ", "*a",
    "!!str ", "!!python/object:os.system ", "!reference [.t, script]", "<<: ", "'", '"', "|",
    "|-", ">", "# c", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\t", "\\", "\\n",
    "\\e", "\x00", "\r", "\r\n", "é", "\ufeff", "\u2028", "\x85", "~", "null", "no", "On", "0x1F",
    "1:30", "010", ".inf", "2026-13-01", "2026-11-16", "10h", "true", "false", "-1", "9" * 30,
    "environment", "database", "upstream", "rollout", "step", "since", "variables", "jobs",
    "runner", "vm", "kubernetes", "generic", "kctl", "action", "upgrade", "dry_run", "needs",
    "retry", "when", "manual", "always", "allow_failure", "interruptible", "resource_group",
    "timeout", "script", "stage", "inherit", "default", "extends", ".t", "trigger", "include",
    "rules", "if", "$X", "gstg", "gprd", "job", "SKIP_POST_DEPLOYMENT_MIGRATIONS", "AUTO_DEPLOY",
    "k-ctl -e gstg upgrade", "env -u AUTO_DEPLOY", "policies", "waivers", "severity", "error",
    "pdm-no-auto-retry", "soak_days",
)  # fmt: skip
SHELL_PIECES = (
    "k-ctl", " ", "-e", "gstg", "upgrade", "-D", "env", "-u", "AUTO_DEPLOY", "X=1", "'", '"',
    "\\", "$(", ")", "`", "${", "}", "$((", "))", ";", "&&", "||", "|", "&", ">", "<<EOF", "#",
    "sh -c ", "bash -c ", "export ", "unset ", "exec ", "if ", "then ", "fi", "for x in a; do ",
    "done", "(", "{ ", "\n", "\t", "deploy-vms", "RUN_POST_DEPLOY_MIGRATIONS=true",
)  # fmt: skip

yaml_text = st.lists(st.sampled_from(YAML_PIECES), max_size=60).map("".join)
shell_text = st.lists(st.sampled_from(SHELL_PIECES), min_size=1, max_size=30).map("".join)
SEEDS = (
    VALID,
    *(p.read_text(encoding="utf-8") for p in sorted((FIXTURES / "gitlab").glob("*.yml"))),
)


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[str, ...] = SEEDS) -> str:
    """A valid file changed a few times: pieces inserted, spans deleted or repeated."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("insert", "delete", "repeat")))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(YAML_PIECES)) + text[at:]
        else:
            end = min(len(text), at + draw(st.integers(1, 40)))
            span = text[at:end]
            text = (
                text[:at]
                + (span * draw(st.integers(2, 4)) if kind == "repeat" else "")
                + text[end:]
            )
    return text


any_text = st.one_of(yaml_text, mutated(), st.text(max_size=200))
any_bytes = st.one_of(
    any_text.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300)
)

# --- Trees shaped like the inputs --------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from(YAML_PIECES), st.text(max_size=12)
)
KEYS = st.sampled_from(
    ("runner", "kctl", "environment", "action", "stage", "dry_run", "wait_for_jobs", "variables",
     "needs", "when", "retry", "allow_failure", "interruptible", "resource_group", "timeout",
     "script", "inherit_variables", "SKIP_POST_DEPLOYMENT_MIGRATIONS", "AUTO_DEPLOY", "x")
)  # fmt: skip
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
NAMES = st.sampled_from(("gstg", "gprd", "gstg-cny", "a", "b-1"))
words = st.text(st.characters(codec="ascii", categories=["L", "N", "P", "S", "Zs"]), max_size=8)
"""Printable text: values the loader takes, so that files reach the policies."""


def mostly(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten, so that many files get past the schema to the policies."""
    return st.integers(0, 9).flatmap(lambda n: junk if n == 9 else valid)


@st.composite
def job_trees(draw: st.DrawFn, name: str, others: list[str]) -> dict[str, Any]:
    runner = draw(mostly(st.sampled_from(("vm", "kubernetes", "generic")), scalars))
    job: dict[str, Any] = {"runner": runner}
    if runner == "kubernetes" or draw(st.integers(0, 9)) == 9:
        job["kctl"] = draw(
            st.fixed_dictionaries(
                {"environment": NAMES, "action": st.sampled_from(("upgrade", "template", "list"))},
                optional={
                    "stage": st.sampled_from(("main", "cny")),
                    "dry_run": st.booleans(),
                    "wait_for_jobs": st.booleans(),
                    "variables": st.dictionaries(
                        st.sampled_from(("SKIP_POST_DEPLOYMENT_MIGRATIONS", "AUTO_DEPLOY", "X")),
                        mostly(st.sampled_from(("false", "true", "")), words),
                    ),
                },
            )
        )
    if runner == "generic" or draw(st.integers(0, 9)) == 9:
        job["script"] = draw(st.lists(shell_text, min_size=1, max_size=3))
    job.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "variables": st.dictionaries(
                        st.sampled_from(("RUN_POST_DEPLOY_MIGRATIONS", "AUTO_DEPLOY", "Y")),
                        mostly(st.sampled_from(("true", "false")), scalars),
                        max_size=2,
                    ),
                    "needs": st.lists(
                        mostly(st.sampled_from([*others, *others, "missing"]), st.just("missing")),
                        max_size=2,
                        unique=True,
                    ),
                    "retry": mostly(st.integers(0, 2), scalars),
                    "when": st.sampled_from(("on_success", "manual", "always", "on_failure")),
                    "allow_failure": st.booleans(),
                    "interruptible": st.booleans(),
                    "resource_group": st.sampled_from(("gstg-pdm", "x")),
                    "timeout": st.sampled_from(("10h", "1m", "3h 30m", "x")),
                    "stage": st.sampled_from(("deploy", ".post", "test")),
                    "inherit_variables": st.booleans() | st.just(["DEPLOY_ENVIRONMENT"]),
                },
            )
        )
    )
    if draw(st.integers(0, 9)) == 9:
        job[draw(KEYS)] = draw(trees)
    return job


@st.composite
def environment_trees(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Mostly the shape of an environment file; now and then any value anywhere."""
    names = [f"{name}-{job}" for job in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))]
    jobs = {job: draw(job_trees(job, [n for n in names if n != job])) for job in names}
    tree = {
        "environment": draw(mostly(st.just(name), NAMES)),
        "database": draw(st.sampled_from(("gstg", "gprd"))),
        "upstream": draw(mostly(st.none(), NAMES)),
        "rollout": {
            "step": draw(
                st.sampled_from(
                    ("vm", "dry-run", "kubernetes-after-vm", "kubernetes-first", "kubernetes-only")
                )
            ),
            "since": draw(
                st.sampled_from(("2026-11-16", "2026-01-01", "9999-12-31", "0001-01-01"))
            ),
        },
        "jobs": draw(mostly(st.just(jobs), trees)),
    }
    if draw(st.booleans()):
        tree["variables"] = draw(
            st.dictionaries(
                st.sampled_from(("DEPLOY_ENVIRONMENT", "AUTO_DEPLOY")), st.text(max_size=8)
            )
        )
    return tree


policy_trees = st.fixed_dictionaries(
    {},
    optional={
        "policies": st.dictionaries(
            st.sampled_from(
                (
                    "pdm-no-auto-retry",
                    "promotion-order",
                    "pdm-executor-timeout",
                    "waiver-valid",
                    "unknown-policy",
                    "pdm-at-most-once",
                )
            ),
            st.fixed_dictionaries(
                {},
                optional={
                    "severity": st.sampled_from(("error", "warning", "off", "fatal")),
                    "soak_days": st.integers(-1, 10**6) | scalars,
                    "minimum": st.sampled_from(("3h", "0m", "x")),
                    "environments": st.lists(NAMES, max_size=2),
                },
            )
            | scalars,
        ),
        "waivers": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "policy": st.sampled_from(("pdm-no-auto-retry", "x")),
                    "environment": NAMES,
                    "reason": st.text(max_size=8),
                    "owner": st.just("@release-managers"),
                    "expires": st.sampled_from(("2026-12-31", "2020-01-01", "9999-12-31", "x")),
                },
            ),
            max_size=2,
        ),
    },
)


def dump(tree: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(tree, stream)
    return stream.getvalue()


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))


def _check_problems(error: InputError, text: bytes) -> None:
    """Each problem says something, at a line of the file (counted as YAML counts them)."""
    lines = len(re.findall(rb"\r\n|\r|\n", text)) + 1
    for problem in error.problems:
        assert problem.message
        assert problem.loc.line <= lines + 1 or problem.loc.line == 0, problem


# --- Targets -----------------------------------------------------------------------------


@FUZZ
@given(any_bytes)
def test_environment_reader(raw: bytes) -> None:
    RAN["test_environment_reader"] += 1
    try:
        parse_document("environments/x.yml", raw)
    except InputError as error:
        _check_problems(error, raw)
    else:
        RAN["test_environment_reader:read"] += 1


def _scan(scanner: Any, text: str) -> tuple[Any, ...]:
    yaml = YAML(typ="safe", pure=True)
    if scanner is not None:
        yaml.Scanner = scanner
    try:
        return tuple(
            (type(e).__name__, e.start_mark.index, getattr(e, "value", None))
            for e in yaml.parse(text)
        )
    except YAMLError as exc:
        return ("error", type(exc).__name__, str(exc))


@FUZZ
@given(st.one_of(yaml_text, mutated()).filter(lambda t: t.count("[") + t.count("{") < 60))
def test_linear_scanner_reads_as_ruamel_yaml(text: str) -> None:
    RAN["test_linear_scanner_reads_as_ruamel_yaml"] += 1
    assert _scan(LinearScanner, text) == _scan(None, text)


@FUZZ
@given(any_bytes, st.booleans())
def test_gitlab_reader_analysis_and_prover(raw: bytes, as_child: bool) -> None:
    RAN["test_gitlab_reader_analysis_and_prover"] += 1
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        _write(root / ".gitlab-ci.yml", raw)
        try:
            pipelines = load_pipelines(root / ".gitlab-ci.yml", root)
        except InputError as error:
            _check_problems(error, raw)
            return
        RAN["test_gitlab_reader_analysis_and_prover:loaded"] += 1
        for pipeline in pipelines:
            analysis = analyse(pipeline)
            analysis.execution_order()
            if _prover is not None and len(pipeline.jobs) <= 12:
                _prover.prove(pipeline)


@FUZZ
@given(
    st.lists(
        st.sampled_from(("gstg", "gprd", "gstg-cny")), min_size=1, max_size=2, unique=True
    ).flatmap(
        lambda names: st.tuples(st.just(names), st.tuples(*(environment_trees(n) for n in names)))
    ),
    policy_trees,
    st.booleans(),
)
def test_project_check_and_render(
    named: tuple[list[str], tuple[dict[str, Any], ...]],
    policies: dict[str, Any],
    text_policies: bool,
) -> None:
    """Environment and policy files shaped like the real ones, any value anywhere: loaded,
    checked by every policy, and rendered; what is rendered reads back."""
    RAN["test_project_check_and_render"] += 1
    import tempfile

    names, environments = named
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name, tree in zip(names, environments, strict=True):
            _write(root / "environments" / f"{name}.yml", dump(tree))
        (root / "policies").mkdir()
        _write(root / "policies" / "policies.yml", dump(policies) if text_policies else "{}\n")
        try:
            project = load_project(root, root / "environments", root / "policies")
        except InputError:
            return
        RAN["test_project_check_and_render:loaded"] += 1
        findings = evaluate(project, TODAY)
        for finding in findings:
            assert finding.severity in ("error", "warning")
            json.dumps(finding.to_json() if hasattr(finding, "to_json") else str(finding))
        for path, content in rendered_files(project).items():
            (document,) = parse_documents(path, content)
            assert document is not None
        for view in project.views:
            emit(view.pipeline)


@FUZZ
@given(st.lists(st.one_of(shell_text, st.text(max_size=40)), min_size=1, max_size=4))
def test_shell_reader(lines: list[str]) -> None:
    RAN["test_shell_reader"] += 1
    from pdmpolicy.core.location import Loc

    with contextlib.suppress(ShellSyntaxError):  # the shell would refuse it too
        commands([(line, Loc("x", i + 1, 1)) for i, line in enumerate(lines)])
