"""Shared basics every stage uses: source locations, input errors, findings, names.

Nothing here imports from the rest of the package, so any stage may import it.
"""
