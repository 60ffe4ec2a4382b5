"""Shared fixtures and helpers for the core test suite.

Every test here runs against real processes started through the public API. The session-wide
check at the end fails the run if a test left a process or a shared-memory segment behind.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

import nebula

SHM_DIR = "/dev/shm"


def _wait_for_condition(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate!r}")
        time.sleep(interval)


def session_tag(context: Any) -> str:
    """The tag naming a local cluster's shared-memory files, from what ``init`` returned."""
    return os.path.basename(str(context["session_dir"])).rsplit("_", 1)[-1]


def shm_files(tag: str = "*") -> list[str]:
    """Shared-memory segments of one cluster (``tag``) or of every cluster on the machine."""
    return sorted(glob.glob(os.path.join(SHM_DIR, f"nebula-{tag}-*")))


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


@pytest.fixture(name="wait_for_condition", scope="session")
def wait_for_condition_fixture() -> Callable[..., None]:
    """``wait_for_condition(predicate, timeout=10.0)``: poll until true or fail."""
    return _wait_for_condition


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


def _tags_in_use_elsewhere() -> set[str]:
    """Session tags of clusters run by processes outside this test process's tree.

    Other test runs may share the machine; their segments are not ours to judge.
    """
    ours = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    tags = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["pid"] in ours or "--session-tag" not in cmdline:
            continue
        index = cmdline.index("--session-tag")
        if index + 1 < len(cmdline):
            tags.add(cmdline[index + 1])
    return tags


def _leaked_files(before: set[str]) -> list[str]:
    elsewhere = _tags_in_use_elsewhere()
    return [
        path
        for path in shm_files()
        if path not in before and os.path.basename(path).split("-")[1] not in elsewhere
    ]


@pytest.fixture(scope="session", autouse=True)
def _no_leaks_at_end() -> Iterator[None]:
    """After the whole session: no cluster process and no shared-memory segment remain."""
    before = set(shm_files())
    yield
    if nebula.is_initialized():
        nebula.shutdown()
    # shutdown stops processes synchronously; the grace period covers slow exits only.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and (child_processes() or _leaked_files(before)):
        time.sleep(0.1)
    leaked_processes = describe(child_processes())
    leaked_files = _leaked_files(before)
    assert not leaked_processes, f"processes left behind: {leaked_processes}"
    assert not leaked_files, f"shared-memory segments left behind: {leaked_files}"
