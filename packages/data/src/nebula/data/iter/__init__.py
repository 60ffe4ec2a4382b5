"""Parallel iterators: lazy, sharded streams served by worker actors (``ray.experimental.iter``).

``from_items``/``from_range``/``from_iterators``/``from_actors`` build a
``ParallelIterator``; its transformations run inside the shard actors, and
``gather_sync``/``gather_async``/``shards`` turn it into ``LocalIterator`` s to read.
"""

from __future__ import annotations

from nebula.data.iter._create import from_actors, from_items, from_iterators, from_range
from nebula.data.iter._local import LocalIterator
from nebula.data.iter._parallel import ParallelIterator
from nebula.data.iter._worker import ParallelIteratorWorker

__all__ = [
    "LocalIterator",
    "ParallelIterator",
    "ParallelIteratorWorker",
    "from_actors",
    "from_items",
    "from_iterators",
    "from_range",
]
