"""Generator tasks: a remote function that yields gives an ``ObjectRefGenerator`` of one
``ObjectRef`` per item; ``num_returns=N`` takes exactly N items as N returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

import nebula


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


def test_an_exception_in_the_generator_reaches_the_caller() -> None:
    with pytest.raises(KeyError, match="generator broke"):
        list(fails_after_one.remote())


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
