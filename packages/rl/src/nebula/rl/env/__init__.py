"""Environments: the multi-agent interface and env contexts."""

from nebula.rl._envs import EnvContext
from nebula.rl.env.multi_agent_env import MultiAgentEnv

__all__ = ["EnvContext", "MultiAgentEnv"]
