"""The policy set a repository declares in `policies/*.yml`, and running it.

- `config`: the files read, merged and checked against the policy registry.
- `toolchain`, `toolchain_section`: how the team's tools are called (built-in defaults and the
  `toolchain:` section that overrides them).
- `engine`: every enabled policy run over the environments, waivers applied.

The policies themselves live in `pdmpolicy.policies`, one module each.
"""
