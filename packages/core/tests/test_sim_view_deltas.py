"""The cluster view in deltas: what the control store sends node managers, and their copies.

Pure state, no sockets: the control store's membership table and a node manager's copy of
the view are driven directly, as the simulated cluster in ``benchmarks/simulated`` drives
them over the wire at thousands of nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebula import _config
from nebula import _protocol as p
from nebula._control_store.membership import Membership, ViewCursor
from nebula._control_store.server import ControlStore
from nebula._node_manager.cluster_view import ClusterViewCopy


def info(i: int, cpus: float = 4.0) -> p.NodeInfoMsg:
    return p.NodeInfoMsg(i.to_bytes(16, "big"), f"tcp://10.0.0.{i}:1", f"10.0.0.{i}", {"CPU": cpus})


def nid(i: int) -> bytes:
    return i.to_bytes(16, "big")


class Peer:
    """A node manager's copy of the view and the control store's cursor for it."""

    def __init__(self) -> None:
        self.copy = ClusterViewCopy()
        self.cursor = ViewCursor()

    def sync(self, membership: Membership, now: float = 0.0) -> p.ClusterViewDelta | None:
        """One heartbeat and its answer, as the control store and node manager do them."""
        self.cursor.epoch, self.cursor.version = self.copy.epoch, self.copy.version
        answer = membership.answer(self.cursor, now)
        if isinstance(answer, bytes):
            answer = p.decode(answer)
        assert answer is None or isinstance(answer, p.ClusterViewDelta)
        if answer is not None:
            self.copy.apply(answer)
        return answer


def truth(membership: Membership) -> tuple[set[bytes], dict[bytes, dict[str, float]]]:
    return set(membership.alive), {k: n.available for k, n in membership.alive.items()}


def seen(copy: ClusterViewCopy) -> tuple[set[bytes], dict[bytes, dict[str, float]]]:
    alive = {k for k, i in copy.nodes.items() if i.alive}
    return alive, {k: copy.free(k) for k in alive}


# ------------------------------------------------------------------ deltas


def test_a_node_without_a_view_gets_the_full_view_then_nothing_until_something_changes() -> None:
    membership = Membership(snapshot_reuse_s=0.0)
    for i in range(3):
        membership.add(info(i), now=0.0)
    peer = Peer()

    first = peer.sync(membership)

    assert first is not None and first.full
    assert seen(peer.copy) == truth(membership)
    assert peer.sync(membership) is None


def test_deltas_applied_in_order_follow_joins_load_shape_changes_and_deaths() -> None:
    membership = Membership()
    for i in range(3):
        membership.add(info(i), now=0.0)
    peer = Peer()
    peer.sync(membership)

    membership.add(info(3), now=1.0)
    membership.heartbeat(nid(0), {"CPU": 1.0}, {"CPU": 4.0}, now=1.0)
    delta = peer.sync(membership)
    assert delta is not None and not delta.full
    assert [n.node_id for n in delta.node_infos()] == [nid(3)]
    assert seen(peer.copy) == truth(membership)

    _, total_changed = membership.heartbeat(nid(1), {"CPU": 4.0}, {"CPU": 8.0}, now=2.0)
    membership.mark_dead(membership.nodes[nid(2)])
    delta = peer.sync(membership)
    assert total_changed and delta is not None
    assert peer.copy.nodes[nid(1)].resources == {"CPU": 8.0}
    assert not peer.copy.nodes[nid(2)].alive
    assert seen(peer.copy) == truth(membership)


def test_a_missed_delta_leads_to_a_full_resync() -> None:
    membership = Membership(snapshot_reuse_s=0.0, full_view_patience_s=0.0)
    membership.add(info(0), now=0.0)
    peer = Peer()
    peer.sync(membership)
    cursor = ViewCursor(peer.copy.epoch, peer.copy.version)

    membership.add(info(1), now=1.0)
    lost = membership.answer(cursor, now=1.0)  # never arrives
    membership.add(info(2), now=2.0)
    later = membership.answer(cursor, now=2.0)
    assert isinstance(lost, p.ClusterViewDelta) and isinstance(later, p.ClusterViewDelta)

    assert not peer.copy.apply(later)  # starts past what the copy holds
    assert peer.copy.version == 0
    resync = peer.sync(membership)

    assert resync is not None and resync.full
    assert seen(peer.copy) == truth(membership)


def test_a_stale_delta_is_ignored() -> None:
    membership = Membership()
    membership.add(info(0), now=0.0)
    peer = Peer()
    peer.sync(membership)
    membership.heartbeat(nid(0), {"CPU": 3.0}, {}, now=1.0)
    old = membership.answer(ViewCursor(peer.copy.epoch, peer.copy.version), now=1.0)
    membership.heartbeat(nid(0), {"CPU": 2.0}, {}, now=2.0)
    peer.sync(membership)
    assert isinstance(old, p.ClusterViewDelta)

    assert not peer.copy.apply(old)
    assert peer.copy.free(nid(0)) == {"CPU": 2.0}


def test_a_view_from_an_earlier_control_store_is_replaced_whole() -> None:
    before = Membership(epoch=1)
    before.add(info(0), now=0.0)
    peer = Peer()
    peer.sync(before)
    after = Membership(epoch=2)  # a restarted head: it has no cursors yet
    after.add(info(1), now=0.0)
    peer.cursor = ViewCursor()

    delta = peer.sync(after)

    assert delta is not None and delta.full
    assert seen(peer.copy) == truth(after)


def test_nodes_asking_for_the_full_view_together_share_one_encoding() -> None:
    membership = Membership(snapshot_reuse_s=10.0)
    membership.add(info(0), now=0.0)
    _, first = membership.full_view_payload(now=0.0)
    membership.add(info(1), now=1.0)

    version, shared = membership.full_view_payload(now=1.0)
    _, rebuilt = membership.full_view_payload(now=11.0)

    assert shared is first and version < membership.version
    assert rebuilt is not first


def test_a_node_slow_to_apply_its_full_view_is_not_sent_another_at_each_heartbeat() -> None:
    membership = Membership(full_view_patience_s=5.0)
    membership.add(info(0), now=0.0)
    cursor = ViewCursor()

    first = membership.answer(cursor, now=0.0)
    cursor.epoch, cursor.version = 0, 0  # its next heartbeats: still applying it
    again = membership.answer(cursor, now=1.0)
    cursor.epoch, cursor.version = 0, 0
    later = membership.answer(cursor, now=6.0)  # lost, then: send it again

    assert isinstance(first, bytes) and again is None and isinstance(later, bytes)


# ------------------------------------------------------------------ bounds


def test_a_delta_carries_a_bounded_number_of_entries_however_large_the_cluster() -> None:
    sizes = {}
    for n in (100, 2000):
        membership = Membership(max_available=8, sweep=4)
        for i in range(n):
            membership.add(info(i), now=0.0)
        peer = Peer()
        peer.sync(membership)
        for i in range(n):  # every node's load changes before the next heartbeat
            membership.heartbeat(nid(i), {"CPU": float(i % 3)}, {}, now=1.0)
        delta = peer.sync(membership)
        assert delta is not None
        sizes[n] = len(delta.available)

    assert sizes[100] <= 12 and sizes[2000] <= 12


def test_a_copy_that_missed_changes_catches_up_within_nodes_over_sweep_heartbeats() -> None:
    n, sweep = 200, 10
    membership = Membership(max_available=5, sweep=sweep)
    for i in range(n):
        membership.add(info(i), now=0.0)
    peer = Peer()
    peer.sync(membership)
    for i in range(n):  # all change at once: one delta can carry only a few of them
        membership.heartbeat(nid(i), {"CPU": 1.5}, {}, now=1.0)

    answers = []
    while (answer := peer.sync(membership)) is not None:
        answers.append(answer)

    assert seen(peer.copy) == truth(membership)
    assert len(answers) <= n // sweep and all(len(a.available) <= 5 + sweep for a in answers)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "load", "shape", "die", "sync", "lose"]), st.integers(0, 9)
        ),
        max_size=60,
    )
)
def test_a_copy_that_keeps_asking_converges_whatever_it_missed(
    steps: list[tuple[str, int]],
) -> None:
    membership = Membership(
        max_available=3, sweep=2, snapshot_reuse_s=0.0, full_view_patience_s=0.0
    )
    peer = Peer()
    for action, i in steps:
        node = membership.alive.get(nid(i))
        if action == "join" and nid(i) not in membership.nodes:
            membership.add(info(i), now=0.0)
        elif action == "load" and node is not None:
            membership.heartbeat(nid(i), {"CPU": float(i)}, {}, now=0.0)
        elif action == "shape" and node is not None:
            membership.heartbeat(nid(i), {"CPU": 1.0}, {"CPU": float(10 + i)}, now=0.0)
        elif action == "die" and node is not None:
            membership.mark_dead(node)
        elif action == "sync":
            peer.sync(membership)
        elif action == "lose":
            membership.answer(ViewCursor(peer.copy.epoch, peer.copy.version), now=0.0)

    for _ in range(8):  # enough heartbeats for a full resync and a sweep over every node
        peer.sync(membership)

    assert seen(peer.copy) == truth(membership)
    for node_id in membership.alive:
        assert peer.copy.nodes[node_id] == membership.nodes[node_id].info


# ----------------------------------------------------------- control store


@dataclass
class FakeEndpoint:
    address: str = "tcp://10.0.0.254:1"
    sent: list[tuple[str, p.Message]] = field(default_factory=list)
    caught_up_at: float = float("inf")

    def send(self, address: str, message: p.Message) -> None:
        self.sent.append((address, message))

    def send_encoded(self, address: str, payload: bytes) -> None:
        self.sent.append((address, p.decode(payload)))

    def disconnect(self, address: str) -> None:
        pass

    def take(self) -> list[tuple[str, p.Message]]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def store(tmp_path: object) -> ControlStore:
    return ControlStore(FakeEndpoint(), str(tmp_path))  # type: ignore[arg-type]


def heartbeat(store: ControlStore, i: int, cpus: float = 4.0) -> None:
    view = store.nodes[nid(i)].view
    store.handle(p.NodeHeartbeat(nid(i), {"CPU": cpus}, {"CPU": 4.0}, view.epoch, view.version))


def test_a_small_cluster_hears_of_a_join_at_once(store: ControlStore) -> None:
    endpoint: FakeEndpoint = store.endpoint  # type: ignore[assignment]
    for i in range(3):
        store.handle(p.RegisterNode(info(i)))
    sent = endpoint.take()

    to_first = [m for a, m in sent if a == info(0).address]
    assert isinstance(to_first[0], p.ClusterViewDelta) and to_first[0].full
    deltas = [m for m in to_first[1:] if isinstance(m, p.ClusterViewDelta)]
    joined = {n.node_id for m in deltas for n in m.node_infos()}
    assert joined == {nid(1), nid(2)}


def test_a_large_cluster_hears_of_a_join_at_its_next_heartbeat(
    store: ControlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "VIEW_PUSH_MAX_NODES", 1)
    endpoint: FakeEndpoint = store.endpoint  # type: ignore[assignment]
    for i in range(3):
        store.handle(p.RegisterNode(info(i)))
    assert {a for a, _ in endpoint.take()} == {info(i).address for i in range(3)}  # own views
    for i in range(3):
        heartbeat(store, i)
    endpoint.take()

    store.handle(p.RegisterNode(info(3)))
    assert [a for a, _ in endpoint.take()] == [info(3).address]

    heartbeat(store, 0)
    ((address, delta),) = endpoint.take()
    assert address == info(0).address and isinstance(delta, p.ClusterViewDelta)
    assert [n.node_id for n in delta.node_infos()] == [nid(3)]


def test_an_unchanged_cluster_answers_heartbeats_with_nothing(store: ControlStore) -> None:
    endpoint: FakeEndpoint = store.endpoint  # type: ignore[assignment]
    for i in range(3):
        store.handle(p.RegisterNode(info(i)))
    for i in range(3):
        heartbeat(store, i)
    endpoint.take()

    for i in range(3):
        heartbeat(store, i)

    assert endpoint.take() == []


def test_a_death_reaches_every_node_and_driver_at_once_in_a_large_cluster(
    store: ControlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "VIEW_PUSH_MAX_NODES", 1)
    endpoint: FakeEndpoint = store.endpoint  # type: ignore[assignment]
    for i in range(5):
        store.handle(p.RegisterNode(info(i)))
    store.handle(p.RegisterJob(1, "tcp://10.0.1.1:1", 1, "ns", "10.0.1.1"))
    endpoint.take()

    store.handle(p.UnregisterNode(nid(4)))

    told = {a for a, m in endpoint.take() if isinstance(m, p.NodeDied) and m.node_id == nid(4)}
    assert told == {info(i).address for i in range(4)} | {"tcp://10.0.1.1:1"}


def test_a_spill_counts_against_the_target_until_the_next_heartbeat() -> None:
    membership = Membership()
    membership.add(info(0), now=0.0)
    membership.add(info(1), now=0.0)
    peer = Peer()
    peer.sync(membership)
    copy = peer.copy

    copy.count_sent(nid(1), {"CPU": 3.0})
    (target,) = [v for v in copy.views(exclude=nid(0))]
    assert target.available["CPU"] == 1.0
    copy.heartbeat_sent()
    (target,) = [v for v in copy.views(exclude=nid(0))]
    assert target.available["CPU"] == 4.0


def test_a_control_store_behind_on_its_inbox_declares_no_node_dead_until_caught_up(
    store: ControlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "NODE_TIMEOUT_S", 10.0)
    endpoint: FakeEndpoint = store.endpoint  # type: ignore[assignment]
    store.handle(p.RegisterNode(info(0)))
    node = store.nodes[nid(0)]
    node.last_heartbeat -= 60.0  # silent for a minute, as far as the handled messages say
    endpoint.caught_up_at = node.last_heartbeat + 5.0  # but the inbox was last empty then

    store.tick()
    assert node.info.alive

    endpoint.caught_up_at = node.last_heartbeat + 11.0
    store.tick()
    assert not node.info.alive
