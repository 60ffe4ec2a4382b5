"""Callbacks run by the algorithm in the driver."""

from nebula.rl.callbacks.callbacks import RLlibCallback

__all__ = ["RLlibCallback"]
