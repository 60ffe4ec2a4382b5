"""IMPALA (asynchronous sampling, V-trace)."""

from nebula.rl._impala import IMPALA, IMPALAConfig, Impala, ImpalaConfig

__all__ = ["IMPALA", "IMPALAConfig", "Impala", "ImpalaConfig"]
