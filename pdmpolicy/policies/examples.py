"""Example environment files for the policies' documentation.

Each policy's failing and fixed examples are these texts with one change, so the docs show
a whole file a reader can paste, and the tests run exactly what the docs show.
"""

from __future__ import annotations

GSTG = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: kubernetes-after-vm
  since: 2026-11-16
variables:
  DEPLOY_ENVIRONMENT: gstg
jobs:
  gstg-vm-post-deploy-migrations:
    runner: vm
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
  gstg-kubernetes-post-deploy-migrations:
    runner: kubernetes
    needs: [gstg-vm-post-deploy-migrations]
    kctl:
      environment: gstg
      stage: main
      action: upgrade
      dry_run: false
      wait_for_jobs: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
    timeout: 10h
"""

GSTG_FIRST = """\
environment: gstg
database: gstg
upstream: null
rollout:
  step: kubernetes-first
  since: 2026-11-16
jobs:
  gstg-kubernetes-post-deploy-migrations:
    runner: kubernetes
    kctl:
      environment: gstg
      action: upgrade
      wait_for_jobs: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
    timeout: 10h
  gstg-vm-post-deploy-migrations:
    runner: vm
    needs: [gstg-kubernetes-post-deploy-migrations]
    variables:
      RUN_POST_DEPLOY_MIGRATIONS: "true"
    timeout: 10h
"""

GSTG_CNY = """\
environment: gstg-cny
database: gstg
upstream: null
rollout:
  step: dry-run
  since: 2026-11-16
jobs:
  gstg-cny-kubernetes-dry-run:
    runner: kubernetes
    kctl:
      environment: gstg-cny
      stage: cny
      action: upgrade
      dry_run: true
"""


def changed(text: str, old: str, new: str) -> str:
    """`text` with exactly one occurrence of `old` replaced (fails loudly otherwise)."""
    if text.count(old) != 1:
        raise ValueError(f"example edit {old!r} matches {text.count(old)} times")
    return text.replace(old, new)


GSTG_CNY_EXECUTOR = """\
environment: gstg-cny
database: gstg
upstream: null
rollout:
  step: kubernetes-only
  since: 2026-11-16
jobs:
  gstg-cny-kubernetes-post-deploy-migrations:
    runner: kubernetes
    kctl:
      environment: gstg-cny
      stage: cny
      action: upgrade
      wait_for_jobs: true
      variables:
        SKIP_POST_DEPLOYMENT_MIGRATIONS: "false"
    timeout: 10h
"""
