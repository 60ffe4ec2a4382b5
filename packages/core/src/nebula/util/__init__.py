"""Helpers built on the core API: actor pools, a distributed queue, a multiprocessing Pool."""

from __future__ import annotations

from nebula.util import multiprocessing
from nebula.util._actor_pool import ActorPool
from nebula.util._queue import Empty, Full, Queue

__all__ = ["ActorPool", "Empty", "Full", "Queue", "multiprocessing"]
