"""Pytest fixtures built on ``nebula.testing``.

Enable with ``pytest_plugins = ["nebula.testing.pytest_plugin"]`` in a conftest.py. It gives
the ``cluster`` fixture and fails the run when tests leave a Nebula process or a
shared-memory file behind (checked once, after the last test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nebula.testing._cluster import Cluster
from nebula.testing._conditions import wait_for_condition
from nebula.testing._leaks import leaked_processes, leaked_shm_files, shm_files


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A connected cluster with a 1-CPU head node; add nodes with ``cluster.add_node()``."""
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as c:
        yield c


@pytest.fixture(scope="session", autouse=True)
def nebula_leak_check() -> Iterator[None]:
    """After the session: no Nebula process of this run and no shared-memory file remain."""
    before = shm_files()
    yield
    import nebula

    if nebula.is_initialized():
        nebula.shutdown()
    try:
        wait_for_condition(
            lambda: not leaked_processes() and not leaked_shm_files(before), timeout=10
        )
    except RuntimeError:
        pids, files = leaked_processes(), leaked_shm_files(before)
        pytest.fail(f"tests left Nebula processes {pids} and shared-memory files {files} behind")
