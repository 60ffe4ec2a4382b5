"""A node manager's copy of the cluster view, kept current by the control store's deltas.

The control store answers each heartbeat with what changed since the version the node
holds (see ``_control_store/membership.py``). Deltas apply in order: one that starts past
the version held means a change was missed, and the copy asks for the full view again
(its next heartbeat says it holds nothing). Requests this node passes on to another node
are counted against that node's free resources until the next heartbeat, so a burst of
them spreads instead of landing on the node that looked freest.
"""

from __future__ import annotations

import dataclasses

from nebula import _protocol as p
from nebula._scheduler import resources as res
from nebula._scheduler.view import NodeView


class ClusterViewCopy:
    def __init__(self) -> None:
        self.epoch = 0
        self.version = 0
        self.nodes: dict[bytes, p.NodeInfoMsg] = {}
        self.available: dict[bytes, dict[str, float]] = {}
        # Resources of requests passed on to each node since the last heartbeat.
        self._sent: dict[bytes, dict[str, float]] = {}
        # Each node as placement policies see it, made at most once per change.
        self._views: dict[bytes, NodeView] = {}

    def apply(self, delta: p.ClusterViewDelta) -> bool:
        """Apply ``delta``; False when it was not applied (stale, or a gap: then the next
        heartbeat asks for the full view)."""
        if delta.full:
            self.nodes = {info.node_id: info for info in delta.node_infos()}
            self.available = {}
            self._views.clear()
        elif delta.epoch != self.epoch or delta.base_version > self.version:
            self.version = 0
            return False
        elif delta.version < self.version:
            return False
        else:
            for info in delta.node_infos():
                self.nodes[info.node_id] = info
                self._views.pop(info.node_id, None)
                if not info.alive:
                    self.available.pop(info.node_id, None)
        for node_id, diff in delta.free_resources().items():
            node = self.nodes.get(node_id)
            if node is not None and node.alive:
                self.available[node_id] = {**node.resources, **diff}
                self._views.pop(node_id, None)
        self.epoch = delta.epoch
        self.version = delta.version
        return True

    def mark_dead(self, node_id: bytes) -> None:
        """The control store said the node died (a notice, ahead of the next delta)."""
        info = self.nodes.get(node_id)
        if info is not None and info.alive:
            self.nodes[node_id] = dataclasses.replace(info, alive=False)
        self.available.pop(node_id, None)
        self._views.pop(node_id, None)

    def views(self, exclude: bytes) -> list[NodeView]:
        """Every node but ``exclude``, as placement policies see nodes."""
        views = []
        for node_id in self.nodes:
            if node_id != exclude:
                view = self._views.get(node_id)
                if view is None:
                    view = self._views[node_id] = self._view(node_id)
                views.append(view)
        return views

    def _view(self, node_id: bytes) -> NodeView:
        info = self.nodes[node_id]
        available = self.free(node_id)
        sent = self._sent.get(node_id)
        if sent:
            available = dict(available)
            res.subtract(available, sent)
        return NodeView(node_id.hex(), info.resources, available, alive=info.alive)

    def free(self, node_id: bytes) -> dict[str, float]:
        """The node's free resources as last reported (all of them if never: it joined
        idle); empty for a node not known alive."""
        info = self.nodes.get(node_id)
        if info is None or not info.alive:
            return {}
        return self.available.get(node_id, info.resources)

    def count_sent(self, node_id: bytes, resources: dict[str, float]) -> None:
        res.add(self._sent.setdefault(node_id, {}), resources)
        self._views.pop(node_id, None)

    def heartbeat_sent(self) -> None:
        """The next view reflects what was passed on before now."""
        for node_id in self._sent:
            self._views.pop(node_id, None)
        self._sent.clear()
