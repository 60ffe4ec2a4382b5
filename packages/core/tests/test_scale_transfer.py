"""Objects between nodes: the bulk path (authenticated TCP, sendfile) and its fallback.

A value made on one node and read on another comes over the node manager's bulk port,
which admits only peers holding the cluster's token; with
``NEBULA_ENCRYPT_OBJECT_TRANSFERS=1`` it travels as encrypted messages instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

import nebula
from nebula._object_store.bulk import BulkClient, BulkServer, TransferError
from nebula.testing import Cluster

MIB = 1 << 20


@nebula.remote(num_cpus=0, resources={"maker": 0.01})
def make(mib: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 255, mib * MIB, dtype=np.uint8)


@nebula.remote(num_cpus=0, resources={"reader": 0.01})
def checksum(array: np.ndarray) -> int:
    return int(array.sum(dtype=np.int64))


def _expected(mib: int) -> int:
    return int(np.random.default_rng(7).integers(0, 255, mib * MIB, dtype=np.uint8).sum())


def _two_nodes() -> Cluster:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"maker": 1}}
    )
    cluster.add_node(num_cpus=1, resources={"reader": 1})
    cluster.wait_for_nodes()
    cluster.connect()
    return cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with _two_nodes() as c:
        yield c


@pytest.mark.timeout(120)
def test_scale_an_object_made_on_one_node_is_read_on_another(cluster: Cluster) -> None:
    ref = make.remote(24)
    assert nebula.get(checksum.remote(ref), timeout=60) == _expected(24)
    # A driver without a store of its own on that node reads it too.
    assert int(nebula.get(ref, timeout=60).sum(dtype=np.int64)) == _expected(24)


@pytest.mark.timeout(120)
def test_scale_encrypted_transfers_are_a_cluster_setting(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    nebula.shutdown()
    cluster.shutdown()
    monkeypatch.setenv("NEBULA_ENCRYPT_OBJECT_TRANSFERS", "1")
    with _two_nodes():
        assert nebula.get(checksum.remote(make.remote(8)), timeout=60) == _expected(8)


def test_scale_the_bulk_port_admits_only_holders_of_the_token(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "object")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 64)
    server = BulkServer("127.0.0.1", b"the-key", lambda oid: path if oid == b"id" else None)
    try:
        with pytest.raises(TransferError, match=r"refused us|does not hold"):
            BulkClient("127.0.0.1", server.port, b"another-key")
        client = BulkClient("127.0.0.1", server.port, b"the-key")
        target = bytearray(512)
        client.read_into(b"id", 256, memoryview(target))
        assert target == bytes(range(256)) * 2
        with pytest.raises(TransferError, match="not in this node's store"):
            client.read_into(b"missing", 0, memoryview(bytearray(8)))
        client.read_into(b"id", 0, memoryview(target))  # the connection still serves
        client.close()
    finally:
        server.close()
