"""Input: the environment files, read, validated and turned into GitLab CI pipelines.

- `load`: one parse per file, safety limits on the parser's events, positions kept.
- `schema`: the shape of an environment file (a schema walk; cerberus words the errors).
- `model`: the typed `Environment` built from a valid document.
- `lower`: an environment -> the GitLab CI `Pipeline` pdmpolicy will render.
- `project`: a whole repository loaded (environments and policy set), or every problem.
- `gitref`: the same files as they were at a git ref (`--base`).
"""
