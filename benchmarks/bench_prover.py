"""How the prover's time grows with the pipeline, and the brute-force explorer's.

Synthetic pipelines of 10, 100, 500 and 2,000 jobs: build, test and deploy stages; jobs with
`needs` on a few jobs of the stage before; retried helper jobs; blocking manual jobs and a
manual gate before the executors; `always` and `on_failure` helpers; three executors, the
first two ordered by `needs`, the third in the last stage.
Each size comes in two versions: the safe one, and one with a missing `needs` between the
executors. Run:

    python benchmarks/bench_prover.py [--runs N] [--sizes 10,100,500,2000] [--explore-seconds S]

Prints a Markdown table: the prover's median over N runs (the decision alone, given the
executors, and with the effect analysis that finds them), and the explorer's time and state
count (it gives up after --explore-seconds).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from types import MappingProxyType

from pdmpolicy.core.location import Loc
from pdmpolicy.gitlab.analysis import analyse
from pdmpolicy.gitlab.pipeline import CiJob, Need, Pipeline, ScriptLine
from pdmpolicy.prover.explorer import explore
from pdmpolicy.prover.prover import prove

STAGES = (".pre", "build", "test", "deploy", ".post")
PATH = "bench.yml"
KCTL = (
    "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG SKIP_POST_DEPLOYMENT_MIGRATIONS=false "
    "k-ctl -e gstg upgrade"
)
VM = "env -u AUTO_DEPLOY -u GITLAB_IMAGE_TAG RUN_POST_DEPLOY_MIGRATIONS=true deploy-vms"


def _job(
    name: str,
    line: int,
    *,
    stage: str,
    needs: list[str] | None = None,
    when: str = "on_success",
    allow_failure: bool = False,
    retry: int = 0,
    script: str = "make check",
    resource_group: str | None = None,
) -> CiJob:
    loc = Loc(PATH, line)
    return CiJob(
        name=name,
        stage=stage,
        needs=None if needs is None else tuple(Need(n, False, loc) for n in needs),
        when=when,
        allow_failure=allow_failure,
        retry=retry,
        interruptible=False,
        resource_group=resource_group,
        timeout=None,
        variables=(),
        inherit_default=True,
        inherit_variables=True,
        script=(ScriptLine(script, loc),),
        trigger=None,
        rules=(),
        loc=loc,
        locs=MappingProxyType({}),
    )


def synthetic(size: int, *, safe: bool, seed: int = 1) -> Pipeline:
    """A pipeline of `size` jobs, executors included."""
    rng = random.Random(seed * 1000 + size)  # noqa: S311 -- a reproducible shape, not a secret
    jobs: list[CiJob] = []
    helpers = size - 3
    per_stage = {"build": helpers * 4 // 10, "test": helpers * 4 // 10}
    per_stage["deploy"] = helpers - per_stage["build"] - per_stage["test"]
    previous: list[str] = []
    gate = None
    for stage in ("build", "test", "deploy"):
        names: list[str] = []
        for i in range(per_stage[stage]):
            name = f"{stage}-{i}"
            line = len(jobs) * 5 + 1
            roll = rng.random()
            needs = rng.sample(previous, min(len(previous), 2)) if previous and roll < 0.6 else None
            when = "on_success"
            allow_failure = False
            if roll > 0.97:
                # Blocking: an optional manual job that an executor needs through `needs`
                # would break the invariant (the executor runs when it is played, late).
                when = "manual"
            elif roll > 0.94:
                when = "always"
            elif roll > 0.92:
                when = "on_failure"
            jobs.append(
                _job(
                    name,
                    line,
                    stage=stage,
                    needs=needs,
                    when=when,
                    allow_failure=allow_failure,
                    retry=rng.choice((0, 0, 1, 2)),
                )
            )
            names.append(name)
        if stage == "build":
            # A blocking gate: the VM job waits until someone plays it.
            gate = f"approve-{len(jobs)}"
            jobs.append(_job(gate, len(jobs) * 5 + 1, stage="build", when="manual"))
        previous = names
    plain = [j.name for j in jobs if j.stage == "deploy" and j.when == "on_success"]
    first_needs = [gate, *plain[:2]] if gate else plain[:2]
    group = "gstg-postdeploy-migrations"
    jobs.append(
        _job(
            "vm-pdm",
            len(jobs) * 5 + 1,
            stage="deploy",
            needs=first_needs,
            script=VM,
            resource_group=group,
        )
    )
    jobs.append(
        _job(
            "k8s-pdm",
            len(jobs) * 5 + 1,
            stage="deploy",
            needs=["vm-pdm"] if safe else [previous[-1]] if previous else [],
            script=KCTL,
            resource_group=group,
        )
    )
    jobs.append(
        _job(
            "k8s-cny-pdm",
            len(jobs) * 5 + 1,
            stage=".post",
            script=KCTL.replace("gstg", "gstg-cny"),
            resource_group=group,
        )
    )
    return Pipeline(PATH, PATH, STAGES, (), tuple(jobs))


def _median_ms(pipeline: Pipeline, runs: int, executors: frozenset[str] | None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        prove(pipeline, executors=executors)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="10,100,500,2000")
    parser.add_argument("--explore-seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("| jobs | pipeline | verdict | prover: decision | prover: with analysis | explorer |")
    print("| ---: | --- | --- | ---: | ---: | --- |")
    for size in (int(s) for s in args.sizes.split(",")):
        for safe in (True, False):
            pipeline = synthetic(size, safe=safe)
            executors = frozenset(
                name for name, effect in analyse(pipeline).effects.items() if effect.is_executor
            )
            verdict = "safe" if prove(pipeline, executors=executors).safe else "unsafe"
            decision = _median_ms(pipeline, args.runs, executors)
            total = _median_ms(pipeline, args.runs, None)
            start = time.perf_counter()
            explored = explore(
                pipeline, executors=executors, max_states=10**9, max_seconds=args.explore_seconds
            )
            took = time.perf_counter() - start
            if explored.truncated:
                outcome = f"gave up after {took:.0f} s, {explored.states:,} states"
            else:
                found = "unsafe" if explored.counterexample else "safe"
                outcome = f"{found}: {explored.states:,} states in {took * 1000:,.0f} ms"
            label = "safe" if safe else "missing needs"
            print(
                f"| {size:,} | {label} | {verdict} | {decision:.1f} ms | {total:.1f} ms "
                f"| {outcome} |"
            )


if __name__ == "__main__":
    main()
