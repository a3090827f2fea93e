"""pdmpolicy: make unsafe post-deployment migration pipelines impossible to merge.

Data flow (one module each): load -> schema -> model -> pipeline (lowering) -> analysis
-> policies (via engine) -> render / reports, driven by cli.
"""

__version__ = "0.1.0"
