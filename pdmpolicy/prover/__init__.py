"""Proofs of `pdm-at-most-once` on GitLab CI pipelines.

- `model`: what one run of a pipeline can do, event by event (GitLab's processing rules).
- `explorer`: brute force over every run of a small pipeline; the test oracle.
- `prover`: the fast decision procedure, with a counterexample for every violation.
"""
