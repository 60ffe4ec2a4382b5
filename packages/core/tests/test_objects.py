"""The object store: inline vs shared-memory values, zero-copy numpy, and freeing objects."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nebula
from nebula.testing import wait_for_condition

pytestmark = pytest.mark.usefixtures("nebula_cluster")

SMALL = b"x" * 1024
LARGE_BYTES = 200 * 1024  # above the ~100 KiB inline limit


@pytest.fixture
def cluster_shm(
    nebula_cluster: dict[str, Any], shm_files: Callable[[str], list[str]]
) -> Callable[[], list[str]]:
    """The shared-memory segments of this module's cluster, right now."""
    tag = os.path.basename(str(nebula_cluster["session_dir"])).rsplit("_", 1)[-1]
    return lambda: shm_files(tag)


@nebula.remote
def make_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


@nebula.remote
def describe_array(arr: np.ndarray) -> tuple[str, tuple[int, ...], float, bool]:
    return str(arr.dtype), arr.shape, float(arr.sum()), bool(arr.flags.writeable)


@nebula.remote
def double(arr: np.ndarray) -> np.ndarray:
    return arr * 2


# ------------------------------------------------------------ small and large


def test_small_values_stay_out_of_shared_memory(cluster_shm: Callable[[], list[str]]) -> None:
    before = cluster_shm()
    ref = nebula.put(SMALL)
    assert nebula.get(ref) == SMALL
    assert cluster_shm() == before


def test_large_put_lives_in_shared_memory_until_the_ref_is_dropped(
    cluster_shm: Callable[[], list[str]],
) -> None:
    before = set(cluster_shm())
    ref = nebula.put(np.zeros(LARGE_BYTES // 8))
    created = set(cluster_shm()) - before
    assert len(created) == 1, f"expected one new segment, got {created}"
    assert nebula.get(ref).nbytes == LARGE_BYTES
    del ref
    gc.collect()
    wait_for_condition(lambda: not (set(cluster_shm()) & created), timeout=5)


def test_large_task_result_lives_in_shared_memory_until_the_ref_is_dropped(
    cluster_shm: Callable[[], list[str]],
) -> None:
    before = set(cluster_shm())
    ref = make_array.remote(LARGE_BYTES // 8)
    value = nebula.get(ref)
    assert value[-1] == LARGE_BYTES // 8 - 1
    created = set(cluster_shm()) - before
    assert len(created) == 1
    del ref, value
    gc.collect()
    wait_for_condition(lambda: not (set(cluster_shm()) & created), timeout=5)


def test_large_bytes_round_trip_exactly() -> None:
    data = os.urandom(LARGE_BYTES)
    assert nebula.get(nebula.put(data)) == data


# -------------------------------------------------------------------- zero copy


def test_get_of_a_large_array_is_a_read_only_view_of_shared_memory() -> None:
    ref = nebula.put(np.arange(50_000, dtype=np.float64))
    arr = nebula.get(ref)
    np.testing.assert_array_equal(arr, np.arange(50_000, dtype=np.float64))
    assert arr.flags.writeable is False
    assert arr.flags.owndata is False  # a view, not a private copy
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 1.0


def test_two_gets_of_one_object_share_memory() -> None:
    ref = nebula.put(np.arange(50_000, dtype=np.float64))
    first = nebula.get(ref)
    second = nebula.get(ref)
    assert np.shares_memory(first, second)


def test_arrays_inside_containers_come_back_intact() -> None:
    value = {"a": np.ones((300, 300)), "b": [np.arange(5), "text"]}
    got = nebula.get(nebula.put(value))
    np.testing.assert_array_equal(got["a"], value["a"])
    np.testing.assert_array_equal(got["b"][0], np.arange(5))
    assert got["b"][1] == "text"


def test_array_outlives_its_ref() -> None:
    ref = nebula.put(np.full(LARGE_BYTES // 8, 7, dtype=np.int64))
    arr = nebula.get(ref)
    del ref
    gc.collect()
    # The view must stay readable after the object is freed.
    assert int(arr.sum()) == 7 * (LARGE_BYTES // 8)


# ------------------------------------------------------------ arrays and tasks


def test_numpy_arrays_pass_through_tasks() -> None:
    small = np.arange(10, dtype=np.int32)
    assert nebula.get(describe_array.remote(small))[:3] == ("int32", (10,), 45.0)
    # A large argument reaches the task as a read-only view of shared memory.
    large = np.arange(100_000, dtype=np.int32)
    assert nebula.get(describe_array.remote(large)) == (
        "int32",
        (100_000,),
        float(large.sum()),
        False,
    )
    result = nebula.get(double.remote(np.ones((400, 100))))
    np.testing.assert_array_equal(result, np.full((400, 100), 2.0))


def test_array_produced_by_one_task_is_consumed_by_another() -> None:
    produced = make_array.remote(100_000)
    doubled = nebula.get(double.remote(produced))
    np.testing.assert_array_equal(doubled, np.arange(100_000) * 2)


# ---------------------------------------------------------------------- freeing


def test_objects_are_freed_when_no_ref_remains(cluster_shm: Callable[[], list[str]]) -> None:
    before = set(cluster_shm())
    refs = [nebula.put(np.full(LARGE_BYTES // 8, i)) for i in range(5)]
    assert len(set(cluster_shm()) - before) == 5
    del refs[:3]
    gc.collect()
    wait_for_condition(lambda: len(set(cluster_shm()) - before) == 2, timeout=5)
    assert [int(nebula.get(r)[0]) for r in refs] == [3, 4]
    refs.clear()
    gc.collect()
    wait_for_condition(lambda: not set(cluster_shm()) - before, timeout=5)


def test_refs_inside_a_put_value_keep_their_objects_alive(
    cluster_shm: Callable[[], list[str]],
) -> None:
    before = set(cluster_shm())
    inner = nebula.put(np.full(LARGE_BYTES // 8, 3, dtype=np.int64))
    outer = nebula.put({"inner": inner})
    del inner
    gc.collect()
    # The inner object survives: the outer value still refers to it.
    inner_again = nebula.get(outer)["inner"]
    assert isinstance(inner_again, nebula.ObjectRef)
    assert int(nebula.get(inner_again)[0]) == 3
    del inner_again, outer
    gc.collect()
    wait_for_condition(lambda: not set(cluster_shm()) - before, timeout=5)


def test_ref_held_by_a_task_result_keeps_the_object_alive() -> None:
    @nebula.remote
    def wrap() -> list[nebula.ObjectRef]:
        return [nebula.put(np.arange(LARGE_BYTES // 8))]

    [inner] = nebula.get(wrap.remote())
    gc.collect()
    assert int(nebula.get(inner)[-1]) == LARGE_BYTES // 8 - 1
