"""Helpers built on the core API: actor pools, a distributed queue, a multiprocessing Pool."""

from __future__ import annotations

from nebula._api.runtime import list_named_actors
from nebula.util import kv, multiprocessing, scheduling_strategies
from nebula.util._actor_pool import ActorPool
from nebula.util._queue import Empty, Full, Queue
from nebula.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "ActorPool",
    "Empty",
    "Full",
    "PlacementGroup",
    "Queue",
    "get_current_placement_group",
    "get_placement_group",
    "kv",
    "list_named_actors",
    "multiprocessing",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
    "scheduling_strategies",
]
