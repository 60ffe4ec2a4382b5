"""Placement groups in the control store: choosing nodes for bundles, then reserving them.

Placement is two-phase: bundles are assigned to nodes from the latest view of free
resources, each node is asked to reserve its bundle, and only when every reservation
succeeds is the group created. A failed round releases what it got and tries again on the
next tick, so a group that cannot fit yet waits instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nebula import _protocol as p
from nebula._plugins.manager import placement_group_strategy_registry
from nebula._scheduler import resources as res
from nebula._scheduler.bundles import bundle_resources, is_group_resource
from nebula._scheduler.view import NodeView

if TYPE_CHECKING:
    from nebula._control_store.persistence import TableStore
    from nebula._control_store.server import ControlStore

logger = logging.getLogger(__name__)


@dataclass
class Group:
    msg: p.CreatePlacementGroup
    state: str = "PENDING"  # PENDING, CREATED, REMOVED
    nodes: list[bytes | None] = field(default_factory=list)
    replies: dict[int, bool] = field(default_factory=dict)
    in_flight: bool = False


class PlacementGroups:
    def __init__(self, store: ControlStore) -> None:
        self.store = store
        self.groups: dict[bytes, Group] = {}

    def create(self, msg: p.CreatePlacementGroup) -> None:
        self.groups[msg.pg_id] = Group(msg)
        self._save(self.groups[msg.pg_id])
        self.try_place(self.groups[msg.pg_id])

    def is_pending(self, strategy: Any) -> bool:
        """Whether ``strategy`` places work in a group whose bundles are not reserved yet."""
        placement_group = getattr(strategy, "placement_group", None)
        group = self.groups.get(getattr(placement_group, "id_bytes", b""))
        return group is not None and group.state == "PENDING"

    def _save(self, group: Group) -> None:
        if self.store.tables is not None:
            self.store.tables.put("placement_group", group.msg.pg_id, group)

    def recover(self, tables: TableStore) -> None:
        for group in tables.load("placement_group"):
            if group.in_flight:  # a reservation round was cut short: run it again
                group.in_flight = False
                group.state = "PENDING" if group.state != "REMOVED" else group.state
            self.groups[group.msg.pg_id] = group

    def tick(self) -> None:
        for group in self.groups.values():
            if group.state == "PENDING" and not group.in_flight:
                self.try_place(group)

    def try_place(self, group: Group) -> None:
        store = self.store
        views = [
            NodeView(n.info.node_id.hex(), n.info.resources, n.available)
            for n in store._alive_nodes()
        ]
        strategy = placement_group_strategy_registry().get(group.msg.strategy)
        chosen = strategy.select_nodes(group.msg.bundles, views)
        if chosen is None:
            return
        nodes = [bytes.fromhex(node_id) for node_id in chosen]
        group.nodes = list(nodes)
        group.replies = {}
        group.in_flight = True
        for index, (node_id, bundle) in enumerate(zip(nodes, group.msg.bundles)):
            store.endpoint.send(
                store.nodes[node_id].info.address,
                p.ReserveBundle(group.msg.pg_id, index, dict(bundle), store.endpoint.address),
            )

    def on_reserved(self, msg: p.BundleReserved) -> None:
        group = self.groups.get(msg.pg_id)
        if group is None or not group.in_flight:
            return
        group.replies[msg.index] = msg.ok
        if msg.ok:
            node = self.store.nodes.get(msg.node_id)
            if node is not None:
                bundle = group.msg.bundles[msg.index]
                res.subtract(node.available, bundle)
                res.add(node.available, bundle_resources(msg.pg_id, msg.index, bundle))
                self.store.membership.available_changed(node)
        if len(group.replies) < len(group.msg.bundles):
            return
        group.in_flight = False
        if group.state == "REMOVED":
            self._release(group)
        elif all(group.replies.values()):
            group.state = "CREATED"
            self._save(group)
            self._announce(group, error=None)
            self.store.announce_view_change()
        else:
            # Some node was busier than its last heartbeat said: give back and retry.
            self._release(group)
            group.nodes = []

    def remove(self, pg_id: bytes) -> None:
        group = self.groups.get(pg_id)
        if group is None or group.state == "REMOVED":
            return
        was_pending = group.state == "PENDING"
        group.state = "REMOVED"
        self._save(group)
        if not group.in_flight:
            self._release(group)
        if was_pending:
            self._announce(group, error="the placement group was removed before it was placed")

    def remove_job_groups(self, job_id: int) -> None:
        for group in list(self.groups.values()):
            if group.msg.job_id == job_id and not group.msg.detached:
                self.remove(group.msg.pg_id)

    def _release(self, group: Group) -> None:
        pg_id = group.msg.pg_id
        for index, node_id in enumerate(group.nodes):
            node = self.store.nodes.get(node_id) if node_id is not None else None
            if node is not None and group.replies.get(index, group.state != "PENDING"):
                # Count the bundle free again now, so the next group can use it at once.
                res.add(node.available, group.msg.bundles[index])
                self.store.membership.available_changed(node)
        for node_id in {n for n in group.nodes if n is not None}:
            node = self.store.nodes.get(node_id)
            if node is not None and node.info.alive:
                for name in [n for n in node.available if is_group_resource(n, pg_id)]:
                    del node.available[name]
                self.store.membership.available_changed(node)
                self.store.endpoint.send(node.info.address, p.ReleaseBundles(pg_id))

    def _announce(self, group: Group, error: str | None) -> None:
        from nebula._serialization import serialize

        if error is None:
            value = p.ObjectValue(group.msg.ready_object_id, inline=serialize(True).to_bytes())
        else:
            from nebula.exceptions import NebulaError

            payload = serialize(NebulaError(error)).to_bytes()
            value = p.ObjectValue(group.msg.ready_object_id, inline=payload, is_error=True)
        self.store.endpoint.send(group.msg.owner_address, p.PlacementGroupReady(value))

    def describe(self, msg: p.GetPlacementGroup) -> p.PlacementGroupReply:
        selected = [
            g
            for g in self.groups.values()
            if (msg.pg_id is None or g.msg.pg_id == msg.pg_id)
            and (msg.name is None or (g.msg.name == msg.name and g.state != "REMOVED"))
        ]
        return p.PlacementGroupReply(
            msg.request_id,
            tuple(
                (
                    g.msg.pg_id,
                    g.msg.name,
                    g.msg.strategy,
                    g.state,
                    g.msg.bundles,
                    tuple(n or b"" for n in g.nodes),
                )
                for g in selected
            ),
        )
