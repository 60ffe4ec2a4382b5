"""Execution: the memory budget, prefetching iter_batches, progress bars and stats."""

from __future__ import annotations

import copy
import dataclasses
import io
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import nebula.data as nd
import numpy as np
import pytest
from nebula.data._budget import format_bytes

import nebula
from nebula.testing import leaked_processes, wait_for_condition

MiB = 2**20
STORE_BYTES = 64 * MiB


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2, object_store_memory=STORE_BYTES)
    yield
    nebula.shutdown()
    assert leaked_processes() == []


@pytest.fixture
def context() -> Iterator[nd.DataContext]:
    """The current DataContext, restored after the test."""
    current = nd.DataContext.get_current()
    saved = {f.name: copy.deepcopy(getattr(current, f.name)) for f in dataclasses.fields(current)}
    yield current
    for name, value in saved.items():
        setattr(current, name, value)


def big_column(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn each id into 8 bytes of float64 payload plus the id itself."""
    return {"id": batch["id"], "x": np.ones(len(batch["id"]), dtype=np.float64)}


def first_and_last(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"id": batch["id"][[0, -1]]}


def add_one(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"id": batch["id"] + 1}


def fail_on_seven(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if 7 in batch["id"]:
        raise ValueError("seven is not allowed")
    return batch


# ---- memory budget ----------------------------------------------------------------------


def test_streams_ten_times_the_object_store_within_the_budget(context: nd.DataContext) -> None:
    budget = 24 * MiB
    context.object_store_memory_limit = budget
    context.max_in_flight_per_operator = 16  # the block bound alone would allow 64 MiB
    rows_per_block = 256 * 1024  # 4 MiB of output per block (id + x)
    blocks = 160  # 640 MiB in all: ten times the store
    ds = nd.range(rows_per_block * blocks, parallelism=blocks).map_batches(
        big_column, batch_size=None
    )
    seen = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        seen += batch.num_rows
    assert seen == rows_per_block * blocks
    executor = ds._last_executor
    assert executor is not None and executor.memory is not None
    assert executor.memory.limit == budget
    assert 0 < executor.memory.peak <= budget
    produced = executor.operators[-1].stats.output_bytes
    assert produced >= 10 * STORE_BYTES
    assert f"of a {format_bytes(budget)} budget" in ds.stats()


def test_a_block_bigger_than_the_budget_still_streams(context: nd.DataContext) -> None:
    context.object_store_memory_limit = 1 * MiB
    rows_per_block = 256 * 1024
    ds = (
        nd.range(rows_per_block * 6, parallelism=6)
        .map_batches(big_column, batch_size=None, concurrency=2)
        .map_batches(first_and_last, batch_size=None, concurrency=2)
    )
    ids = [int(v) for batch in ds.iter_batches(batch_size=None) for v in batch["id"]]
    expected = []
    for block in range(6):
        expected += [block * rows_per_block, (block + 1) * rows_per_block - 1]
    assert ids == expected


def test_an_exchange_larger_than_the_budget_completes(context: nd.DataContext) -> None:
    context.object_store_memory_limit = 1 * MiB
    ds = (
        nd.range(200_000, parallelism=20)
        .map_batches(big_column, batch_size=None)
        .sort("id", descending=True)
        .map_batches(add_one, batch_size=None)
    )
    ids = [int(v) for batch in ds.iter_batches(batch_size=50_000) for v in batch["id"]]
    assert ids == list(range(200_000, 0, -1))


def test_default_budget_is_a_share_of_the_object_store(
    context: nd.DataContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        nebula, "cluster_resources", lambda: {"CPU": 2.0, "object_store_memory": float(STORE_BYTES)}
    )
    assert context.object_store_memory_limit is None
    assert context.memory_limit() == STORE_BYTES // 2
    context.object_store_memory_fraction = 0.25
    assert context.memory_limit() == STORE_BYTES // 4
    context.object_store_memory_limit = 5 * MiB
    assert context.memory_limit() == 5 * MiB


def test_bad_budget_settings_say_what_to_do(context: nd.DataContext) -> None:
    context.object_store_memory_limit = -1
    with pytest.raises(ValueError, match="object_store_memory_limit must be a positive"):
        nd.range(10).take_all()
    context.object_store_memory_limit = None
    context.object_store_memory_fraction = 1.5
    with pytest.raises(ValueError, match=r"object_store_memory_fraction must be a number in"):
        nd.range(10).take_all()


# ---- iter_batches prefetching -----------------------------------------------------------


@pytest.mark.parametrize("prefetch_batches", [0, 1, 3])
def test_iter_batches_keeps_exact_sizes_and_order(prefetch_batches: int) -> None:
    ds = nd.range(103, parallelism=7).map_batches(add_one)
    batches = list(ds.iter_batches(batch_size=10, prefetch_batches=prefetch_batches))
    assert [len(batch["id"]) for batch in batches] == [10] * 10 + [3]
    assert [int(v) for batch in batches for v in batch["id"]] == list(range(1, 104))


def test_prefetch_computes_ahead_while_the_consumer_works(context: nd.DataContext) -> None:
    context.max_in_flight_per_operator = 2
    ds = nd.range(40, parallelism=20).map_batches(add_one)
    batches = ds.iter_batches(batch_size=None, prefetch_batches=3)
    assert [int(v) for v in next(batches)["id"]] == [1, 2]
    executor = ds._last_executor
    assert executor is not None
    # The consumer holds its first batch; the pipeline still fills the prefetch queue.
    wait_for_condition(lambda: executor.operators[-1].stats.blocks >= 4, timeout=30)
    rest = [int(v) for batch in batches for v in batch["id"]]
    assert rest == list(range(3, 41))


def test_prefetch_raises_the_udf_error_and_stops_when_closed() -> None:
    with pytest.raises(ValueError, match="seven is not allowed"):
        list(nd.range(20, parallelism=10).map_batches(fail_on_seven).iter_batches())
    batches: Any = nd.range(1000, parallelism=100).iter_batches(batch_size=5, prefetch_batches=2)
    next(batches)
    batches.close()
    names = [thread.name for thread in threading.enumerate()]
    assert "nebula-data-prefetch" not in names


def test_bad_prefetch_batches_is_rejected() -> None:
    with pytest.raises(ValueError, match="prefetch_batches must be >= 0"):
        next(nd.range(3).iter_batches(prefetch_batches=-1))


# ---- progress bars ----------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_progress_bars_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert nd.range(50, parallelism=5).map_batches(add_one).count() == 50
    assert capsys.readouterr().err == ""


def test_progress_bars_name_each_operator_on_a_terminal(
    context: nd.DataContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    ds = nd.range(60, parallelism=6).map_batches(add_one, concurrency=1).filter(bool)
    assert len(list(ds.iter_batches(batch_size=None))) == 6
    shown = terminal.getvalue()
    assert "ReadRange" in shown and "MapBatches(add_one)" in shown and "Filter(bool)" in shown
    assert "60" in shown and "row" in shown

    context.enable_progress_bars = False
    quiet = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert ds.count() == 60
    assert quiet.getvalue() == ""


# ---- stats ------------------------------------------------------------------------------


def slow_add_one(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    time.sleep(0.01)
    return add_one(batch)


def test_stats_report_every_operator_and_the_dataset_total(context: nd.DataContext) -> None:
    context.object_store_memory_limit = 32 * MiB
    ds = nd.range(1000, parallelism=10).map_batches(slow_add_one, concurrency=2)
    assert len(ds.take_all()) == 1000
    text = ds.stats()
    lines = text.splitlines()
    assert len(lines) == 3
    number = r"\d+\.\d{3}s"

    def operator(index: int, name: str) -> str:
        return (
            rf"Operator {index} {name}: 10 tasks, 10 blocks, 1000 rows, 7\.8 KiB output; "
            rf"task time {number} total, {number} mean, {number} max per block; "
            rf"wall time {number}; peak held \d+\.\d (B|KiB)"
        )

    assert re.fullmatch(operator(1, "ReadRange"), lines[0]), lines[0]
    assert re.fullmatch(operator(2, r"MapBatches\(slow_add_one\)"), lines[1]), lines[1]
    assert re.fullmatch(
        rf"Dataset total: 20 tasks, 10 blocks, 1000 rows, 7\.8 KiB output; task time {number}; "
        rf"wall time {number}; peak held \d+\.\d (B|KiB) of a 32\.0 MiB budget",
        lines[2],
    ), lines[2]
    executor: Any = ds._last_executor
    mapping = executor.operators[2].stats
    assert mapping.task_seconds_max >= 0.01
    assert mapping.task_seconds_max <= mapping.task_seconds
