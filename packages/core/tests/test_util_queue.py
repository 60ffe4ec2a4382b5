"""Queue: a FIFO shared by the driver, tasks and actors, held by an async actor."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

import nebula
from nebula.util._queue import Empty, Full, Queue


@pytest.fixture(scope="module", autouse=True)
def _nebula() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture
def q() -> Iterator[Queue]:
    q = Queue()
    yield q
    q.shutdown(force=True)


@nebula.remote
def produce(q: Queue, items: list[Any], delay: float = 0.0) -> None:
    time.sleep(delay)
    for item in items:
        q.put(item)


@nebula.remote
def consume(q: Queue, count: int) -> list[Any]:
    return [q.get(timeout=10) for _ in range(count)]


class Relay:
    def __init__(self, q: Queue) -> None:
        self.q = q

    def forward(self, count: int) -> int:
        for _ in range(count):
            self.q.put(self.q.get(timeout=10) * 10)
        return count


def test_put_get_in_order_and_sizes(q: Queue) -> None:
    assert q.empty()
    assert not q.full()
    for item in ["a", "b", {"c": 3}]:
        q.put(item)
    assert q.qsize() == q.size() == len(q) == 3
    assert not q.empty()
    assert [q.get(), q.get_nowait(), q.get(block=False)] == ["a", "b", {"c": 3}]
    assert q.empty()


def test_items_cross_from_task_to_driver_and_back(q: Queue) -> None:
    nebula.get(produce.remote(q, [1, 2, 3]), timeout=30)
    assert [q.get(timeout=10) for _ in range(3)] == [1, 2, 3]
    q.put_nowait_batch([4, 5])
    assert nebula.get(consume.remote(q, 2), timeout=30) == [4, 5]


def test_blocking_get_waits_for_a_later_put(q: Queue) -> None:
    ref = produce.remote(q, ["late"], 0.3)
    assert q.get(timeout=20) == "late"
    nebula.get(ref, timeout=10)


def test_queue_passes_to_an_actor(q: Queue) -> None:
    relay = nebula.remote(num_cpus=0)(Relay).remote(q)
    try:
        q.put_nowait_batch([1, 2])
        assert nebula.get(relay.forward.remote(2), timeout=30) == 2
        assert q.get_nowait_batch(2) == [10, 20]
    finally:
        nebula.kill(relay)


def test_empty_raises_at_once_or_after_the_timeout(q: Queue) -> None:
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    started = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    with pytest.raises(ValueError):
        q.get(timeout=-1)


def test_full_raises_at_once_or_after_the_timeout() -> None:
    q = Queue(maxsize=1)
    try:
        q.put(1, timeout=0)
        assert q.full()
        with pytest.raises(Full):
            q.put(2, block=False)
        with pytest.raises(queue.Full):
            q.put_nowait(2)
        started = time.monotonic()
        with pytest.raises(Full):
            q.put(2, timeout=0.2)
        assert time.monotonic() - started >= 0.2
        assert q.get() == 1
        q.put(3, timeout=1)
        assert q.qsize() == 1
    finally:
        q.shutdown()


def test_batches_are_all_or_nothing() -> None:
    q = Queue(maxsize=3)
    try:
        q.put_nowait_batch([1, 2])
        with pytest.raises(Full):
            q.put_nowait_batch([3, 4])
        assert q.qsize() == 2
        with pytest.raises(Empty):
            q.get_nowait_batch(3)
        assert q.qsize() == 2
        assert q.get_nowait_batch(2) == [1, 2]
        assert q.get_nowait_batch(0) == []
        with pytest.raises(TypeError):
            q.get_nowait_batch(1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            q.get_nowait_batch(-1)
    finally:
        q.shutdown(force=True)


def test_async_put_and_get(q: Queue) -> None:
    async def roundtrip() -> list[Any]:
        await q.put_async("x")
        await q.put_async("y", block=False)
        first = await q.get_async()
        second = await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.05)
        return [first, second]

    assert asyncio.run(roundtrip()) == ["x", "y"]


def test_many_blocked_getters_do_not_stall_the_queue(q: Queue) -> None:
    refs = [consume.remote(q, 1) for _ in range(2)]
    time.sleep(0.2)
    assert q.qsize() == 0
    q.put_nowait_batch(["p", "q"])
    assert sorted(item for items in nebula.get(refs, timeout=30) for item in items) == ["p", "q"]


def test_shutdown_makes_the_queue_unusable() -> None:
    q = Queue()
    q.put(1)
    q.shutdown(grace_period_s=1)
    q.shutdown()
    with pytest.raises(RuntimeError):
        q.put(2)
