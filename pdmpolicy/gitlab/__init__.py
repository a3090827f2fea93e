"""Reading GitLab CI files (emitted by pdmpolicy or hand-written) into `pipeline.Pipeline`s."""

from pdmpolicy.gitlab.loader import load_pipelines

__all__ = ["load_pipelines"]
