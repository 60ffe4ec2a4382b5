from __future__ import annotations

from collections.abc import Iterator

import pytest

import nebula

pytest_plugins = ["nebula.testing.pytest_plugin"]


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[None]:
    """One 2-CPU cluster shared by a module's tests."""
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()
