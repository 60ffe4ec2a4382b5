"""The control store's node table, and the cluster view it hands node managers in deltas.

Every node manager keeps a copy of the cluster view (who is in the cluster, what each node
has and has free) to decide where a lease request it cannot serve should go. Sending every
node the whole view at every heartbeat costs the control store nodes-squared entries a
heartbeat period: a thousand nodes would need several cores for it alone. Instead each
change to the view gets a version number; a heartbeat says which version the node holds
and is answered with what changed since then, or with nothing when nothing did.

Membership (joins, deaths, changed totals) always travels in full: a node manager must
know every node to route work pinned to one. Free resources change at task rates on every
node, so a delta carries at most ``max_available`` of those changes, the freshest. When it
had to leave some out, the answers that follow each carry ``sweep`` more entries, taken in
turn over every node, until the node was sent every node once: a copy catches up within
nodes / sweep heartbeats however large the cluster, and a quiet cluster sends nothing.
A node manager with no view, one from an earlier control store (a head restart changes
``epoch``), or one with a gap gets the full view instead; that one is encoded once and
shared by every node asking for it within ``snapshot_reuse_s``.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from dataclasses import dataclass, field

from nebula import _protocol as p
from nebula._scheduler.view import NodeView
from nebula._transport import host_of


@dataclass
class ViewCursor:
    """What one node manager holds of the cluster view, as far as the control store knows:
    the version its last heartbeat named, or the one sent to it since."""

    epoch: int = 0
    version: int = 0
    # After a delta that left changes of free resources out: how many more answers carry
    # a share of the sweep, and where this node's next share starts.
    sweeps_owed: int = 0
    sweep_at: int = 0
    # When the node was last sent the full view: it may not have applied it yet.
    full_sent_at: float = -math.inf


@dataclass
class Node:
    info: p.NodeInfoMsg
    available: dict[str, float]
    last_heartbeat: float
    view: ViewCursor = field(default_factory=ViewCursor)
    # The entries as a view carries them, encoded at most once per change (a join is
    # sent to every node): cleared by Membership when the node changes.
    encoded_info: bytes | None = None
    encoded_available: bytes | None = None
    # As placement policies see it, made at most once per change.
    cached_view: NodeView | None = None

    def node_view(self) -> NodeView:
        if self.cached_view is None:
            info = self.info
            self.cached_view = NodeView(info.node_id.hex(), info.resources, self.available)
        return self.cached_view

    def info_entry(self) -> bytes:
        if self.encoded_info is None:
            self.encoded_info = p.encode(self.info)
        return self.encoded_info

    def available_entry(self) -> bytes:
        """Free resources as they differ from the node's totals (usually CPU alone)."""
        if self.encoded_available is None:
            self.encoded_available = p.encode_entry(
                p.resources_diff(self.available, self.info.resources)
            )
        return self.encoded_available


