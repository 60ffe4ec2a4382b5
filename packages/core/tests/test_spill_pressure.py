"""Writes under memory pressure: a store a fraction of the data written at once.

Objects being written hold their room until they are sealed; a write that does not fit
beside them waits for it (sealed objects are spilled to make room) instead of failing, and
gives up with ObjectStoreFullError only after a bounded wait.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nebula
from nebula._api.runtime import require_core_worker
from nebula._object_store.store import ObjectStore
from nebula.exceptions import ObjectStoreFullError

MB = 1 << 20
CAPACITY = 24 * MB
BLOCK = 16 * MB  # two written at once do not fit
WAIT_S = 3.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    os.environ["NEBULA_OBJECT_STORE_FULL_WAIT_S"] = str(WAIT_S)
    try:
        nebula.init(num_cpus=2, object_store_memory=CAPACITY)
    finally:
        del os.environ["NEBULA_OBJECT_STORE_FULL_WAIT_S"]
    yield
    nebula.shutdown()


@nebula.remote
def block(i: int) -> np.ndarray:
    return np.full(BLOCK // 8, i, dtype=np.int64)


@nebula.remote
def first_last(array: np.ndarray) -> tuple[int, int]:
    return int(array[0]), int(array[-1])


def test_task_outputs_written_at_once_wait_for_room_and_spill(cluster: None) -> None:
    refs = [block.remote(i) for i in range(8)]  # 128 MiB through a 24 MiB store
    for i, ref in enumerate(refs):
        array = nebula.get(ref, timeout=60)
        assert array[0] == i and array[-1] == i
        del array
    assert nebula.get([first_last.remote(r) for r in refs], timeout=60) == [
        (i, i) for i in range(8)
    ]


def test_driver_puts_beside_task_outputs(cluster: None) -> None:
    outputs = [block.remote(i) for i in range(4)]
    puts = [nebula.put(np.full(BLOCK // 8, 100 + i, dtype=np.int64)) for i in range(4)]
    for i, ref in enumerate(outputs + puts):
        expected = i if i < 4 else 100 + i - 4
        assert int(nebula.get(ref, timeout=60)[-1]) == expected


def test_a_write_that_never_finds_room_fails_after_the_wait(cluster: None) -> None:
    cw = require_core_worker()
    held = b"h" * 20  # a reservation never sealed: its room never comes back
    cw.reserve_space(held, CAPACITY - MB)
    try:
        with pytest.raises(ObjectStoreFullError, match="stayed full"):
            nebula.put(np.zeros(2 * MB // 8))
    finally:
        from nebula import _protocol as p

        cw.send(cw.node_manager, p.FreeObjects((held,)))
    assert int(nebula.get(nebula.put(np.ones(2 * MB // 8))).sum()) == 2 * MB // 8


def test_the_store_says_when_a_write_must_wait(tmp_path: Path) -> None:
    store = ObjectStore(10 * MB, str(tmp_path / "spill"))
    try:
        assert not store.must_wait(10 * MB)  # nothing being written: spill or refuse at once
        store.reserve(b"a" * 20, 6 * MB)
        assert store.must_wait(5 * MB)
        assert not store.must_wait(4 * MB)
        assert not store.must_wait(6 * MB, b"a" * 20)  # its own reservation does not count
    finally:
        store.close()
