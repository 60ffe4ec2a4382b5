"""Placement groups: how a reserved bundle shows up in a node's resources, and the
strategies (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD) that choose nodes for bundles.

Reserving bundle ``i`` of group ``g`` with ``{"CPU": 2}`` moves 2 CPUs out of the node's
free pool and adds ``CPU_group_i_g = 2`` and ``CPU_group_g = 2``. A task scheduled into the
group asks for those names instead of ``CPU``, so ordinary resource scheduling puts it
on the node holding its bundle, inside the bundle's share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nebula._scheduler.resources import fits, subtract, total
from nebula._scheduler.view import NodeView

__all__ = [
    "PackStrategy",
    "SpreadStrategy",
    "StrictPackStrategy",
    "StrictSpreadStrategy",
    "bundle_resource",
    "bundle_resources",
    "is_group_resource",
    "rewrite_request",
]


def bundle_resource(name: str, pg_id: bytes, index: int | None) -> str:
    if index is None or index < 0:
        return f"{name}_group_{pg_id.hex()}"
    return f"{name}_group_{index}_{pg_id.hex()}"


def bundle_resources(pg_id: bytes, index: int, bundle: Mapping[str, float]) -> dict[str, float]:
    """The resources a node gains while it holds bundle ``index``."""
    out: dict[str, float] = {}
    for name, amount in bundle.items():
        out[bundle_resource(name, pg_id, index)] = amount
        wildcard = bundle_resource(name, pg_id, None)
        out[wildcard] = out.get(wildcard, 0.0) + amount
    # A zero-resource task in the group still needs a marker to find the bundle's node.
    marker = bundle_resource("bundle", pg_id, None)
    out[bundle_resource("bundle", pg_id, index)] = 1000.0
    out[marker] = out.get(marker, 0.0) + 1000.0
    return out


def rewrite_request(request: Mapping[str, float], pg_id: bytes, index: int) -> dict[str, float]:
    """A task's request, renamed to draw from the group's bundle(s)."""
    out = {bundle_resource(name, pg_id, index): amount for name, amount in request.items()}
    out[bundle_resource("bundle", pg_id, index)] = 0.001
    return out


def is_group_resource(name: str, pg_id: bytes | None = None) -> bool:
    if "_group_" not in name:
        return False
    return pg_id is None or name.endswith(pg_id.hex())


def _by_free_cpu(nodes: Sequence[NodeView]) -> list[NodeView]:
    """Alive nodes, the one with the most free CPU first."""
    return sorted((n for n in nodes if n.alive), key=lambda n: -n.available.get("CPU", 0.0))


def _on_one_node(
    bundles: Sequence[Mapping[str, float]], order: Sequence[NodeView]
) -> list[str] | None:
    needed = total(bundles)
    node = next((n for n in order if fits(needed, n.available)), None)
    return None if node is None else [node.node_id] * len(bundles)


def _greedy(
    bundles: Sequence[Mapping[str, float]], order: Sequence[NodeView], prefer_used: bool | None
) -> list[str] | None:
    """Each bundle on the first node of the candidates where it still fits.

    ``prefer_used``: True tries nodes already chosen first (pack), False tries unused
    nodes first (spread), None never reuses a node (strict spread).
    """
    remaining = {n.node_id: dict(n.available) for n in order}
    ids = [n.node_id for n in order]
    chosen: list[str] = []
    for bundle in bundles:
        unused = [n for n in ids if n not in chosen]
        used = list(dict.fromkeys(chosen))
        if prefer_used is None:
            candidates = unused
        elif prefer_used:
            candidates = used + unused
        else:
            candidates = unused + used
        found = next((n for n in candidates if fits(bundle, remaining[n])), None)
        if found is None:
            return None
        subtract(remaining[found], bundle)
        chosen.append(found)
    return chosen


class PackStrategy:
    """All bundles on one node if they fit there, else on as few nodes as it takes."""

    def select_nodes(
        self, bundles: Sequence[Mapping[str, float]], nodes: Sequence[NodeView]
    ) -> list[str] | None:
        order = _by_free_cpu(nodes)
        return _on_one_node(bundles, order) or _greedy(bundles, order, prefer_used=True)


class StrictPackStrategy:
    """All bundles on one node, or wait until one node has room for all of them."""

    def select_nodes(
        self, bundles: Sequence[Mapping[str, float]], nodes: Sequence[NodeView]
    ) -> list[str] | None:
        return _on_one_node(bundles, _by_free_cpu(nodes))


class SpreadStrategy:
    """Each bundle on a different node where possible, doubling up only when needed."""

    def select_nodes(
        self, bundles: Sequence[Mapping[str, float]], nodes: Sequence[NodeView]
    ) -> list[str] | None:
        return _greedy(bundles, _by_free_cpu(nodes), prefer_used=False)


class StrictSpreadStrategy:
    """Each bundle on a different node, or wait until there are enough nodes with room."""

    def select_nodes(
        self, bundles: Sequence[Mapping[str, float]], nodes: Sequence[NodeView]
    ) -> list[str] | None:
        return _greedy(bundles, _by_free_cpu(nodes), prefer_used=None)
