"""What a scheduling policy sees and must answer; pure data, so policies test without a cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["FIT_EPSILON", "NodeView", "SchedulingPolicy", "feasible_nodes", "fits", "ready_nodes"]

FIT_EPSILON = 1e-6
"""Slack for fractional requests: ten tasks of 0.1 CPU must fit on one CPU despite rounding."""


@dataclass(frozen=True, slots=True)
class NodeView:
    """A snapshot of one node as the scheduler knows it when placing a request."""

    node_id: str
    total: Mapping[str, float]
    available: Mapping[str, float]
    alive: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class SchedulingPolicy(Protocol):
    """Chooses the node a task or actor should go to.

    Implementations should prefer a node where ``request`` fits in ``available`` now, fall
    back to one where it fits in ``total`` (it will wait there for resources), and return
    None only when no alive node could ever run it, which the runtime reports as infeasible.
    """

    def select_node(
        self,
        request: Mapping[str, float],
        nodes: Sequence[NodeView],
        local_node_id: str | None,
    ) -> str | None: ...


def fits(request: Mapping[str, float], resources: Mapping[str, float]) -> bool:
    """Whether ``resources`` cover ``request``; a resource the node lacks counts as zero."""
    return all(resources.get(name, 0.0) + FIT_EPSILON >= amount for name, amount in request.items())


def ready_nodes(request: Mapping[str, float], nodes: Sequence[NodeView]) -> list[NodeView]:
    """Alive nodes that could start ``request`` right now."""
    return [node for node in nodes if node.alive and fits(request, node.available)]


def feasible_nodes(request: Mapping[str, float], nodes: Sequence[NodeView]) -> list[NodeView]:
    """Alive nodes big enough for ``request`` once their running work finishes."""
    return [node for node in nodes if node.alive and fits(request, node.total)]
