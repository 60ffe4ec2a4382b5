"""Authentication: a peer without the cluster token gets nothing and runs nothing."""

from __future__ import annotations

import os
import pickle
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import zmq

import nebula
from nebula import _auth
from nebula.testing import Cluster


class _Exploit:
    """Unpickling this creates a file: proof that an attacker's bytes were unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def _cluster_ports() -> list[int]:
    ports = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    ports.add(conn.laddr.port)
        except psutil.Error:
            continue
    return sorted(ports)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as c:
        yield c


@nebula.remote
def double(x: int) -> int:
    return 2 * x


def test_unauthenticated_payloads_to_every_port_run_no_code(
    cluster: Cluster, tmp_path: Path
) -> None:
    assert nebula.get(double.remote(1)) == 2  # workers are up and listening
    ports = _cluster_ports()
    assert len(ports) >= 3  # control store, node manager, worker(s)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    context = zmq.Context()
    wrong = _auth.derive_keys(_auth.new_token())
    try:
        for port in ports:
            # A plain ZeroMQ peer, a peer with a made-up token, and a raw TCP peer.
            plain = context.socket(zmq.PUSH)
            plain.setsockopt(zmq.LINGER, 0)
            plain.connect(f"tcp://127.0.0.1:{port}")
            plain.send(payload, zmq.NOBLOCK) if plain.poll(200, zmq.POLLOUT) else None
            forged = context.socket(zmq.PUSH)
            forged.setsockopt(zmq.LINGER, 0)
            forged.curve_serverkey = wrong.server_public
            forged.curve_publickey = wrong.client_public
            forged.curve_secretkey = wrong.client_secret
            forged.connect(f"tcp://127.0.0.1:{port}")
            forged.send(payload, zmq.NOBLOCK) if forged.poll(200, zmq.POLLOUT) else None
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                raw.sendall(payload * 4)
        time.sleep(1.0)
    finally:
        context.destroy(linger=0)
    assert not marker.exists(), "an unauthenticated payload was unpickled"
    # The cluster keeps serving its own clients.
    assert nebula.get([double.remote(i) for i in range(4)], timeout=30) == [0, 2, 4, 6]


def test_driver_with_the_wrong_token_is_refused(cluster: Cluster) -> None:
    nebula.shutdown()
    try:
        with pytest.raises(ConnectionError, match="Could not reach"):
            nebula.init(address=cluster.address, _cluster_token=_auth.new_token())
        assert not nebula.is_initialized()
    finally:
        cluster.connect()
    assert nebula.get(double.remote(3)) == 6


def test_token_file_is_private(tmp_path: Path) -> None:
    path = _auth.write_token_file(str(tmp_path), _auth.new_token())
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert _auth.token_from_environment(str(tmp_path)) == Path(path).read_text()


def test_the_exploit_would_run_on_an_open_socket(tmp_path: Path) -> None:
    """Control for the test above: the same bytes do run code where nothing checks them."""
    marker = tmp_path / "pwned"
    context = zmq.Context()
    try:
        sink = context.socket(zmq.PULL)
        port = sink.bind_to_random_port("tcp://127.0.0.1")
        source = context.socket(zmq.PUSH)
        source.connect(f"tcp://127.0.0.1:{port}")
        source.send(pickle.dumps(_Exploit(marker)))
        assert sink.poll(5000)
        pickle.loads(sink.recv())
    finally:
        context.destroy(linger=0)
    assert marker.exists()
