"""Where a lease request should run: here, another node, or nowhere yet.

A pure function of the request and the node manager's view of the cluster, so it can be
tested without processes. The policy comes from the plugin registry by the strategy's name.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nebula import _protocol as p

# A request passed on this many times is queued where it lands (if it can ever fit there),
# so stale views cannot bounce it between nodes forever.
MAX_SPILLS = 4


@dataclass(frozen=True)
class Placement:
    node_id: bytes | None  # None: no node can take it now; wait and report
    reason: str = ""


def strategy_name(strategy: Any) -> str:
    if strategy is None:
        return "DEFAULT"
    if isinstance(strategy, str):
        return strategy
    return str(getattr(strategy, "policy_name", "DEFAULT"))


def place(
    request: p.RequestLease,
    local_node_id: bytes,
    local_total: Mapping[str, float],
    local_available: Mapping[str, float],
    cluster: Mapping[bytes, tuple[p.NodeInfoMsg, Mapping[str, float]]],
) -> Placement:
    from nebula._node_manager import resources as res
    from nebula._plugins.manager import scheduling_policy_registry
    from nebula._plugins.scheduling import NodeView

    name = strategy_name(request.strategy)
    pinned = not isinstance(request.strategy, (str, type(None)))
    if request.spill_count >= 1 and not pinned and res.fits(request.resources, local_total):
        return Placement(local_node_id)
    if request.spill_count >= MAX_SPILLS and res.fits(request.resources, local_total):
        return Placement(local_node_id)
    views = [NodeView(local_node_id.hex(), dict(local_total), dict(local_available))]
    for node_id, (info, available) in cluster.items():
        if node_id != local_node_id:
            views.append(NodeView(node_id.hex(), info.resources, available, alive=info.alive))
    policy = scheduling_policy_registry().get(name)
    if pinned and _takes_strategy(policy):
        chosen = policy.select_node(  # type: ignore[call-arg]
            request.resources, views, local_node_id.hex(), strategy=request.strategy
        )
    else:
        chosen = policy.select_node(request.resources, views, local_node_id.hex())
    if chosen is None:
        alive = sum(1 for v in views if v.alive)
        return Placement(
            None,
            f"no node can run a request for {res.describe(request.resources)} with strategy "
            f"{name} (the cluster has {alive} live node(s)); it will wait until one can.",
        )
    return Placement(bytes.fromhex(chosen))


@functools.cache
def _takes_strategy_of(policy_type: Any) -> bool:
    return "strategy" in inspect.signature(policy_type.select_node).parameters


def _takes_strategy(policy: object) -> bool:
    """Policies for parametrized strategies take the strategy object; named ones need not."""
    return _takes_strategy_of(type(policy))  # type: ignore[arg-type]
