"""IMPALA (asynchronous sampling, V-trace)."""

from nebula.rl._impala import IMPALA, Impala, IMPALAConfig, ImpalaConfig

__all__ = ["IMPALA", "IMPALAConfig", "Impala", "ImpalaConfig"]
