"""Generator tasks: a remote function that yields gives an ``ObjectRefGenerator`` of one
``ObjectRef`` per item, each sent as soon as it is yielded; ``num_returns=N`` takes exactly N
items as N returns."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

import nebula
from nebula.testing import wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@nebula.remote
def arrays(n: int) -> Iterator[np.ndarray]:
    for i in range(n):
        yield np.full(100_000, i, dtype=np.int64)  # large enough for shared memory


@nebula.remote
async def counting(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


@nebula.remote(num_returns=2)
def pair() -> Iterator[str]:
    yield "first"
    yield "second"


@nebula.remote
def fails_after_one() -> Iterator[int]:
    yield 1
    raise KeyError("generator broke")


@nebula.remote
def sum_of(refs: list[nebula.ObjectRef]) -> int:
    return sum(int(nebula.get(ref)[0]) for ref in refs)


def test_a_generator_task_gives_one_ref_per_item_in_order() -> None:
    generator = arrays.remote(4)
    assert isinstance(generator, nebula.ObjectRefGenerator)
    refs = list(generator)
    assert all(isinstance(ref, nebula.ObjectRef) for ref in refs)
    assert [int(nebula.get(ref)[0]) for ref in refs] == [0, 1, 2, 3]
    assert nebula.get(sum_of.remote(refs)) == 6  # the refs travel to other tasks
    assert list(arrays.options(num_returns="streaming").remote(0)) == []


def test_async_generators_and_async_iteration() -> None:
    assert [nebula.get(ref) for ref in counting.remote(3)] == [0, 1, 2]

    async def consume() -> list[int]:
        return [await ref async for ref in counting.remote(5)]

    assert asyncio.run(consume()) == [0, 1, 2, 3, 4]


def test_num_returns_takes_that_many_items() -> None:
    first, second = pair.remote()
    assert nebula.get([first, second]) == ["first", "second"]


def test_an_exception_in_the_generator_reaches_the_caller_after_its_items() -> None:
    generator = fails_after_one.remote()
    assert nebula.get(next(generator)) == 1
    with pytest.raises(KeyError, match="generator broke"):
        next(generator)
    with pytest.raises(StopIteration):
        next(generator)


@nebula.remote
def waits_for_the_consumer(flag: str) -> Iterator[str]:
    yield "first"
    deadline = time.monotonic() + 30
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield "second" if os.path.exists(flag) else "the first item was not streamed"


def test_items_reach_the_caller_while_the_generator_runs(tmp_path: Path) -> None:
    # The task only ends after the caller has seen its first item: without streaming, the
    # caller would get both items together after 30 s, and the second would say so.
    flag = str(tmp_path / "seen")
    generator = waits_for_the_consumer.remote(flag)
    assert nebula.get(next(generator)) == "first"
    open(flag, "w").close()
    assert nebula.get(next(generator)) == "second"
    assert list(generator) == []
    assert nebula.get(generator.completed()) == 2


def test_items_not_taken_are_freed_with_the_generator() -> None:
    from nebula._api.runtime import require_core_worker

    generator = arrays.remote(3)
    nebula.get(generator.completed())  # every item has arrived
    task_prefix = next(generator).object_id[:16]
    entries = require_core_worker().refs.entries

    def held() -> list[bytes]:
        return [oid for oid in list(entries) if oid.startswith(task_prefix)]

    assert len(held()) >= 3  # the completion, and the two items not taken yet
    del generator
    gc.collect()
    wait_for_condition(lambda: not held(), timeout=10)


def test_a_generator_cannot_be_passed_to_a_task() -> None:
    with pytest.raises(TypeError, match="pass the ObjectRefs"):
        sum_of.remote(arrays.remote(1))


def test_streaming_needs_a_generator_and_dynamic_is_refused() -> None:
    plain = nebula.remote(lambda: 1)
    with pytest.raises(TypeError, match="needs a generator function"):
        plain.options(num_returns="streaming").remote()
    with pytest.raises(ValueError, match="'dynamic' is not supported"):
        arrays.options(num_returns="dynamic")


@nebula.remote
class Streamer:
    def numbers(self, n: int) -> Iterator[int]:
        yield from range(n)

    async def later(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 10

    @nebula.method(num_returns=2)
    def two(self) -> Iterator[str]:
        yield "a"
        yield "b"


def test_actor_generator_methods_give_object_ref_generators() -> None:
    actor = Streamer.remote()
    numbers = actor.numbers.remote(3)
    assert isinstance(numbers, nebula.ObjectRefGenerator)
    assert [nebula.get(ref) for ref in numbers] == [0, 1, 2]
    assert [nebula.get(ref) for ref in actor.later.remote(3)] == [0, 10, 20]
    assert nebula.get(actor.two.remote()) == ["a", "b"]
    streamed = actor.two.options(num_returns="streaming").remote()
    assert [nebula.get(ref) for ref in streamed] == ["a", "b"]
    nebula.kill(actor)


@nebula.remote
class AsyncStreamer:
    async def ping(self) -> str:
        return "pong"

    async def ticks(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i


def test_async_generator_methods_run_on_the_actors_event_loop() -> None:
    actor = AsyncStreamer.remote()
    assert nebula.get(actor.ping.remote()) == "pong"
    assert [nebula.get(ref) for ref in actor.ticks.remote(4)] == [0, 1, 2, 3]
    nebula.kill(actor)


@nebula.remote
def endless() -> Iterator[int]:
    count = 0
    while True:
        yield count
        count += 1
        time.sleep(0.01)


def test_cancel_stops_a_generator_task() -> None:
    generator = endless.remote()
    assert nebula.get(next(generator)) == 0
    nebula.cancel(generator)
    with pytest.raises(nebula.exceptions.TaskCancelledError):
        for _ in range(10_000):  # the items already sent, then the cancellation
            next(generator)


@nebula.remote(max_retries=2)
def dies_once_midway(n: int, marker: str) -> Iterator[int]:
    for i in range(n):
        if i == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        yield i


@nebula.remote(max_retries=0)
def dies_after_one(marker: str) -> Iterator[int]:
    yield 0
    deadline = time.monotonic() + 30  # until the caller has item 0 (a crash loses unsent items)
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(1)


def test_a_retried_generator_gives_each_item_once(tmp_path: Path) -> None:
    # The first attempt sends items 0-2 and dies; the retry sends 0-5 again: the repeats
    # are recognised by their index and dropped.
    items = [nebula.get(ref) for ref in dies_once_midway.remote(6, str(tmp_path / "died"))]
    assert items == [0, 1, 2, 3, 4, 5]


def test_a_generator_whose_worker_dies_raises_after_its_items(tmp_path: Path) -> None:
    marker = tmp_path / "got-it"
    generator = dies_after_one.remote(str(marker))
    assert nebula.get(next(generator)) == 0
    marker.touch()
    with pytest.raises(nebula.exceptions.WorkerCrashedError):
        next(generator)
