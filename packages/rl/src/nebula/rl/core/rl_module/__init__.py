"""Module specs and the default model config."""

from nebula.rl.core.rl_module.default_model_config import DefaultModelConfig
from nebula.rl.core.rl_module.rl_module import MultiRLModuleSpec, RLModule, RLModuleSpec

__all__ = ["DefaultModelConfig", "MultiRLModuleSpec", "RLModule", "RLModuleSpec"]
