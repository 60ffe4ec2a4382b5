"""Which placement group new work goes to when its caller runs inside one.

A task or actor scheduled with ``PlacementGroupSchedulingStrategy(pg,
placement_group_capture_child_tasks=True)`` captures its children: the tasks and actors it
starts without a scheduling strategy of their own are placed in any bundle of ``pg`` too, and
capture theirs in turn. This is how a library reserves everything a job will need up front
(one bundle for the job's driver actor, one per worker it starts) without every nested call
naming the group. A child given an explicit strategy (``"DEFAULT"`` included) escapes.
"""

from __future__ import annotations

from typing import Any

from nebula import _protocol as p


def current() -> p.PlacementGroupContext | None:
    """The placement group the calling task or actor runs in (None in a driver)."""
    from nebula._worker.executor import current_executor

    executor = current_executor()
    return executor.placement_group if executor is not None else None


def resolve(strategy: Any) -> tuple[Any, p.PlacementGroupContext | None]:
    """The strategy a new task or actor is scheduled with, and the context its spec carries."""
    parent = current()
    if strategy is None and parent is not None and parent.capture_child_tasks:
        from nebula.util.placement_group import PlacementGroup
        from nebula.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = PlacementGroup(parent.pg_id, parent.bundles, parent.strategy)
        strategy = PlacementGroupSchedulingStrategy(group, -1, True)
    if getattr(strategy, "policy_name", None) != "PLACEMENT_GROUP":
        return strategy, None
    capture = strategy.placement_group_capture_child_tasks
    if capture is None:
        # As in Ray: an explicit group without a say inherits the caller's setting.
        capture = parent is not None and parent.capture_child_tasks
    group = strategy.placement_group
    context = p.PlacementGroupContext(
        group.id_bytes,
        tuple(dict(b) for b in group.bundle_specs),
        group.strategy,
        bool(capture),
    )
    return strategy, context
