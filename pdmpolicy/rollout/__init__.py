"""The rollout as a workflow: where every environment is, what may move next and when
(`plan`), the rewrite of one environment file for another step (`edit`), and a new
environment file (`init`). The policy set decides; these modules only compute from the
same settings the policies read, and `advance`/`init` check the result with the engine.
"""
