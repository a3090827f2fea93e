"""`pdmpolicy verify` on a directory of real GitLab CI projects: exit codes, time, schema.

Each subdirectory of DIR is one project's CI files (its `.gitlab-ci.yml` and the files it
includes, at their paths in the repository). For each project this runs
`pdmpolicy verify .gitlab-ci.yml --format json` in-process from that directory (the
repository root, as in CI), and validates the same `.gitlab-ci.yml` against GitLab CI's JSON
Schema (tests/data/gitlab-ci-schema.json, as check-jsonschema would). Run:

    python benchmarks/corpus.py DIR [--runs N] [--verbose]

Prints: files read, exit codes, how many exit-2 files the schema also rejects (the file the
first error is in: an included file is validated on its own), the time per file (median and
max of each file's best of N runs, wall clock and processor time; the process is not
restarted, so later runs find the shell reader's memory of earlier ones: `--runs 1` times
each file as a fresh `verify` would, imports aside), the largest file's time, and every
file that exited 1, 2 or 3 (with the first finding or error) when --verbose is given.
The corpus itself is not part of the repository (other projects' files are not committed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = REPO_ROOT / "tests/data/gitlab-ci-schema.json"
POLICIES = REPO_ROOT / "benchmarks/.no-policies"
"""A directory that does not exist: verify then runs with the built-in defaults."""


def _schema_errors(file: Path) -> list[str]:
    """GitLab CI's JSON Schema on the file, with `!reference` read as a list of strings."""
    import jsonschema
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class Constructor(SafeConstructor):
        pass

    Constructor.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = Constructor
    try:
        document = yaml.load(file.read_text(encoding="utf-8"))
    except Exception as exc:  # the schema check cannot even read it
        return [f"YAML: {exc}".splitlines()[0]]
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(document)]


def _verify(project: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, processor seconds, first line of output worth showing) of verify
    in `project`."""
    from pdmpolicy.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(project)
    try:
        start, start_cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["verify", ".gitlab-ci.yml", "--format", "json"])
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    finally:
        os.chdir(here)
    return code, seconds, cpu, _first(code, out.getvalue(), err.getvalue())


def _load(project: Path) -> float:
    """Seconds `load_pipelines` alone takes (reading, includes, extends, the model)."""
    from pdmpolicy.core.errors import InputError
    from pdmpolicy.gitlab import load_pipelines

    start = time.perf_counter()
    with contextlib.suppress(InputError):
        load_pipelines(project / ".gitlab-ci.yml", project)
    return time.perf_counter() - start


def _first(code: int, out: str, err: str) -> str:
    if code == 3:
        return err.strip().splitlines()[-1] if err.strip() else "internal error"
    try:
        data: Any = json.loads(out)
    except ValueError:
        return (err or out).strip().splitlines()[0] if (err or out).strip() else ""
    for key in ("errors", "findings"):
        items = data.get(key) if isinstance(data, dict) else None
        if items:
            first = items[0]
            where = first.get("path", "")
            line = first.get("line", "")
            return f"{where}:{line}: {first.get('message', '')}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    projects = sorted(p for p in args.dir.resolve().iterdir() if (p / ".gitlab-ci.yml").is_file())
    codes: Counter[int] = Counter()
    times: dict[str, float] = {}
    cpu_times: dict[str, float] = {}
    loads: dict[str, float] = {}
    sizes: dict[str, int] = {}
    problems: list[str] = []
    exit2_schema_rejects = 0
    exit2_schema_accepts: list[str] = []
    for project in projects:
        best = best_cpu = float("inf")
        code, shown = 0, ""
        for _ in range(args.runs):
            code, seconds, cpu, shown = _verify(project)
            best, best_cpu = min(best, seconds), min(best_cpu, cpu)
        name = project.name
        loads[name] = min(_load(project) for _ in range(args.runs))
        codes[code] += 1
        times[name] = best
        cpu_times[name] = best_cpu
        sizes[name] = len((project / ".gitlab-ci.yml").read_text(encoding="utf-8").splitlines())
        if code == 2:
            # The file the first error is in: the root file, or an included one (GitLab
            # validates every file it reads; check-jsonschema only the one it is given).
            where = project / shown.split(":", 1)[0]
            if not where.is_file():
                where = project / ".gitlab-ci.yml"
            if _schema_errors(where):
                exit2_schema_rejects += 1
            else:
                exit2_schema_accepts.append(name)
        if code != 0:
            problems.append(f"  exit {code} {name}: {shown}")
    largest = max(sizes, key=lambda n: sizes[n])
    ordered = sorted(times.values())
    print(f"files read: {len(projects)} (with their local includes)")
    print("exit codes: " + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items())))
    print(
        f"exit 2 that GitLab CI's JSON Schema also rejects: {exit2_schema_rejects}; "
        f"that it accepts: {len(exit2_schema_accepts)} {exit2_schema_accepts}"
    )
    print(
        f"time per file (best of {args.runs}): median {statistics.median(ordered) * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms ({max(times, key=lambda n: times[n])})"
    )
    ordered_cpu = sorted(cpu_times.values())
    print(
        f"processor time per file (best of {args.runs}; the wall clock above stretches with "
        f"the machine's load): median {statistics.median(ordered_cpu) * 1000:.0f} ms, max "
        f"{ordered_cpu[-1] * 1000:.0f} ms ({max(cpu_times, key=lambda n: cpu_times[n])})"
    )
    print(
        f"largest file: {largest} ({sizes[largest]} lines): {times[largest] * 1000:.0f} ms; "
        f"files over 1 s: {sum(t > 1 for t in ordered)}"
    )
    load_times = sorted(loads.values())
    print(
        f"of which reading the files into the model (load_pipelines): median "
        f"{statistics.median(load_times) * 1000:.0f} ms, max {load_times[-1] * 1000:.0f} ms "
        f"({max(loads, key=lambda n: loads[n])}); largest file {loads[largest] * 1000:.0f} ms"
    )
    if args.verbose:
        print("\n".join(problems))
        slowest = sorted(cpu_times, key=lambda n: -cpu_times[n])[:4]
        print(
            "  most processor time (the first file also pays for importing what verify "
            "imports when it runs): "
            + ", ".join(f"{name} {cpu_times[name] * 1000:.0f} ms" for name in slowest)
        )
        for name in sorted(times, key=lambda n: -times[n]):
            if times[name] > 1:
                print(
                    f"  over 1 s: {name} ({sizes[name]} lines): {times[name] * 1000:.0f} ms, "
                    f"of which load_pipelines {loads[name] * 1000:.0f} ms"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
