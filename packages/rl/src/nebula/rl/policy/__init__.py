"""Policy specs (multi-agent) and the policy view of a trained module."""

from nebula.rl.policy.policy import Policy, PolicySpec

__all__ = ["Policy", "PolicySpec"]
