"""Nebula RL: reinforcement learning on gymnasium environments, sampled by Nebula actors.

Scripts written for Ray 2.60's RLlib port by changing ``ray.rllib`` to ``nebula.rl``::

    from nebula.rl.algorithms.ppo import PPOConfig

    algo = PPOConfig().environment("CartPole-v1").build_algo()
    print(algo.train()["env_runners"]["episode_return_mean"])

The public names load on first use: every Nebula process loads this package's plugin, and
only the processes that use RL should pay for importing torch and gymnasium.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.rl._algorithm import Algorithm
    from nebula.rl._config import AlgorithmConfig
    from nebula.rl._dqn import DQN, DQNConfig
    from nebula.rl._envs import EnvContext, register_env
    from nebula.rl._impala import IMPALA, IMPALAConfig
    from nebula.rl._ppo import PPO, PPOConfig
    from nebula.rl._sac import SAC, SACConfig
    from nebula.rl._settings import ConfigError
    from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig
    from nebula.rl.core.rl_module.rl_module import RLModuleSpec
    from nebula.rl.env.multi_agent_env import MultiAgentEnv
    from nebula.rl.policy.policy import PolicySpec

_EXPORTS = {
    "Algorithm": "_algorithm",
    "AlgorithmConfig": "_config",
    "ConfigError": "_settings",
    "DQN": "_dqn",
    "DQNConfig": "_dqn",
    "DefaultModelConfig": "core.rl_module.default_model_config",
    "EnvContext": "_envs",
    "IMPALA": "_impala",
    "IMPALAConfig": "_impala",
    "MultiAgentEnv": "env.multi_agent_env",
    "PPO": "_ppo",
    "PPOConfig": "_ppo",
    "PolicySpec": "policy.policy",
    "RLModuleSpec": "core.rl_module.rl_module",
    "SAC": "_sac",
    "SACConfig": "_sac",
    "register_env": "_envs",
}

__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "ConfigError",
    "DQN",
    "DQNConfig",
    "DefaultModelConfig",
    "EnvContext",
    "IMPALA",
    "IMPALAConfig",
    "MultiAgentEnv",
    "PPO",
    "PPOConfig",
    "PolicySpec",
    "RLModuleSpec",
    "SAC",
    "SACConfig",
    "register_env",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nebula.rl' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nebula.rl.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
