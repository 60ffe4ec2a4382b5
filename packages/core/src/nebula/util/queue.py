"""``nebula.util.queue``: the distributed queue under its familiar module path."""

from __future__ import annotations

from nebula.util._queue import Empty, Full, Queue

__all__ = ["Empty", "Full", "Queue"]
