"""What a scheduling policy sees and must answer: plain data, so policies test without a
cluster. Plugins implement these protocols (through ``nebula.plugins``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from nebula._scheduler.resources import fits


@runtime_checkable
class StrategyObject(Protocol):
    """A parametrized strategy (``NodeAffinitySchedulingStrategy(...)``, a plugin's own):
    ``policy_name`` names the registered policy that places it."""

    @property
    def policy_name(self) -> str: ...


Strategy: TypeAlias = "str | StrategyObject"
"""What a user passes as ``scheduling_strategy=``: a policy name, or a strategy object."""


def policy_name(strategy: Strategy | None) -> str:
    """The registered policy that places ``strategy`` (None is ``"DEFAULT"``)."""
    if strategy is None:
        return "DEFAULT"
    if isinstance(strategy, str):
        return strategy
    return strategy.policy_name


@dataclass(frozen=True, slots=True)
class NodeView:
    """A snapshot of one node as the scheduler knows it when placing a request."""

    node_id: str
    total: Mapping[str, float]
    available: Mapping[str, float]
    alive: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One task's or actor's request: its resources, the user's strategy and where the
    request comes from (the node of the process that submitted it, when known)."""

    resources: Mapping[str, float]
    strategy: Strategy = "DEFAULT"
    local_node_id: str | None = None


@runtime_checkable
class SchedulingPolicy(Protocol):
    """Chooses the node a task or actor should go to.

    Implementations should prefer a node where the request fits in ``available`` now, fall
    back to one where it fits in ``total`` (it will wait there for resources), and return
    None only when no alive node could ever run it, which the runtime reports as infeasible.
    ``request.strategy`` is the user's strategy object, for policies that take parameters.
    """

    def select_node(self, request: PlacementRequest, nodes: Sequence[NodeView]) -> str | None: ...


@runtime_checkable
class PlacementGroupStrategy(Protocol):
    """Chooses a node for each bundle of a placement group, all at once.

    Returns one node id per bundle, in bundle order, using only alive nodes where the
    bundles fit in ``available`` together; None when they do not fit now (the group then
    waits and is tried again as resources free up).
    """

    def select_nodes(
        self, bundles: Sequence[Mapping[str, float]], nodes: Sequence[NodeView]
    ) -> list[str] | None: ...


def ready_nodes(request: Mapping[str, float], nodes: Sequence[NodeView]) -> list[NodeView]:
    """Alive nodes that could start ``request`` right now."""
    return [node for node in nodes if node.alive and fits(request, node.available)]


def feasible_nodes(request: Mapping[str, float], nodes: Sequence[NodeView]) -> list[NodeView]:
    """Alive nodes big enough for ``request`` once their running work finishes."""
    return [node for node in nodes if node.alive and fits(request, node.total)]


def find_node(nodes: Sequence[NodeView], node_id: str | None) -> NodeView | None:
    return next((node for node in nodes if node.node_id == node_id), None)
