"""Shared fixtures for the core test suite.

Every test here runs against real processes started through the public API. The session-wide
check at the end fails the run if a test left a process or a shared-memory segment behind.
Waiting and leak-finding come from ``nebula.testing``, which users and the other packages
use too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

import nebula
from nebula.testing import leaked_shm_files, shm_files

# Local clusters start without a dashboard unless a test asks for one
# (include_dashboard=True): a dashboard process per test cluster would cost the suite time.
os.environ.setdefault("NEBULA_INCLUDE_DASHBOARD", "0")


def child_processes() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def describe(processes: list[psutil.Process]) -> list[str]:
    out = []
    for process in processes:
        try:
            out.append(f"{process.pid}: {' '.join(process.cmdline())}")
        except psutil.Error:
            out.append(f"{process.pid}: <gone>")
    return out


@pytest.fixture(name="shm_files", scope="session")
def shm_files_fixture() -> Callable[[str], list[str]]:
    """``shm_files(tag="*")``: the shared-memory segments of one cluster, or of all."""
    return shm_files


@pytest.fixture(scope="module")
def nebula_cluster() -> Iterator[dict[str, Any]]:
    """A local cluster with 2 CPUs shared by every test of a module; yields ``init``'s info."""
    context = nebula.init(num_cpus=2)
    try:
        yield dict(context)
    finally:
        nebula.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _no_leaks_at_end() -> Iterator[None]:
    """After the whole session: no cluster process and no shared-memory segment remain."""
    before = set(shm_files())
    yield
    if nebula.is_initialized():
        nebula.shutdown()
    # shutdown stops processes synchronously; the grace period covers slow exits only.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and (child_processes() or leaked_shm_files(before)):
        time.sleep(0.1)
    leaked_processes = describe(child_processes())
    leaked_files = leaked_shm_files(before)
    assert not leaked_processes, f"processes left behind: {leaked_processes}"
    assert not leaked_files, f"shared-memory segments left behind: {leaked_files}"
