"""Whole-process timings of the commands, each beside its floor measured in the same run.

What a user waits for is a whole process: Python starting, imports, reading, checking,
writing. Each command is timed as one (`python -m pdmpolicy ...`, median of --runs) with its
peak memory (maximum resident set, from the kernel's accounting of that child alone), beside
two floors measured the same way, in the same run, on the same files:

- start-up floor: `python -c "import ruamel.yaml"`, Python starting and importing the YAML
  library (nothing pdmpolicy does can be faster);
- load floor: the same plus a bare ruamel.yaml round-trip load of every environment and
  policy file the command reads.

Inputs: the shipped repository (check, render --check, explain, verify), and synthetic
repositories of 10, 100, 500 and 2,000 environments written like the shipped ones (a
staging environment in kubernetes-first and a production one in dry-run promoted from it,
each with its own database), on which check, render and render --check run. `verify` also
runs beside check-jsonschema's GitLab CI schema on the same CI files when it is installed.

Run (the nox session `bench` installs the package and check-jsonschema first):

    python benchmarks/bench_cli.py [--runs N] [--sizes 10,100,500,2000] [--skip-shipped]
                                   [--before DIR]

To compare with other code, point PYTHONPATH at it: every command runs outside the checkout.
`--before DIR` times `check` on the shipped files with the package in DIR and with this one
alternately, beside the start-up floor (at least 15 runs): on a shared machine only runs
side by side compare.

Prints Markdown tables: median processor time (user + system, which other work on a
shared machine does not inflate) and wall time, each as a ratio to its floor, and peak MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TODAY = "2026-12-05"
"""A fixed date, so the soak and expiry rules give the same answer on every run."""

STAGING = """\
# Staging {i}: PDMs run in Kubernetes first; the VM job after it finds nothing pending.
environment: {name}
database: {name}
upstream: null
rollout:
  step: kubernetes-first
  since: 2026-11-23
variables:
  DEPLOY_ENVIRONMENT: {name}
jobs:
  {name}-kubernetes-post-deploy-migrations:
    runner: kubernetes
    kctl:
      environment: {name}
      stage: main
      action: upgrade
      dry_run: false
      wait_for_jobs: true        # the VM job must not start while the migrations Job runs
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
    timeout: 10h
  {name}-vm-post-deploy-migrations:
    runner: vm
    needs: [{name}-kubernetes-post-deploy-migrations]
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""

PRODUCTION = """\
# Production {i}: PDMs still run on the deploy VMs; a k-ctl dry run shows the migrations Job.
environment: {name}
database: {name}
upstream: {upstream}
rollout:
  step: dry-run
  since: 2026-11-09
variables:
  DEPLOY_ENVIRONMENT: {name}
jobs:
  {name}-kubernetes-post-deploy-migrations-dry-run:
    runner: kubernetes
    needs: []
    kctl:
      environment: {name}
      stage: main
      action: upgrade
      dry_run: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
  {name}-vm-post-deploy-migrations:
    runner: vm
    needs: []
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""


def write_repository(root: Path, environments: int) -> None:
    """`environments` environment files (pairs of staging and production), the shipped
    policies, and the CI files rendered from them."""
    (root / "environments").mkdir(parents=True)
    shutil.copytree(REPO / "policies", root / "policies")
    for i in range(environments):
        pair, production = divmod(i, 2)
        if production:
            name = f"prd{pair:04d}"
            text = PRODUCTION.format(i=pair, name=name, upstream=f"stg{pair:04d}")
        else:
            name = f"stg{pair:04d}"
            text = STAGING.format(i=pair, name=name)
        (root / "environments" / f"{name}.yml").write_text(text, encoding="utf-8")
    done = _run_once([*pdmpolicy(), "render", "--today", TODAY], root)
    if done.returncode != 0:
        raise SystemExit(f"render failed on the synthetic repository:\n{done.stderr}")


def pdmpolicy() -> list[str]:
    return [sys.executable, "-m", "pdmpolicy"]


def child_env() -> dict[str, str]:
    """The environment of every timed process: bytecode is cached as on an installed
    package (a shell that sets PYTHONDONTWRITEBYTECODE would time compiling instead)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if "PYTHONPATH" not in env and (REPO / "pdmpolicy").is_dir() and _not_installed():
        env["PYTHONPATH"] = str(REPO)
    return env


def _not_installed() -> bool:
    done = subprocess.run(
        [sys.executable, "-c", "import pdmpolicy"], capture_output=True, cwd="/", check=False
    )
    return done.returncode != 0


def _run_once(command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=child_env(), check=False
    )


@dataclass(frozen=True)
class Timing:
    seconds: float
    """Median processor time (user + system) of the runs: what the command costs, and what
    a machine shared with other work does not inflate."""
    wall: float
    """Median wall-clock time of the runs."""
    peak_mib: float
    """Largest maximum resident set size of the runs."""


