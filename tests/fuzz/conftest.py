"""Fuzzing with hypothesis: how many inputs each target gets, and a count of those it ran.

`PDMPOLICY_FUZZ_EXAMPLES` sets the examples per target (default: a smoke run of 25, the
normal test session); `tests/fuzz/run.py` (nox session `fuzz`) raises it and shards the
targets over the cores. With `PDMPOLICY_FUZZ_REPORT=FILE` the inputs each target ran, and
its time, are written there as JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("PDMPOLICY_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
RAN: Counter[str] = Counter()
"""Inputs run per target, shrinking included."""
SECONDS: defaultdict[str, float] = defaultdict(float)


@pytest.fixture(autouse=True)
def _timed(request: pytest.FixtureRequest) -> Iterator[None]:
    start = time.monotonic()
    yield
    SECONDS[request.node.name] += time.monotonic() - start


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = os.environ.get("PDMPOLICY_FUZZ_REPORT")
    if report:
        summary = {
            name: {"inputs": RAN[name], "seconds": round(SECONDS[name], 1)}
            for name in sorted(set(RAN) | set(SECONDS))
        }
        Path(report).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
