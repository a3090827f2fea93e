"""Run the fuzz targets at scale on every core (the nox session `fuzz`).

    python tests/fuzz/run.py [--examples N] [--jobs J] [--atheris-runs R] [--report FILE]

Each hypothesis target of `test_fuzz.py` runs in a pytest process of its own with N examples
(the slow whole-project target with N/4), and, when atheris is installed, the byte-level
harness `atheris_readers.py` runs R inputs; J of these at a time. At the end a table of
inputs and seconds per target, and the total, is printed (and written as JSON to FILE).
A crash fails the run with the failing input, as pytest or libFuzzer print it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGETS = {
    "test_environment_reader": 1.0,
    "test_linear_scanner_reads_as_ruamel_yaml": 1.0,
    "test_gitlab_reader_analysis_and_prover": 1.0,
    "test_shell_reader": 1.0,
    "test_project_check_and_render": 0.25,
}
"""Target -> share of the example count it gets (the whole-project one is 20x slower)."""


@dataclass
class Result:
    target: str
    ok: bool
    inputs: int
    reached: dict[str, int]
    """Inputs that got past the readers, per target that counts them."""
    seconds: float
    output: str


def _hypothesis(target: str, examples: int, directory: Path) -> Result:
    report = directory / f"{target}.json"
    env = {
        **os.environ,
        "PDMPOLICY_FUZZ_EXAMPLES": str(examples),
        "PDMPOLICY_FUZZ_REPORT": str(report),
    }
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         f"tests/fuzz/test_fuzz.py::{target}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    counts = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return Result(
        target,
        done.returncode == 0,
        counts.get(target, {}).get("inputs", 0),
        {k.partition(":")[2]: v["inputs"] for k, v in counts.items() if ":" in k},
        round(time.monotonic() - start, 1),
        "" if done.returncode == 0 else done.stdout[-6000:] + done.stderr[-2000:],
    )


def _atheris(runs: int, directory: Path) -> Result:
    seeds = directory / "atheris-seeds"
    seeds.mkdir()
    for number, path in enumerate(sorted((ROOT / "tests").rglob("*.yml"))):
        if path.stat().st_size < 4096:
            (seeds / f"{number}.yml").write_bytes(path.read_bytes())
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(HERE / "atheris_readers.py"), f"-runs={runs}", "-max_len=4096",
         "-rss_limit_mb=1024", "-timeout=10", str(seeds)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    executed = re.findall(r"Done (\d+) runs", output) or re.findall(r"#(\d+)\s", output)
    return Result(
        "atheris_readers (bytes, coverage-guided)",
        done.returncode == 0,
        int(executed[-1]) if executed else 0,
        {},
        round(time.monotonic() - start, 1),
        "" if done.returncode == 0 else output[-6000:],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", 2000)))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--atheris-runs", type=int, default=None)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    runs = args.examples * 2 if args.atheris_runs is None else args.atheris_runs
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
        directory = Path(scratch)
        # The slowest first, so that the cores finish together.
        futures = [
            pool.submit(_hypothesis, target, max(1, int(args.examples * share)), directory)
            for target, share in sorted(TARGETS.items(), key=lambda item: item[1])
        ]
        if runs and importlib.util.find_spec("atheris") is not None:
            futures.insert(0, pool.submit(_atheris, runs, directory))
        results = [future.result() for future in futures]
    total = sum(result.inputs for result in results)
    width = max(len(result.target) for result in results)
    for result in results:
        state = "ok" if result.ok else "FAILED"
        reached = ", ".join(f"{name}: {count}" for name, count in result.reached.items())
        print(
            f"{result.target:<{width}}  {result.inputs:>8} inputs  {result.seconds:>7} s  {state}"
            + (f"  ({reached})" if reached else "")
        )
    print(f"{'total':<{width}}  {total:>8} inputs")
    for result in results:
        if not result.ok:
            print(f"\n--- {result.target} ---\n{result.output}")
    if args.report:
        report = [asdict(result) for result in results]
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
