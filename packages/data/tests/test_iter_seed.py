"""Seed 000 ("Parallel Iterator API"): each snippet, ported by changing only the imports.

``import ray`` becomes ``import nebula as ray`` and ``ray.experimental.iter`` becomes
``nebula.data.iter``; the syslog example reads a small gzip file written here instead of
``/var/log/syslog*.gz``, and the infinite training loop stops after a few batches.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nebula.data.iter as par_iter
import numpy as np
import pytest
from nebula.data.iter import ParallelIteratorWorker

import nebula as ray


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One local cluster for the module; reuse one a conftest may already have started."""
    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


def test_concepts_parallel_iterators() -> None:
    it = par_iter.from_items([1, 2, 3, 4], num_shards=2)
    assert repr(it) == "ParallelIterator[from_items[int, 4, shards=2]]"
    it = par_iter.from_range(1000000, num_shards=32)
    assert repr(it) == "ParallelIterator[from_range[1000000, shards=32]]"
    it = par_iter.from_iterators([range(10), range(10)])
    assert repr(it) == "ParallelIterator[from_iterators[shards=2]]"

    @ray.remote(num_cpus=0)
    class Worker(ParallelIteratorWorker):
        def __init__(self, n: int) -> None:
            super().__init__(range(n), repeat=False)

    a1, a2, a3, a4 = (Worker.remote(i) for i in range(1, 5))
    it = par_iter.from_actors([a1, a2, a3, a4])
    assert repr(it) == "ParallelIterator[from_actors[shards=4]]"
    assert sorted(it.gather_sync()) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 3]


def test_concepts_chained_transformations() -> None:
    it = par_iter.from_range(1000, num_shards=2)
    it = it.for_each(lambda x: x**2)
    assert repr(it) == "ParallelIterator[from_range[1000, shards=2]].for_each()"
    it = it.batch(32)
    assert repr(it).endswith("].for_each().batch(32)")
    it = it.filter(
        lambda x: x % 2 == 0
    )  # as in the seed; x is a batch, so only the repr is checked
    assert repr(it).endswith("].for_each().batch(32).filter()")


def test_concepts_local_iterators() -> None:
    it = par_iter.from_range(1000000, 1)
    it = it.gather_sync()
    assert (
        repr(it) == "LocalIterator[ParallelIterator[from_range[1000000, shards=1]].gather_sync()]"
    )
    assert it.take(5) == [0, 1, 2, 3, 4]
    assert it.filter(lambda x: x % 2 == 0).take(5) == [0, 2, 4, 6, 8]

    it = par_iter.from_range(1000, 4).gather_async()
    first = it.take(5)
    assert len(first) == 5 and len(set(first)) == 5
    assert all(0 <= x < 1000 for x in first)  # the seed shows [0, 250, 500, 750, 1]: any order


def test_passing_iterators_to_remote_functions() -> None:
    it = par_iter.from_range(10000, 3)
    assert [repr(s) for s in it.shards()] == [
        "LocalIterator[from_range[10000, shards=3].shard[0]]",
        "LocalIterator[from_range[10000, shards=3].shard[1]]",
        "LocalIterator[from_range[10000, shards=3].shard[2]]",
    ]

    @ray.remote
    def do_sum(it: Any) -> int:
        return sum(it)

    assert ray.get([do_sum.remote(s) for s in it.shards()]) == [5552778, 16661667, 27780555]


def test_example_streaming_word_frequency(tmp_path: Path) -> None:
    lines = [f"Nov 23 host {'CRON' if i % 4 else 'cron'}[{i}]: job {i}\n" for i in range(3000)]
    for index in range(2):
        with gzip.open(tmp_path / f"syslog.{index}.gz", "wt") as f:
            f.writelines(lines)
    file_list = sorted(str(p) for p in tmp_path.glob("syslog*.gz"))

    it = (
        par_iter.from_items(file_list, num_shards=4)
        .for_each(lambda f: gzip.open(f).readlines())  # noqa: SIM115 (verbatim from the seed)
        .flatten()
        .for_each(lambda line: line.decode("utf-8"))
        .for_each(lambda line: 1 if "cron" in line else 0)
        .batch(1024)
        .for_each(np.mean)
    )
    freqs = list(it.gather_async())
    assert len(freqs) == 6  # two files of 3000 lines: batches of 1024, 1024 and 952 each
    assert all(0.24 < freq < 0.26 for freq in freqs)


def test_example_training_on_repeated_shards() -> None:
    @ray.remote
    def train(data_shard: Any) -> list[tuple[int, ...]]:
        shapes = []
        for batch in itertools.islice(data_shard, 3):  # the seed trains forever
            shapes.append(batch.shape)  # perform model update with batch
        return shapes

    it = par_iter.from_range(1000000, num_shards=4, repeat=True).batch(1024).for_each(np.array)
    work = [train.remote(shard) for shard in it.shards()]
    assert ray.get(work) == [[(1024,)] * 3] * 4
