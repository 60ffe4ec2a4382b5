"""The algorithms and their configs (each imports torch when first used)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Algorithm": "_algorithm",
    "AlgorithmConfig": "_config",
    "PPO": "_ppo",
    "PPOConfig": "_ppo",
    "DQN": "_dqn",
    "DQNConfig": "_dqn",
    "SAC": "_sac",
    "SACConfig": "_sac",
    "IMPALA": "_impala",
    "IMPALAConfig": "_impala",
    "Impala": "_impala",
    "ImpalaConfig": "_impala",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nebula.rl.algorithms' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nebula.rl.{module}"), name)
