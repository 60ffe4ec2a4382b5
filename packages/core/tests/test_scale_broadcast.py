"""A broadcast is served by the nodes that already hold a copy, not by the origin alone.

A reader asks the object's owner where the object lives (the node that made it and every
node that copied it since, least used first) and pulls a large object in ranges from
several of them at once; a range whose holder is gone comes from the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import nebula
from nebula._api import runtime
from nebula.testing import Cluster

MIB = 1 << 20


@nebula.remote(num_cpus=0)
def make(mib: int) -> np.ndarray:
    return np.random.default_rng(11).integers(0, 255, mib * MIB, dtype=np.uint8)


@nebula.remote(num_cpus=0)
def checksum(array: np.ndarray) -> int:
    return int(array.sum(dtype=np.int64))


def _expected(mib: int) -> int:
    return int(np.random.default_rng(11).integers(0, 255, mib * MIB, dtype=np.uint8).sum())


def _on(name: str) -> dict[str, dict[str, float]]:
    return {"resources": {name: 0.01}}


@pytest.fixture(scope="module")
def cluster(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Cluster]:
    # Objects of 4 MiB and more come in ranges: the tests stay small.
    monkeypatch_module.setenv("NEBULA_OBJECT_TRANSFER_SPLIT_BYTES", str(4 * MIB))
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}) as c:
        for name in ("maker", "first", "second", "third"):
            c.add_node(num_cpus=1, resources={name: 1})
        c.wait_for_nodes()
        c.connect()
        yield c


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _node_of(cluster: Cluster, resource: str) -> bytes:
    for node in nebula.nodes():
        if node["Alive"] and resource in node["Resources"]:
            return bytes.fromhex(node["NodeID"])
    raise AssertionError(f"no live node has {resource}")


@pytest.mark.timeout(120)
def test_scale_a_later_reader_pulls_from_the_copy_an_earlier_one_made(cluster: Cluster) -> None:
    ref = make.options(**_on("maker")).remote(8)
    assert nebula.get(checksum.options(**_on("first")).remote(ref), timeout=60) == _expected(8)
    cw = runtime.require_core_worker()
    first = _node_of(cluster, "first")
    entry = cw.refs.get(ref.object_id)
    assert entry is not None and first in entry.copies
    # The next reader is sent to the first reader's copy as well as to the origin.
    holders = cw.locate(ref.object_id, _node_of(cluster, "second"))
    assert {h[0] for h in holders.holders} == {first, _node_of(cluster, "maker")}
    assert nebula.get(checksum.options(**_on("second")).remote(ref), timeout=60) == _expected(8)
    assert _node_of(cluster, "second") in entry.copies


@pytest.mark.timeout(120)
def test_scale_a_copy_serves_readers_after_the_origin_node_is_lost(cluster: Cluster) -> None:
    # max_retries=0: the value cannot be made again, so the last read can only come from
    # the copy on the first reader's node.
    ref = make.options(max_retries=0, **_on("maker")).remote(6)
    assert nebula.get(checksum.options(**_on("first")).remote(ref), timeout=60) == _expected(6)
    maker = next(n for n in cluster.nodes if n.node_id == _node_of(cluster, "maker").hex())
    cluster.remove_node(maker)
    cluster.wait_for_nodes()
    assert nebula.get(checksum.options(**_on("third")).remote(ref), timeout=60) == _expected(6)
    # The driver reads it too, from a copy.
    assert int(nebula.get(ref, timeout=60).sum(dtype=np.int64)) == _expected(6)


def test_scale_a_broadcast_spreads_as_a_tree_over_the_copies() -> None:
    from nebula import _protocol as p
    from nebula._worker.holders import STALE_PULL_S, choose_holders
    from nebula._worker.references import Entry

    origin, a, b, c = b"O", b"A", b"B", b"C"
    entry = Entry(b"x", "owner", owned=True)
    entry.value = p.ObjectValue(b"x", shm=p.ShmLocation(b"x", origin, "/x", 1 << 30))
    managers = {origin: "nm-O", a: "nm-A", b: "nm-B", c: "nm-C"}

    def ask(reader: bytes, now: float = 0.0) -> tuple[set[bytes], bool]:
        use, _, wait = choose_holders(entry, managers, reader, now, streams=2, per_holder=1)
        return {h[0] for h in use}, wait

    assert ask(a) == ({origin}, False)
    assert ask(b) == (set(), True)  # the origin serves A; A's copy is on its way
    entry.copies[a] = "nm-A"  # A's copy is registered
    assert ask(b) == ({origin, a}, False)
    assert ask(c) == (set(), True)
    # A reader that never finished stops counting after a while.
    assert ask(c, now=STALE_PULL_S + 1) == ({origin, a}, False)
    # The origin gone: the copies serve.
    del managers[origin]
    entry.copies[b] = "nm-B"
    entry.pulls = None
    assert ask(c) == ({a, b}, False)
