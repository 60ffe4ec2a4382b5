"""``proxy_location="EveryNode"``: a proxy on each node of a cluster, each serving every app.

The nodes listen on loopback addresses of their own (127.0.0.1, 127.0.0.2, ...), as separate
machines would, so each node's proxy has its own address on the same port.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from conftest import free_port
from starlette.requests import Request

import nebula
from nebula import serve
from nebula.testing import Cluster, wait_for_condition

pytestmark = pytest.mark.timeout(180)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


@serve.deployment(num_replicas=2)
class Where:
    def __call__(self, request: Request) -> str:
        return f"hello from {request.url.path}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, int]]:
    port = free_port()
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, connect=True) as cluster:
        cluster.add_node(num_cpus=2, host="127.0.0.2")
        serve.start(http_options={"port": port}, proxy_location="EveryNode")
        try:
            yield cluster, port
        finally:
            serve.shutdown()


def test_each_node_has_a_proxy_that_reaches_the_app(cluster: tuple[Cluster, int]) -> None:
    _, port = cluster
    serve.run(Where.bind(), name="where", route_prefix="/where")
    assert len(serve.status().proxies) == 2
    for host in ("127.0.0.1", "127.0.0.2"):
        for _ in range(5):
            assert get(f"http://{host}:{port}/where/x") == "hello from /where/x"


def test_a_node_that_joins_gets_a_proxy_and_loses_it_when_it_dies(
    cluster: tuple[Cluster, int],
) -> None:
    nodes, port = cluster
    serve.run(Where.bind(), name="where", route_prefix="/where")
    node = nodes.add_node(num_cpus=1, host="127.0.0.3")
    wait_for_condition(lambda: node.node_id in serve.status().proxies, timeout=30)
    wait_for_condition(
        lambda: _answers(f"http://127.0.0.3:{port}/where/new"), timeout=30, retry_interval_ms=200
    )
    nodes.remove_node(node)
    wait_for_condition(lambda: node.node_id not in serve.status().proxies, timeout=30)
    assert len([n for n in nebula.nodes() if n["Alive"]]) == 2
    assert get(f"http://127.0.0.2:{port}/where/still") == "hello from /where/still"


def _answers(url: str) -> bool:
    try:
        return get(url) == "hello from /where/new"
    except OSError:
        return False
