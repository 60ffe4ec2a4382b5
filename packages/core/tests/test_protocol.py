"""The message decoder: anything that is not a well-formed message is refused, never acted on."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

import nebula
from nebula import _auth
from nebula import _protocol as p
from nebula.testing import Cluster


@given(st.binary(max_size=4096))
@settings(max_examples=500, deadline=None)
def test_random_bytes_decode_to_a_message_or_a_protocol_error(payload: bytes) -> None:
    try:
        message = p.decode(payload)
    except p.ProtocolError:
        return
    assert isinstance(message, p.Message)


@given(st.integers(min_value=0, max_value=200))
@settings(max_examples=100, deadline=None)
def test_truncated_messages_are_refused(cut: int) -> None:
    payload = p.encode(p.FreeObjects((b"x" * 20, b"y" * 20)))
    if cut >= len(payload):
        return
    with pytest.raises(p.ProtocolError):
        p.decode(payload[:cut])


@given(
    st.one_of(
        st.integers(), st.text(), st.lists(st.integers()), st.dictionaries(st.text(), st.integers())
    )
)
def test_pickled_non_messages_are_refused(value: object) -> None:
    with pytest.raises(p.ProtocolError, match="not a protocol message"):
        p.decode(pickle.dumps(value))


def test_messages_round_trip() -> None:
    message = p.RequestLease(b"l" * 16, 3, {"CPU": 1.5}, "tcp://127.0.0.1:1", spill_count=2)
    assert p.decode(p.encode(message)) == message


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as c:
        yield c


@nebula.remote
def square(x: int) -> int:
    return x * x


def test_garbage_from_an_authenticated_peer_is_dropped_and_service_goes_on(
    cluster: Cluster,
) -> None:
    assert nebula.get(square.remote(3)) == 9
    keys = _auth.derive_keys(cluster.token)
    context = zmq.Context()
    try:
        for address in (cluster.control_store_address, cluster.nodes[0].address):
            sock = context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.curve_serverkey = keys.server_public
            sock.curve_publickey = keys.client_public
            sock.curve_secretkey = keys.client_secret
            sock.connect(address)
            for payload in (
                b"",
                b"\x80\x05garbage",
                p.encode(p.FreeObjects((b"x",)))[:-3],
                pickle.dumps({"not": "a message"}),
                p.encode(p.KillWorker(b"no such worker")),
                p.encode(p.ReturnLease(b"no such lease")),
            ):
                sock.send(payload)
            sock.close()
        time.sleep(0.5)
    finally:
        context.destroy(linger=1)
    assert nebula.get([square.remote(i) for i in range(5)], timeout=30) == [0, 1, 4, 9, 16]
