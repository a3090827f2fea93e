"""End-to-end: the rendered pipelines run by gitlab-ci-local (see docs/e2e.md)."""
