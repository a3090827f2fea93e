"""Documentation generated from the code, kept current by tests.

- `formats`: docs/ reference tables and `schemas/*.json` (`python -m pdmpolicy.docgen.formats`).
- `policydocs`: docs/policies.md (`python -m pdmpolicy.docgen.policydocs > docs/policies.md`).
"""
