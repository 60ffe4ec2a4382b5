"""How map operators run: callable classes on actors, concurrency, compute strategies and
per-task resources (``num_cpus=``, ``num_gpus=``, ``resources=``), as Ray users pass them."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pytest
from nebula.data._executor import StreamingExecutor

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    # One GPU is declared (none is needed to run): tasks asking for it get its id.
    nebula.init(num_cpus=2, num_gpus=1, resources={"slot": 1})
    yield
    nebula.shutdown()


class AddOffset:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.pid = os.getpid()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"id": row["id"] + self.offset, "pid": self.pid}


class KeepMultiples:
    def __init__(self, of: int) -> None:
        self.of = of

    def __call__(self, row: dict[str, Any]) -> bool:
        return row["id"] % self.of == 0


class Repeat:
    def __call__(self, row: dict[str, Any], times: int) -> list[dict[str, Any]]:
        return [{"id": row["id"]}] * times


class BatchPid:
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"id": batch["id"], "pid": np.full(len(batch["id"]), os.getpid())}


def test_row_udfs_accept_callable_classes_on_a_pool_of_actors() -> None:
    ds = nd.range(40, parallelism=4)
    mapped = ds.map(AddOffset, fn_constructor_args=(100,), concurrency=2).take_all()
    assert [row["id"] for row in mapped] == list(range(100, 140))
    assert 1 <= len({row["pid"] for row in mapped}) <= 2  # built once per actor, not per row
    kept = ds.filter(KeepMultiples, fn_constructor_kwargs={"of": 5}, concurrency=1)
    assert [row["id"] for row in kept.take_all()] == list(range(0, 40, 5))
    repeated = nd.range(3).flat_map(Repeat, fn_kwargs={"times": 2}, concurrency=1)
    assert [row["id"] for row in repeated.take_all()] == [0, 0, 1, 1, 2, 2]


def test_builtin_types_are_functions_not_actor_classes() -> None:
    assert nd.from_items([{"v": 0}, {"v": 3}]).map_batches(dict).count() == 2
    assert nd.from_items([{"v": 0}, {"v": 3}]).filter(lambda row: bool(row["v"])).count() == 1


def test_resource_arguments_reach_every_task() -> None:
    def stamp(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        start = time.time()
        time.sleep(0.2)
        return {"start": [start], "end": [time.time()], "gpus": [nebula.get_gpu_ids()]}

    # Only one task at a time can hold the cluster's single "slot": the runs never overlap,
    # although two CPUs would let two tasks run together.
    runs = nd.range(4, parallelism=4).map_batches(stamp, resources={"slot": 1}).take_all()
    spans = sorted((row["start"], row["end"]) for row in runs)
    assert len(spans) == 4
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))

    gpu_rows = nd.range(2, parallelism=2).map_batches(stamp, num_gpus=1).take_all()
    assert [list(row["gpus"]) for row in gpu_rows] == [[0], [0]]


def test_operators_asking_for_other_resources_are_not_fused() -> None:
    ds = nd.range(10).map(lambda row: row).map(lambda row: row, num_cpus=0.5)
    ds = ds.filter(bool, num_cpus=0.5).filter(bool)
    plan = ds.explain().split("-------- Physical Plan --------")[1]
    assert plan.strip() == (
        "Input -> ReadRange->Map(<lambda>) -> Map(<lambda>)->Filter(bool) -> Filter(bool)"
    )
    assert ds.count() == 10  # a row is a non-empty dict: bool(row) holds


def test_a_task_no_node_could_run_fails_at_once() -> None:
    with pytest.raises(ValueError, match=r"GPU=2 per task.*could never run"):
        nd.range(4).map(lambda row: row, num_gpus=2).take_all()
    with pytest.raises(ValueError, match="missing=1 per task"):
        nd.range(4).map_batches(lambda batch: batch, resources={"missing": 1}).count()


def test_wrong_resource_arguments_fail_when_given() -> None:
    with pytest.raises(TypeError, match="'bogus' is not one of"):
        nd.range(4).map(lambda row: row, bogus=1)
    with pytest.raises(ValueError, match="num_cpus"):
        nd.range(4).map_batches(lambda batch: batch, num_cpus=-1)
    with pytest.raises(ValueError, match="sets num_returns itself"):
        nd.range(4).map(lambda row: row, num_returns=2)


def test_concurrency_range_sizes_the_pool_by_the_cpus_left_for_tasks() -> None:
    # Two CPUs: one stays for the read tasks feeding the pool, so one actor of 1 CPU fits.
    ds = nd.range(60, parallelism=6).map_batches(BatchPid, concurrency=(1, 4), num_cpus=1)
    rows = ds.take_all()
    assert [row["id"] for row in rows] == list(range(60))
    assert len({row["pid"] for row in rows}) == 1
    # Without a CPU per actor, the pool gets its maximum size.
    free = nd.range(60, parallelism=6).map_batches(BatchPid, concurrency=(1, 3), batch_size=10)
    assert [row["id"] for row in free.take_all()] == list(range(60))
    pools = [
        op for op in StreamingExecutor(free._plan).operators if op.name == "MapBatches(BatchPid)"
    ]
    assert [op._pool_size for op in pools] == [3]


def test_a_pool_that_cannot_fit_is_an_error_not_a_hang() -> None:
    ds = nd.range(10, parallelism=2).map_batches(BatchPid, concurrency=2, num_cpus=1)
    with pytest.raises(ValueError, match="needs 2 actors of num_cpus=1 beside the 1 CPU"):
        ds.take_all()
    # Blocks already in the store need no tasks, so the pool may take every CPU.
    items = nd.from_items([{"id": i} for i in range(10)])
    assert items.map_batches(BatchPid, concurrency=2, num_cpus=1).count() == 10


def test_compute_strategies() -> None:
    pool = nd.range(20).map_batches(BatchPid, compute=nd.ActorPoolStrategy(size=2))
    assert sorted(row["id"] for row in pool.take_all()) == list(range(20))
    ranged = nd.ActorPoolStrategy(min_size=1, max_size=2)
    assert nd.range(20).map_batches(BatchPid, compute=ranged).count() == 20
    tasks = nd.range(20).map_batches(lambda b: b, compute=nd.TaskPoolStrategy(size=1))
    assert tasks.count() == 20
    with pytest.raises(ValueError, match="needs a callable class"):
        nd.range(2).map_batches(lambda b: b, compute=nd.ActorPoolStrategy(size=1))
    with pytest.raises(ValueError, match="not both"):
        nd.range(2).map_batches(BatchPid, concurrency=1, compute=nd.ActorPoolStrategy(size=1))
    with pytest.raises(ValueError, match="min <= max"):
        nd.range(2).map_batches(BatchPid, concurrency=(3, 1))
    with pytest.raises(ValueError, match="a function takes an int"):
        nd.range(2).map_batches(lambda b: b, concurrency=(1, 2))
    with pytest.raises(ValueError, match="size, or min_size/max_size"):
        nd.ActorPoolStrategy(size=1, max_size=2)


def test_map_batches_accepts_ray_batch_arguments() -> None:
    ds = nd.range(10).map_batches(lambda b: b, batch_size="default", zero_copy_batch=True)
    assert ds.sum("id") == 45
    with pytest.raises(ValueError, match="batch_size"):
        nd.range(10).map_batches(lambda b: b, batch_size=0)


def test_a_udf_that_is_not_callable_fails_when_given() -> None:
    with pytest.raises(TypeError, match="map takes a function or a callable class, got int"):
        nd.range(3).map(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="map_batches takes a function"):
        nd.range(3).map_batches(None)
    with pytest.raises(TypeError, match="filter takes a function"):
        nd.range(3).filter(5)
    with pytest.raises(TypeError, match="map_groups takes a function"):
        nd.range(3).groupby("id").map_groups("f")
