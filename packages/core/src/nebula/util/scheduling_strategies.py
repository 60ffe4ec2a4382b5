"""Scheduling strategies for ``scheduling_strategy=`` besides the named ``"DEFAULT"``/``"SPREAD"``.

Each strategy names the registered policy that places it (``policy_name``); policies are
plugins (``nebula_register_scheduling_policies``), so a package can add its own strategy
class with its own policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id``.

    While the node is alive and has the resources at all, the work runs there, waiting
    for them when the node is busy. ``soft``: when the node is gone or could never fit the
    work, it runs anywhere else (else it waits, and is reported). ``_spill_on_unavailable``
    (with ``soft``): also run elsewhere when the node is busy now.
    """

    node_id: str
    soft: bool = False
    _spill_on_unavailable: bool = False
    policy_name = "NODE_AFFINITY"

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, str) or not self.node_id:
            raise ValueError(f"node_id must be a node's hex id, got {self.node_id!r}.")
        try:
            bytes.fromhex(self.node_id)
        except ValueError:
            raise ValueError(f"node_id must be a node's hex id, got {self.node_id!r}.") from None


@dataclass(frozen=True)
class PlacementGroupSchedulingStrategy:
    """Run inside a placement group's bundle (``-1``: any bundle of the group)."""

    placement_group: Any
    placement_group_bundle_index: int = -1
    placement_group_capture_child_tasks: bool | None = None
    policy_name = "PLACEMENT_GROUP"

    def __post_init__(self) -> None:
        from nebula.util.placement_group import PlacementGroup

        if not isinstance(self.placement_group, PlacementGroup):
            raise TypeError(
                "placement_group must be a PlacementGroup from nebula.util.placement_group(), "
                f"got {type(self.placement_group).__name__}."
            )
        index = self.placement_group_bundle_index
        count = len(self.placement_group.bundle_specs)
        if not isinstance(index, int) or not -1 <= index < count:
            raise ValueError(
                f"placement_group_bundle_index {index!r} is out of range: the group has "
                f"{count} bundle(s) (use 0..{count - 1}, or -1 for any)."
            )


__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]
