"""Placement-group bundle resources: how a bundle shows up in a node's resources.

Reserving bundle ``i`` of group ``g`` with ``{"CPU": 2}`` moves 2 CPUs out of the node's
free pool and adds ``CPU_group_i_g = 2`` and ``CPU_group_g = 2``. A task scheduled into the
group asks for those names instead of ``CPU``, so ordinary resource scheduling puts it
on the node holding its bundle, inside the bundle's share.
"""

from __future__ import annotations

from collections.abc import Mapping

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


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