class Membership:
    def __init__(
        self,
        *,
        max_available: int = 32,
        sweep: int = 16,
        snapshot_reuse_s: float = 0.25,
        full_view_patience_s: float = 5.0,
        epoch: int | None = None,
    ) -> None:
        self.nodes: dict[bytes, Node] = {}
        self.alive: dict[bytes, Node] = {}
        self.epoch = epoch if epoch is not None else int.from_bytes(os.urandom(7), "big") + 1
        self.version = 0
        self.max_available = max_available
        self.sweep = sweep
        self.snapshot_reuse_s = snapshot_reuse_s
        self.full_view_patience_s = full_view_patience_s
        # Node id -> the version of its latest change, oldest first: a delta walks back
        # from the newest until it reaches the version the asker holds.
        self._info_changes: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._available_changes: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._sweep_order: list[bytes] = []
        self._sweep_index: dict[bytes, int] = {}
        # Host -> the nodes alive on it (several share a host in a test cluster).
        self._hosts: dict[str, dict[bytes, Node]] = {}
        self._snapshot: tuple[int, float, bytes] | None = None

    # ---------------------------------------------------------------- changes

    def add(self, info: p.NodeInfoMsg, now: float) -> Node:
        """A node joined (or rejoined with the same id)."""
        rejoined = info.node_id in self.nodes
        node = Node(info, dict(info.resources), now)
        self.nodes[info.node_id] = node
        if info.alive:
            self.alive[info.node_id] = node
            self._hosts.setdefault(info.ip, {})[info.node_id] = node
            self._sweep_add(info.node_id)
        else:
            self._forget_alive(info.node_id)
        self._info_changed(info.node_id)
        if rejoined:  # copies may hold what it had free before
            self.available_changed(node)
        return node

    def heartbeat(
        self,
        node_id: bytes,
        available: dict[str, float],
        total: dict[str, float],
        now: float,
    ) -> tuple[Node | None, bool]:
        """Record a heartbeat; returns the node (None: unknown or dead) and whether its
        totals changed."""
        node = self.alive.get(node_id)
        if node is None:
            return None, False
        node.last_heartbeat = now
        if available != node.available:
            node.available = available
            self.available_changed(node)
        if total and total != node.info.resources:
            node.info = dataclasses.replace(node.info, resources=total)
            self._info_changed(node_id)
            # Free resources travel as they differ from the totals: their base moved.
            self.available_changed(node)
            return node, True
        return node, False

    def available_changed(self, node: Node) -> None:
        """Note a change made to ``node.available`` (by a heartbeat or the control store)."""
        if node.info.node_id not in self.alive:
            return
        node.encoded_available = node.cached_view = None
        self.version += 1
        self._available_changes[node.info.node_id] = self.version
        self._available_changes.move_to_end(node.info.node_id)

    def mark_dead(self, node: Node) -> None:
        node.info = dataclasses.replace(node.info, alive=False)
        node.available = {}
        self._forget_alive(node.info.node_id)
        self._available_changes.pop(node.info.node_id, None)
        self._info_changed(node.info.node_id)

    def node_near(self, address: str) -> Node | None:
        """A live node on the host of ``address`` (a process's); else the first live node;
        None when none is alive."""
        on_host = self._hosts.get(host_of(address))
        if on_host:
            return next(iter(on_host.values()))
        return next(iter(self.alive.values()), None)

    def expired(self, now: float, timeout_s: float) -> list[Node]:
        return [n for n in self.alive.values() if now - n.last_heartbeat > timeout_s]

    def _info_changed(self, node_id: bytes) -> None:
        node = self.nodes[node_id]
        node.encoded_info = node.encoded_available = node.cached_view = None
        self.version += 1
        self._info_changes[node_id] = self.version
        self._info_changes.move_to_end(node_id)

    def _forget_alive(self, node_id: bytes) -> None:
        node = self.alive.pop(node_id, None)
        if node is not None:
            on_host = self._hosts.get(node.info.ip, {})
            on_host.pop(node_id, None)
            if not on_host:
                self._hosts.pop(node.info.ip, None)
        index = self._sweep_index.pop(node_id, None)
        if index is None:
            return
        last = self._sweep_order.pop()
        if last != node_id:
            self._sweep_order[index] = last
            self._sweep_index[last] = index

    def _sweep_add(self, node_id: bytes) -> None:
        if node_id not in self._sweep_index:
            self._sweep_index[node_id] = len(self._sweep_order)
            self._sweep_order.append(node_id)

    # ------------------------------------------------------------------ views

    def answer(self, cursor: ViewCursor, now: float) -> p.ClusterViewDelta | bytes | None:
        """What to send a node holding ``cursor``: a delta, the full view (encoded, shared
        with other nodes asking about now) or nothing. Moves the cursor to what is sent."""
        if cursor.epoch != self.epoch or cursor.version <= 0 or cursor.version > self.version:
            if now - cursor.full_sent_at < self.full_view_patience_s:
                # One is on its way: a large view takes a slow node a while to apply,
                # and sending it again would only slow it (and us) down further.
                return None
            version, payload = self.full_view_payload(now)
            cursor.epoch, cursor.version, cursor.sweeps_owed = self.epoch, version, 0
            cursor.full_sent_at = now
            return payload
        if cursor.version == self.version and not cursor.sweeps_owed:
            return None
        delta = self._delta(cursor)
        cursor.version = self.version
        return delta

    def _delta(self, cursor: ViewCursor) -> p.ClusterViewDelta:
        since = cursor.version
        nodes = []
        for node_id, changed in reversed(self._info_changes.items()):
            if changed <= since:
                break
            nodes.append(self.nodes[node_id].info_entry())
        available: dict[bytes, bytes] = {}
        changes = reversed(self._available_changes.items())
        for node_id, changed in changes:
            if changed <= since:
                break
            if len(available) == self.max_available:
                # The rest of the changes wait for the sweep: a full pass over the nodes.
                cursor.sweeps_owed = -(-len(self._sweep_order) // max(1, self.sweep))
                break
            available[node_id] = self.alive[node_id].available_entry()
        if cursor.sweeps_owed:
            cursor.sweeps_owed -= 1
            self._add_sweep(cursor, available)
        return p.ClusterViewDelta(self.epoch, since, self.version, tuple(nodes), available)

    def _add_sweep(self, cursor: ViewCursor, available: dict[bytes, bytes]) -> None:
        order = self._sweep_order
        for _ in range(min(self.sweep, len(order))):
            cursor.sweep_at %= len(order)
            node_id = order[cursor.sweep_at]
            cursor.sweep_at += 1
            if node_id not in available:
                available[node_id] = self.alive[node_id].available_entry()

    def full_view(self) -> p.ClusterViewDelta:
        return p.ClusterViewDelta(
            self.epoch,
            0,
            self.version,
            tuple(n.info_entry() for n in self.alive.values()),
            {
                node_id: n.available_entry()
                for node_id, n in self.alive.items()
                if n.available != n.info.resources
            },
            full=True,
        )

    def full_view_payload(self, now: float) -> tuple[int, bytes]:
        """The full view, encoded, and its version; nodes asking within
        ``snapshot_reuse_s`` of each other share one encoding (the deltas that follow bring
        each up to date)."""
        cached = self._snapshot
        if cached is not None:
            version, built, payload = cached
            if version == self.version or now - built < self.snapshot_reuse_s:
                return version, payload
        payload = p.encode(self.full_view())
        self._snapshot = (self.version, now, payload)
        return self.version, payload
