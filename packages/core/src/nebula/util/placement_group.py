"""Placement groups: reserve bundles of resources across nodes, then run work inside them.

``placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")`` asks the cluster to
set aside two bundles on two different nodes; ``pg.ready()`` is an ObjectRef that resolves
once they are reserved (a group that cannot fit yet waits). Tasks and actors run in a
bundle with ``scheduling_strategy=PlacementGroupSchedulingStrategy(pg, bundle_index)``;
with ``placement_group_capture_child_tasks=True`` the tasks and actors they start go to the
group as well, and ``get_current_placement_group()`` tells code which group it runs in.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nebula import _protocol as p
from nebula._api import runtime
from nebula._api.object_ref import ObjectRef
from nebula._ids import new_put_id, random_id


class PlacementGroup:
    """A handle to a placement group; picklable, so tasks can schedule into it too."""

    def __init__(
        self,
        pg_id: bytes,
        bundle_specs: Sequence[Mapping[str, float]],
        strategy: str = "PACK",
        _ready_ref: ObjectRef | None = None,
    ) -> None:
        self.id_bytes = pg_id
        self.bundle_specs = [dict(b) for b in bundle_specs]
        self.strategy = strategy
        self._ready_ref = _ready_ref

    @property
    def id(self) -> str:
        return self.id_bytes.hex()

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> ObjectRef:
        """An ObjectRef that resolves to True once every bundle is reserved."""
        if self._ready_ref is None:
            # A copy of the handle in another process: wait here, then hand back a ref.
            self.wait(None)
            return runtime.put(True)
        return self._ready_ref

    def wait(self, timeout_seconds: float | None = 30) -> bool:
        """Wait until the group is placed; False if ``timeout_seconds`` pass first."""
        if self._ready_ref is not None:
            ready, _ = runtime.wait([self._ready_ref], timeout=timeout_seconds)
            return bool(ready)
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            state = _describe(self.id_bytes).get("state")
            if state == "CREATED":
                return True
            if state == "REMOVED":
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PlacementGroup, (self.id_bytes, self.bundle_specs, self.strategy))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id_bytes == self.id_bytes

    def __hash__(self) -> int:
        return hash(self.id_bytes)

    def __repr__(self) -> str:
        return f"PlacementGroup({self.id}, {self.bundle_specs}, strategy={self.strategy})"


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    **_unused: Any,
) -> PlacementGroup:
    """Reserve ``bundles`` (dicts of resource amounts) on the cluster's nodes."""
    _validate(bundles, strategy, lifetime)
    cw = runtime.require_core_worker()
    cw.check_alive()
    pg_id = random_id(16)
    ready_id = new_put_id()
    ready_ref = ObjectRef(ready_id, cw.address)
    with cw.lock:
        cw.refs.owned(ready_id)
    cw.send(
        cw.control_store,
        p.CreatePlacementGroup(
            pg_id,
            tuple({k: float(v) for k, v in b.items()} for b in bundles),
            strategy,
            name,
            cw.job_id,
            cw.address,
            ready_id,
            detached=lifetime == "detached",
        ),
    )
    return PlacementGroup(pg_id, bundles, strategy, ready_ref)


def _validate(bundles: Any, strategy: Any, lifetime: Any) -> None:
    if not isinstance(bundles, (list, tuple)) or not bundles:
        raise ValueError(f"bundles must be a non-empty list of dicts, got {bundles!r}.")
    for index, bundle in enumerate(bundles):
        if not isinstance(bundle, Mapping) or not bundle:
            raise ValueError(
                f"bundle {index} must be a non-empty dict of resources, got {bundle!r}."
            )
        for name, amount in bundle.items():
            if not isinstance(name, str):
                raise TypeError(f"bundle {index}: resource names must be strings, got {name!r}.")
            if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or amount < 0:
                raise ValueError(
                    f"bundle {index}: {name} must be a non-negative number, got {amount!r}."
                )
        if all(amount == 0 for amount in bundle.values()):
            raise ValueError(f"bundle {index} asks for nothing: {bundle!r}.")
    from nebula._plugins.manager import placement_group_strategy_registry

    known = placement_group_strategy_registry().names()
    if strategy not in known:
        raise ValueError(f"Unknown placement strategy {strategy!r}; use one of {', '.join(known)}.")
    if lifetime not in (None, "detached"):
        raise ValueError(f"lifetime must be None or 'detached', got {lifetime!r}.")


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's bundles; work running in them is stopped.

    Returns once the group's actors are marked dead: calls made after it fail with
    ActorDiedError.
    """
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(
            f"remove_placement_group() expects a PlacementGroup, got "
            f"{type(placement_group).__name__}."
        )
    cw = runtime.require_core_worker()
    pg_id = placement_group.id_bytes
    cw.call(cw.control_store, lambda rid, to: p.RemovePlacementGroup(pg_id, rid, to))


def _query(pg_id: bytes | None = None, name: str | None = None) -> list[dict[str, Any]]:
    cw = runtime.require_core_worker()
    reply = cw.call(cw.control_store, lambda rid, to: p.GetPlacementGroup(rid, to, pg_id, name))
    assert isinstance(reply, p.PlacementGroupReply)
    return [
        {
            "placement_group_id": gid.hex(),
            "name": gname,
            "strategy": strategy,
            "state": state,
            "bundles": {i: dict(b) for i, b in enumerate(bundles)},
            "bundles_to_node_id": {i: n.hex() for i, n in enumerate(nodes) if n},
        }
        for gid, gname, strategy, state, bundles, nodes in reply.groups
    ]


def _describe(pg_id: bytes) -> dict[str, Any]:
    found = _query(pg_id)
    return found[0] if found else {}


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """State of one group, or of every group keyed by id."""
    if placement_group is not None:
        return _describe(placement_group.id_bytes)
    return {g["placement_group_id"]: g for g in _query()}


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the calling task or actor was scheduled in; None in a driver or
    outside any group. Pass it on to place more work in the same group."""
    from nebula._api.placement_context import current

    context = current()
    if context is None:
        return None
    return PlacementGroup(context.pg_id, context.bundles, context.strategy)


def get_placement_group(name: str) -> PlacementGroup:
    found = _query(name=name)
    if not found:
        raise ValueError(f"There is no placement group named {name!r}.")
    group = found[0]
    bundles = [group["bundles"][i] for i in sorted(group["bundles"])]
    return PlacementGroup(bytes.fromhex(group["placement_group_id"]), bundles, group["strategy"])


__all__ = [
    "PlacementGroup",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]
