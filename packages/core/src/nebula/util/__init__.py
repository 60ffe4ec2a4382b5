"""Helpers built on the core API: actor pools, a distributed queue, a multiprocessing Pool,
results as they complete, custom serializers."""

from __future__ import annotations

from nebula._api.runtime import list_named_actors
from nebula._serialization import deregister_serializer, register_serializer
from nebula.util import check_serialize, kv, multiprocessing, scheduling_strategies
from nebula.util._actor_pool import ActorPool
from nebula.util._completion import as_completed, map_unordered
from nebula.util._node import get_node_ip_address
from nebula.util._queue import Empty, Full, Queue
from nebula.util.check_serialize import inspect_serializability
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
    "as_completed",
    "check_serialize",
    "deregister_serializer",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "inspect_serializability",
    "kv",
    "list_named_actors",
    "map_unordered",
    "multiprocessing",
    "placement_group",
    "placement_group_table",
    "register_serializer",
    "remove_placement_group",
    "scheduling_strategies",
]
