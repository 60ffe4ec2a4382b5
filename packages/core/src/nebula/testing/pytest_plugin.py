"""Pytest fixtures built on ``nebula.testing.Cluster``.

Enable with ``pytest_plugins = ["nebula.testing.pytest_plugin"]`` in a conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nebula.testing._cluster import Cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A connected cluster with a 1-CPU head node; add nodes with ``cluster.add_node()``."""
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as c:
        yield c
