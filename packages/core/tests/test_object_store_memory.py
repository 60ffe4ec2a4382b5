"""A bounded object store: spilling to disk, restoring on get, objects larger than it on disk."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

import numpy as np
import pytest

import nebula
from nebula._config import SHM_DIR
from nebula.testing import wait_for_condition

CAPACITY = 64 * 1024 * 1024
ARRAY_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def session() -> Iterator[dict[str, object]]:
    info = nebula.init(num_cpus=2, object_store_memory=CAPACITY)
    yield dict(info)
    nebula.shutdown()


def _tag(session: dict[str, object]) -> str:
    return os.path.basename(str(session["session_dir"])).rsplit("_", 1)[-1]


def _shm_bytes(session: dict[str, object]) -> int:
    files = glob.glob(os.path.join(SHM_DIR, f"nebula-{_tag(session)}-*"))
    return sum(os.path.getsize(f) for f in files if os.path.exists(f))


def _kept_bytes(session: dict[str, object]) -> int:
    files = glob.glob(os.path.join(SHM_DIR, f"nebula-{_tag(session)}-free*"))
    return sum(os.path.getsize(f) for f in files if os.path.exists(f))


def _spill_files(session: dict[str, object]) -> list[str]:
    return glob.glob(os.path.join(str(session["session_dir"]), "spill", "*", "*"))


@nebula.remote
def checksum(array: np.ndarray) -> int:
    return int(array.sum())


def test_three_times_the_store_comes_back_intact(session: dict[str, object]) -> None:
    count = 3 * CAPACITY // ARRAY_BYTES
    refs = []
    for i in range(count):
        refs.append(nebula.put(np.full(ARRAY_BYTES // 8, i, dtype=np.int64)))
        assert _shm_bytes(session) <= CAPACITY
    assert _spill_files(session), "nothing was spilled although the store overflowed"
    for i, ref in enumerate(refs):
        array = nebula.get(ref)
        assert array.shape == (ARRAY_BYTES // 8,)
        assert array[0] == i and array[-1] == i
        del array
    expected = [i * (ARRAY_BYTES // 8) for i in range(3)]
    assert nebula.get([checksum.remote(ref) for ref in refs[:3]]) == expected
    del refs, ref
    wait_for_condition(lambda: not _spill_files(session), timeout=10)
    # Every object's file is gone; freed files kept for the next writes stay within the store.
    wait_for_condition(lambda: _shm_bytes(session) == _kept_bytes(session), timeout=10)
    assert _kept_bytes(session) <= CAPACITY


def test_task_results_spill_too(session: dict[str, object]) -> None:
    @nebula.remote
    def make(i: int) -> np.ndarray:
        return np.full(ARRAY_BYTES // 8, i, dtype=np.int64)

    refs = [make.remote(i) for i in range(2 * CAPACITY // ARRAY_BYTES)]
    assert [int(nebula.get(r)[7]) for r in refs] == list(range(len(refs)))


def test_an_object_larger_than_the_store_goes_to_disk_and_reads_back(
    session: dict[str, object],
) -> None:
    value = np.arange(2 * CAPACITY // 8)
    ref = nebula.put(value)
    assert nebula.get(ref)[-1] == value[-1]
    assert nebula.get(checksum.remote(ref)) == int(value.sum())
    # It never took the store's memory: a value that fits is still stored at once.
    assert nebula.get(nebula.put(np.arange(10)))[9] == 9
    del ref


SMALL_ITEMS = ARRAY_BYTES // 32  # 4 MiB arrays: freed files up to a quarter of the store are kept


def _freed_files(session: dict[str, object]) -> list[str]:
    return glob.glob(os.path.join(SHM_DIR, f"nebula-{_tag(session)}-free*"))


def test_freed_memory_is_reused_by_the_next_value(session: dict[str, object]) -> None:
    kept_before = set(_freed_files(session))
    ref = nebula.put(np.zeros(SMALL_ITEMS, dtype=np.int64))
    del ref  # nobody maps it: its pages are kept for the next writer
    wait_for_condition(lambda: set(_freed_files(session)) - kept_before, timeout=10)
    kept = set(_freed_files(session))
    again = nebula.put(np.full(SMALL_ITEMS, 3, dtype=np.int64))
    assert len(set(_freed_files(session)) & kept) == len(kept) - 1  # one became the value
    assert nebula.get(again).sum() == 3 * SMALL_ITEMS
    assert nebula.get(checksum.remote(again)) == 3 * SMALL_ITEMS


def test_a_view_still_alive_keeps_its_pages_when_its_ref_is_gone(
    session: dict[str, object],
) -> None:
    ref = nebula.put(np.full(SMALL_ITEMS, 7, dtype=np.int64))
    view = nebula.get(ref)  # zero-copy: it reads the shared memory itself
    files = len(glob.glob(os.path.join(SHM_DIR, f"nebula-{_tag(session)}-*")))
    del ref  # freed while the view is alive: its file must not be handed to a writer
    wait_for_condition(
        lambda: len(glob.glob(os.path.join(SHM_DIR, f"nebula-{_tag(session)}-*"))) < files,
        timeout=10,
    )
    for i in range(6):
        nebula.put(np.full(SMALL_ITEMS, i, dtype=np.int64))  # each freed at once
    assert view[0] == 7 and view[-1] == 7 and int(view.sum()) == 7 * (SMALL_ITEMS)
