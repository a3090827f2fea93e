"""The policies by name: the built-ins (one module each) and those of installed plugins.

An explicit registry (as yamllint's `_RULES`): the names are part of the contract, and an
unknown name in `policies/*.yml` is an error that lists these. `REGISTRY` adds the policies
that installed packages declare in the entry point group `pdmpolicy.policies` (docs/plugins.md),
loaded on first use; a broken plugin is a `PluginError` naming it (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pdmpolicy.policies.base import Policy
from pdmpolicy.policies.effects_known import EffectsKnown
from pdmpolicy.policies.kctl_environment_match import KctlEnvironmentMatch
from pdmpolicy.policies.kubernetes_waits_for_migrations import KubernetesWaitsForMigrations
from pdmpolicy.policies.manifest_deadline import ManifestDeadline
from pdmpolicy.policies.manifest_no_job_retry import ManifestNoJobRetry
from pdmpolicy.policies.manifest_no_skip_variable import ManifestNoSkipVariable
from pdmpolicy.policies.manifest_single_job import ManifestSingleJob
from pdmpolicy.policies.no_auto_deploy_variables import NoAutoDeployVariables
from pdmpolicy.policies.one_step_at_a_time import OneStepAtATime
from pdmpolicy.policies.pdm_at_most_once import PdmAtMostOnce
from pdmpolicy.policies.pdm_executor_timeout import PdmExecutorTimeout
from pdmpolicy.policies.pdm_locked import PdmLocked
from pdmpolicy.policies.pdm_no_auto_retry import PdmNoAutoRetry
from pdmpolicy.policies.pdm_not_interruptible import PdmNotInterruptible
from pdmpolicy.policies.pdm_one_environment_per_database import PdmOneEnvironmentPerDatabase
from pdmpolicy.policies.plugins import PluginError, Registry
from pdmpolicy.policies.promotion_order import PromotionOrder
from pdmpolicy.policies.rollout_step_shape import RolloutStepShape
from pdmpolicy.policies.skip_flag_false import SkipFlagFalse
from pdmpolicy.policies.waiver_valid import WaiverValid

_POLICIES: tuple[Policy, ...] = (
    EffectsKnown(),
    KctlEnvironmentMatch(),
    KubernetesWaitsForMigrations(),
    ManifestDeadline(),
    ManifestNoJobRetry(),
    ManifestNoSkipVariable(),
    ManifestSingleJob(),
    NoAutoDeployVariables(),
    OneStepAtATime(),
    PdmAtMostOnce(),
    PdmExecutorTimeout(),
    PdmLocked(),
    PdmNoAutoRetry(),
    PdmNotInterruptible(),
    PdmOneEnvironmentPerDatabase(),
    PromotionOrder(),
    RolloutStepShape(),
    SkipFlagFalse(),
    WaiverValid(),
)

BUILTINS: Mapping[str, Policy] = MappingProxyType({policy.name: policy for policy in _POLICIES})
"""The policies that ship with pdmpolicy (docs/policies.md documents exactly these)."""

REGISTRY: Registry = Registry(BUILTINS)
"""Every policy: the built-ins, then the plugins' (loaded when first read)."""

__all__ = ["BUILTINS", "REGISTRY", "PluginError", "Policy", "Registry"]
