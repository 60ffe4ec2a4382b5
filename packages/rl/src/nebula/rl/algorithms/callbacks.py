"""The older name of the callbacks base class."""

from nebula.rl.callbacks.callbacks import RLlibCallback

DefaultCallbacks = RLlibCallback

__all__ = ["DefaultCallbacks"]
