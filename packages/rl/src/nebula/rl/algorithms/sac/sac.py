"""SAC."""

from nebula.rl._sac import SAC, SACConfig

__all__ = ["SAC", "SACConfig"]
