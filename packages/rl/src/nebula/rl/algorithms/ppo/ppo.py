"""PPO."""

from nebula.rl._ppo import PPO, PPOConfig

__all__ = ["PPO", "PPOConfig"]
