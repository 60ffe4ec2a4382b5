"""``MultiRLModuleSpec``: one module spec per module id."""

from nebula.rl.core.rl_module.rl_module import MultiRLModuleSpec

__all__ = ["MultiRLModuleSpec"]
