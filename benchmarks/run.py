"""Run every benchmark (benchmarks/bench_*.py), to the screen and to one Markdown file.

    python benchmarks/run.py [--output reports/benchmarks.md] [NAME ...]

NAME picks benchmarks by file name (`cli`, `prover`, ...); none runs them all. Each runs in
its own process with this interpreter; its output goes to the screen as it comes and to
the file under a heading naming it. The nox session `bench` runs this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("reports/benchmarks.md"))
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    with args.output.open("w", encoding="utf-8") as out:
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.write(f"# pdmpolicy benchmarks, {started}\n\n{platform.platform()}, ")
        out.write(f"Python {platform.python_version()}\n")
        for script in scripts:
            heading = f"\n## {script.name}\n"
            print(heading, flush=True)
            out.write(heading + "\n")
            start = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, bufsize=1
            )
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                out.write(line)
                out.flush()
            if process.wait() != 0:
                failed.append(script.name)
            took = f"\n({script.name}: {time.perf_counter() - start:.0f} s)\n"
            print(took, flush=True)
            out.write(took)
    print(f"written to {args.output}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
