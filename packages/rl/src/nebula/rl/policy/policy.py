"""``PolicySpec`` (one entry of ``multi_agent(policies=...)``) and ``Policy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Policy", "PolicySpec"]


@dataclass
class PolicySpec:
    """A policy of a multi-agent setup; spaces default to those of the agents mapped to it,
    ``config`` holds model settings that differ from the algorithm's (``{"model": {...}}`` or
    ``model_config`` keys)."""

    policy_class: type | None = None
    observation_space: Any = None
    action_space: Any = None
    config: dict[str, Any] | None = None


class Policy:
    """One trained module seen as a policy: act, read and write its weights."""

    def __init__(self, algorithm: Any, policy_id: str) -> None:
        self._algorithm = algorithm
        self.policy_id = policy_id
        spec = algorithm.module_specs[policy_id]
        self.observation_space = spec.observation_space
        self.action_space = spec.action_space

    @property
    def model(self) -> Any:
        return self._algorithm.get_module(self.policy_id)

    def compute_single_action(
        self, obs: Any = None, state: Any = None, *, explore: bool | None = None, **kwargs: Any
    ) -> tuple[Any, list, dict]:
        action, _, extras = self._algorithm.compute_single_action(
            obs, policy_id=self.policy_id, explore=explore, full_fetch=True
        )
        return action, [], extras

    def compute_actions(
        self, obs_batch: Any, explore: bool | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, list, dict]:
        actions = [self.compute_single_action(o, explore=explore)[0] for o in obs_batch]
        return np.asarray(actions), [], {}

    def get_weights(self) -> dict[str, np.ndarray]:
        return self._algorithm.get_weights([self.policy_id])[self.policy_id]

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self._algorithm.set_weights({self.policy_id: weights})
