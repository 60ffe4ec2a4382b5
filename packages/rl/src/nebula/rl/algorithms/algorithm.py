"""``Algorithm``: the base class of every algorithm."""

from nebula.rl._algorithm import Algorithm

__all__ = ["Algorithm"]
