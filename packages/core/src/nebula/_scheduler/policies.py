"""Nebula's built-in policies for tasks and actors, registered by the builtin plugin."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from nebula._scheduler.resources import fits
from nebula._scheduler.view import (
    NodeView,
    PlacementRequest,
    feasible_nodes,
    find_node,
    ready_nodes,
)

__all__ = ["DefaultPolicy", "NodeAffinityPolicy", "SpreadPolicy"]


class DefaultPolicy:
    """Keep work local while it fits, else go where the most CPU is free.

    Staying local avoids moving arguments and results across the network; overflowing to
    the node with the most free CPU keeps a busy node from queueing what others could run.
    """

    def select_node(self, request: PlacementRequest, nodes: Sequence[NodeView]) -> str | None:
        ready = ready_nodes(request.resources, nodes)
        local = find_node(ready, request.local_node_id)
        if local is not None:
            return local.node_id
        if ready:
            return max(ready, key=lambda node: node.available.get("CPU", 0.0)).node_id
        feasible = feasible_nodes(request.resources, nodes)
        fallback = find_node(feasible, request.local_node_id) or next(iter(feasible), None)
        return fallback.node_id if fallback else None


class SpreadPolicy:
    """Deal requests round-robin over the nodes that can take them now.

    Round-robin, as Ray's SPREAD does, rather than "least loaded": a burst of submissions is
    placed from one snapshot of the cluster, and a snapshot in which one node looks a little
    busier would send the whole burst to the other node.
    """

    def __init__(self) -> None:
        self._turn = itertools.count()

    def select_node(self, request: PlacementRequest, nodes: Sequence[NodeView]) -> str | None:
        candidates = ready_nodes(request.resources, nodes) or feasible_nodes(
            request.resources, nodes
        )
        if not candidates:
            return None
        ordered = sorted(candidates, key=lambda node: node.node_id)
        return ordered[next(self._turn) % len(ordered)].node_id


class NodeAffinityPolicy:
    """Pin work to one node (``NodeAffinitySchedulingStrategy``). A busy node keeps the
    work, which waits there for its resources; a soft pin to a node that is gone or can
    never fit the request falls back to the default placement (with
    ``_spill_on_unavailable``, a busy node's too).

    A hard pin to a node that is gone or can never fit the request returns None: the
    request waits (and is reported) rather than running somewhere it was told not to.
    """

    def __init__(self) -> None:
        self._fallback = DefaultPolicy()

    def select_node(self, request: PlacementRequest, nodes: Sequence[NodeView]) -> str | None:
        target = getattr(request.strategy, "node_id", None)
        soft = bool(getattr(request.strategy, "soft", False))
        spill = soft and bool(getattr(request.strategy, "_spill_on_unavailable", False))
        node = find_node([n for n in nodes if n.alive], target)
        usable = node is not None and fits(request.resources, node.total)
        if node is not None and usable and (not spill or fits(request.resources, node.available)):
            return node.node_id
        if soft:
            return self._fallback.select_node(request, nodes)
        return None
