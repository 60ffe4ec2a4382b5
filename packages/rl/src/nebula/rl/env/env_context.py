"""``EnvContext``: the env config dict handed to env creators and classes."""

from nebula.rl._envs import EnvContext

__all__ = ["EnvContext"]
