"""What a user sees when serve cannot do what was asked: a proxy port already in use is an
error at once (and another port then works), and an application whose replicas cannot be
placed is explained while serve.run waits for it."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from nebula.serve import _api

import nebula
from nebula import serve
from nebula.testing import Cluster, wait_for_condition
from nebula.util import state


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, connect=True):
        try:
            yield
        finally:
            serve.shutdown()


@serve.deployment(ray_actor_options={"num_cpus": 0})
def hello(request: object) -> str:
    return "hello"


@pytest.mark.timeout(90)
def test_a_port_in_use_is_a_clear_error_and_another_port_works(cluster: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"could not listen on 127.0.0.1:{port}"):
            serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.shutdown()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": free})
    serve.run(hello.bind(), name="hello", route_prefix="/hello")
    with urllib.request.urlopen(f"http://127.0.0.1:{free}/hello", timeout=10) as reply:
        assert reply.read() == b"hello"
    serve.delete("hello")


@pytest.mark.timeout(90)
def test_replicas_that_cannot_be_placed_are_explained_while_run_waits(
    cluster: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_api, "_SLOW_DEPLOY_WARNING_S", 0.5)
    big = hello.options(name="big", ray_actor_options={"num_cpus": 8})
    with (
        caplog.at_level(logging.WARNING, logger="nebula.serve"),
        pytest.raises(TimeoutError, match="still DEPLOYING"),
    ):
        serve.run(big.bind(), name="big", route_prefix="/big", _timeout_s=4)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "Deployment 'big'" in said and "'num_cpus': 8" in said
    assert "Free in the cluster" in said and "'CPU': 2.0" in said

    def waiting_big_replicas() -> list[str]:
        return [
            str(a["state"])
            for a in state.list_actors()
            if "#big#" in str(a.get("name") or "") and a["state"] != "DEAD"
        ]

    assert waiting_big_replicas()  # the replica waits for a node with 8 CPUs
    serve.delete("big")
    # Deleting it withdraws the replica that waited: nothing stays reserved.
    wait_for_condition(lambda: "big" not in serve.status().applications, timeout=30)
    assert nebula.available_resources().get("CPU") == 2.0

    wait_for_condition(lambda: not waiting_big_replicas(), timeout=30)
