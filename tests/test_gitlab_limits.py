"""The GitLab CI reader's size bound admits the largest file pdmpolicy itself writes.

`verify ci/postdeploy-migrations.yml` must read the parent pipeline `render` writes for a
fleet of 2,000 environments (one trigger job each). Emitting 2,000 trigger jobs takes
seconds, so the parent is rendered for 10 and 20 environments, read back with the real
reader, and its growth per environment carried to 2,000; the hostile corpus holds the
other side (`generated/gitlab-too-many-values`: a file past the bound is refused).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from pdmpolicy.environments.lower import parent
from pdmpolicy.environments.model import Environment
from pdmpolicy.gitlab.yaml import MAX_BYTES, MAX_NODES, _Builder, _feed_libyaml
from pdmpolicy.output.render import emit

FLEET = 2_000


def _rendered_parent(count: int) -> str:
    # `parent` reads only each environment's name and file.
    environments = [
        cast(Environment, SimpleNamespace(name=f"prd{i:04d}", path=f"environments/prd{i:04d}.yml"))
        for i in range(count)
    ]
    return emit(parent(environments))


def _values(text: str) -> int:
    builder = _Builder("ci/postdeploy-migrations.yml")
    _feed_libyaml(builder, "ci/postdeploy-migrations.yml", text)
    assert len(builder.documents) == 1
    return builder.nodes


def test_the_parent_pipeline_of_two_thousand_environments_fits_the_readers_bounds() -> None:
    small, large = _rendered_parent(10), _rendered_parent(20)
    per_environment = (_values(large) - _values(small)) // 10
    fixed = _values(small) - 10 * per_environment
    assert per_environment == 21  # what the bound's comment counts on
    assert fixed + FLEET * per_environment <= MAX_NODES
    bytes_per_environment = (len(large.encode()) - len(small.encode())) / 10
    assert len(small.encode()) + (FLEET - 10) * bytes_per_environment <= MAX_BYTES
