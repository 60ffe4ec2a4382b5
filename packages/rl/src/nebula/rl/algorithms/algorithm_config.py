"""``AlgorithmConfig``: the chained settings builder."""

from nebula.rl._config import AlgorithmConfig
from nebula.rl._settings import NOT_PROVIDED as NotProvided

__all__ = ["AlgorithmConfig", "NotProvided"]
