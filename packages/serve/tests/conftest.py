from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nebula.testing import Cluster

pytest_plugins = ["nebula.testing.pytest_plugin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def serve_cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    """A cluster with serve running on a free port; yields the proxy's base URL.

    A test module sets ``SERVE_HTTP_OPTIONS`` for more proxy options.
    """
    from nebula import serve

    port = free_port()
    options = {
        "host": "127.0.0.1",
        "port": port,
        **getattr(request.module, "SERVE_HTTP_OPTIONS", {}),
    }
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 16}, connect=True):
        serve.start(http_options=options)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            serve.shutdown()
