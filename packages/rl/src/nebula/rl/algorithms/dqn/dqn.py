"""DQN."""

from nebula.rl._dqn import DQN, DQNConfig

__all__ = ["DQN", "DQNConfig"]
