"""Rendered Kubernetes manifests (the dry-run output): read, the migrations Job found, each
file tied to an environment and its database. The `manifest-*` policies check the result.

`read.py` reads files, directories and stdin; `recognise.py` finds the migrations Job and
what reaches its containers; `target.py` decides each file's environment; `model.py` holds
the values the policies are handed (`Context.manifests`). docs/manifests.md explains it all.
"""
