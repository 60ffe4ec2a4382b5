"""Where one lease request should run: here, another node, or nowhere yet.

The node manager asks for each lease request it receives, the control store for each actor
it places; both pass plain views of the cluster. The policy comes from the plugin registry
by the name of the request's strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nebula._scheduler.resources import describe, fits
from nebula._scheduler.view import NodeView, PlacementRequest, Strategy, find_node, policy_name

__all__ = ["MAX_SPILLS", "Placement", "is_pinned", "place", "place_near"]

# A request passed on this many times is queued where it lands (if it can ever fit there),
# so stale views cannot bounce it between nodes forever.
MAX_SPILLS = 4


@dataclass(frozen=True, slots=True)
class Placement:
    node_id: str | None  # None: no node can take it now; wait and report
    reason: str = ""


def is_pinned(strategy: Strategy | None) -> bool:
    """Whether the strategy names a place (a node, a group) rather than a general policy."""
    return not isinstance(strategy, (str, type(None)))


def place_near(
    request: PlacementRequest,
    local: NodeView,
    others: Callable[[], Iterable[NodeView]],
    spill_count: int = 0,
) -> Placement:
    """``place`` for a request made on ``local``, listing the ``others`` only when it
    cannot stay there: a request settled where it landed, or one for the default policy
    that fits there now, stays without a look at the rest of a cluster of thousands.
    """
    if local.alive and local.node_id == request.local_node_id:
        if _settled(request, spill_count) and fits(request.resources, local.total):
            return Placement(local.node_id)
        # DefaultPolicy's first rule ("DEFAULT" always names it: registries refuse a
        # second policy under a taken name).
        default = policy_name(request.strategy) == "DEFAULT"
        if default and fits(request.resources, local.available):
            return Placement(local.node_id)
    return place(request, [local, *others()], spill_count)


def _settled(request: PlacementRequest, spill_count: int) -> bool:
    return spill_count >= MAX_SPILLS or (spill_count >= 1 and not is_pinned(request.strategy))


def place(request: PlacementRequest, nodes: Sequence[NodeView], spill_count: int = 0) -> Placement:
    """The node for ``request``; ``nodes`` include the local one, ``spill_count`` says how
    many nodes already passed the request on.

    A request that was passed on once stays where it landed when it can ever fit there
    (the sender chose this node on fresher information than a policy could recompute);
    a pinned one follows its policy until ``MAX_SPILLS`` hops.
    """
    from nebula._plugins.manager import scheduling_policy_registry

    local = find_node(nodes, request.local_node_id)
    settled = _settled(request, spill_count)
    if settled and local is not None and fits(request.resources, local.total):
        return Placement(local.node_id)
    name = policy_name(request.strategy)
    chosen = scheduling_policy_registry().get(name).select_node(request, nodes)
    if chosen is None:
        alive = sum(1 for node in nodes if node.alive)
        return Placement(
            None,
            f"no node can run a request for {describe(request.resources)} with strategy "
            f"{name} (the cluster has {alive} live node(s)); it will wait until one can.",
        )
    return Placement(chosen)
