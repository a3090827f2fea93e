"""pdmpolicy: make unsafe post-deployment migration pipelines impossible to merge.

The subpackages follow the data flow: `environments` (read, validate, lower to GitLab CI)
-> `gitlab` (the pipeline model, any GitLab CI file, what each job does) -> `prover` ->
`policies` run by `policyset` -> `output` (rendered `ci/`) and `reports`; `manifests` and
`rollout` beside them, `cli` drives it all, `core` holds what every stage shares.
"""

__version__ = "0.1.0"
