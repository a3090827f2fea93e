"""Output: the GitLab CI files pdmpolicy writes, and how they are written.

- `render`: the lowered pipelines as `ci/` files, deterministic bytes.
- `atomic`: every output file replaced whole or not at all.
"""