def _timed(
    command: Sequence[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> tuple[float, float, int]:
    """Processor seconds, wall seconds and maximum resident KiB of one run of `command`
    (the kernel's accounting of that child alone, from wait4)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        if code not in ok:
            errors.seek(0)
            raise SystemExit(
                f"{' '.join(command)} exited {code} in {cwd}:\n"
                + errors.read().decode(errors="replace")[-2000:]
            )
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss


def measure(
    command: Sequence[str], cwd: Path, runs: int, warm: bool = True, ok: tuple[int, ...] = (0,)
) -> Timing:
    """Median times and peak memory of `runs` runs of `command`, after one untimed run
    that fills the page cache and writes bytecode (`warm=False` where an earlier command
    on the same files did that)."""
    env = child_env()
    if warm:
        _timed(command, cwd, env, ok)
    runs_ = [_timed(command, cwd, env, ok) for _ in range(runs)]
    return Timing(
        statistics.median(r[0] for r in runs_),
        statistics.median(r[1] for r in runs_),
        max(r[2] for r in runs_) / 1024,  # KiB on Linux
    )


START_FLOOR = "import ruamel.yaml"
LOAD_FLOOR = """\
import sys
from pathlib import Path
from ruamel.yaml import YAML
yaml = YAML(typ="rt")
for folder in sys.argv[1:]:
    for path in sorted(Path(folder).glob("*.yml")):
        yaml.load(path.read_text(encoding="utf-8"))
"""


def floors(root: Path, runs: int) -> tuple[Timing, Timing]:
    start = measure([sys.executable, "-c", START_FLOOR], root, runs)
    load = measure(
        [sys.executable, "-c", LOAD_FLOOR, "environments", "policies"], root, runs, warm=False
    )
    return start, load


def row(label: str, timing: Timing, floor: Timing) -> str:
    return (
        f"| {label} | {timing.seconds * 1000:,.0f} ms | {timing.seconds / floor.seconds:.2f}x "
        f"| {timing.wall * 1000:,.0f} ms | {timing.wall / floor.wall:.2f}x "
        f"| {timing.peak_mib:.0f} MiB | {floor.peak_mib:.0f} MiB |"
    )


HEADER = (
    "| command / floor | CPU | CPU ratio | wall | wall ratio | peak memory | floor memory |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def shipped(runs: int) -> None:
    # A copy of the shipped inputs, outside the checkout: `python -m` puts the working
    # directory first on sys.path, and the package timed must be the one PYTHONPATH or the
    # installation names (so code before and after a change can be compared).
    with tempfile.TemporaryDirectory(prefix="pdmpolicy-bench-shipped-") as tmp:
        root = Path(tmp)
        for folder in ("environments", "policies", "ci"):
            shutil.copytree(REPO / folder, root / folder)
        _shipped(root, runs)


def _shipped(root: Path, runs: int) -> None:
    start, load = floors(root, runs)
    today = ["--today", TODAY]
    print(f"\n### Shipped repository ({runs} runs each)\n")
    print("Floors: start-up = `python -c 'import ruamel.yaml'`; load = start-up plus a bare")
    print("round-trip load of environments/*.yml and policies/*.yml.\n")
    print(HEADER)
    print(row("start-up floor", start, start))
    print(row("load floor", load, start))
    for label, args in (
        ("check", ["check", *today]),
        ("render --check", ["render", "--check", *today]),
        ("explain gstg", ["explain", "gstg", *today]),
        ("verify ci/postdeploy-migrations.yml", ["verify", "ci/postdeploy-migrations.yml"]),
        ("--help", ["--help"]),
    ):
        timing = measure([*pdmpolicy(), *args], root, runs)
        print(row(label + " / start-up floor", timing, start))
    check = measure([*pdmpolicy(), "check", *today], root, runs)
    print(row("check / load floor", check, load))
    print(flush=True)


def _check_jsonschema() -> list[str] | None:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    found = found or shutil.which("check-jsonschema")
    return [found, "--builtin-schema", "vendor.gitlab-ci"] if found else None


def _verify(root: Path, runs: int) -> Timing | str:
    """`verify` timed, or the input error it answers with (a parent pipeline past the
    GitLab CI reader's limits is refused, not checked)."""
    command = [*pdmpolicy(), "verify", "ci/postdeploy-migrations.yml"]
    done = _run_once(command, root)
    if done.returncode == 2:
        return " ".join(done.stderr.splitlines()[0].split(": error: ", 1)[-1:])
    return measure(command, root, runs, warm=False)


def synthetic(sizes: Sequence[int], runs: int) -> None:
    print(f"\n### Synthetic repositories ({runs} runs each, 2 past 500 environments)\n")
    print("Ratios: start-up lines to the start-up floor, the rest to the load floor of the")
    print("same repository (a bare round-trip load of the same files).\n")
    print("CPU seconds (user + system), median, and the ratio to the load floor; wall time of")
    print("check after the slash.\n")
    print(
        "| environments | load floor | check | render | render --check | peak: floor / check "
        "/ render |\n| ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    verify_rows: list[tuple[int, int, Timing | str, Timing | None]] = []
    checker = _check_jsonschema()
    for size in sizes:
        n = runs if size <= 500 else max(1, min(runs, 2))
        with tempfile.TemporaryDirectory(prefix=f"pdmpolicy-bench-{size}-") as tmp:
            root = Path(tmp)
            write_repository(root, size)
            today = ["--today", TODAY]
            # Rendering the repository just read every file: no warm-up needed.
            _, load = floors(root, n)
            check = measure([*pdmpolicy(), "check", *today], root, n, warm=False)
            render = measure([*pdmpolicy(), "render", *today], root, n, warm=False)
            stale = measure([*pdmpolicy(), "render", "--check", *today], root, n, warm=False)
            print(
                f"| {size:,} | {load.seconds:.2f} s "
                f"| {check.seconds:.2f} s ({check.seconds / load.seconds:.2f}x) "
                f"/ {check.wall:.2f} s "
                f"| {render.seconds:.2f} s ({render.seconds / load.seconds:.2f}x) "
                f"| {stale.seconds:.2f} s ({stale.seconds / load.seconds:.2f}x) "
                f"| {load.peak_mib:.0f} / {check.peak_mib:.0f} / {render.peak_mib:.0f} MiB |",
                flush=True,
            )
            files = ["ci/postdeploy-migrations.yml"]
            files += sorted(str(p.relative_to(root)) for p in (root / "ci/environments").iterdir())
            verify = _verify(root, n)
            # Exit 1 is an answer (a file the schema refuses), timed all the same.
            other = measure([*checker, *files], root, n, ok=(0, 1)) if checker else None
            verify_rows.append((size, len(files), verify, other))
    print("\n### verify beside check-jsonschema (GitLab CI schema) on the same CI files\n")
    if checker is None:
        print("check-jsonschema is not installed: `pip install check-jsonschema`.")
    print("`verify` reads the parent file and follows every child pipeline it triggers;")
    print("check-jsonschema is given the same files.\n")
    print("CPU seconds (user + system), median.\n")
    print("| environments | CI files | verify | check-jsonschema | ratio | peak: verify / other |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, count, verify, other in verify_rows:
        if isinstance(verify, str):
            shown = f"{other.seconds:.2f} s" if other is not None else "-"
            print(f"| {size:,} | {count:,} | refused: {verify} | {shown} | - | - |")
            continue
        if other is None:
            print(f"| {size:,} | {count:,} | {verify.seconds:.2f} s | - | - | - |")
            continue
        print(
            f"| {size:,} | {count:,} | {verify.seconds:.2f} s | {other.seconds:.2f} s "
            f"| {verify.seconds / other.seconds:.2f}x "
            f"| {verify.peak_mib:.0f} / {other.peak_mib:.0f} MiB |",
            flush=True,
        )


def compare_start_up(before: Path, runs: int) -> None:
    """`check` on the shipped files with the package at `before` and with this one, timed
    alternately with the start-up floor: on a machine shared with other work the load
    changes from minute to minute, and only runs side by side compare."""
    with tempfile.TemporaryDirectory(prefix="pdmpolicy-bench-compare-") as tmp:
        root = Path(tmp)
        for folder in ("environments", "policies", "ci"):
            shutil.copytree(REPO / folder, root / folder)
        now = child_env()
        then = dict(now, PYTHONPATH=str(before))
        floor = [sys.executable, "-c", START_FLOOR]
        check = [*pdmpolicy(), "check", "--today", TODAY]
        for env in (now, then):
            _timed(check, root, env, ok=(0, 1))
        times: dict[str, list[float]] = {"floor": [], "before": [], "after": []}
        for _ in range(runs):
            times["floor"].append(_timed(floor, root, now)[0])
            times["before"].append(_timed(check, root, then, ok=(0, 1))[0])
            times["after"].append(_timed(check, root, now, ok=(0, 1))[0])
    floor_cpu = statistics.median(times["floor"])
    print(f"\n### check start-up, before ({before}) and after, alternating ({runs} runs)\n")
    print("| code | CPU | ratio to the start-up floor |\n| --- | ---: | ---: |")
    print(f"| start-up floor | {floor_cpu * 1000:,.0f} ms | 1.00x |")
    for label in ("before", "after"):
        cpu = statistics.median(times[label])
        print(f"| {label} | {cpu * 1000:,.0f} ms | {cpu / floor_cpu:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="10,100,500,2000")
    parser.add_argument("--skip-shipped", action="store_true")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also time `check` on the shipped files with the package in DIR (e.g. from "
        "`git archive REV pdmpolicy | tar -x -C DIR`) alternately with this one",
    )
    args = parser.parse_args()
    print(f"## Commands, whole process (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    if not args.skip_shipped:
        shipped(args.runs)
    if args.before is not None:
        compare_start_up(args.before.resolve(), max(args.runs, 15))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        synthetic(sizes, args.runs)


if __name__ == "__main__":
    main()
