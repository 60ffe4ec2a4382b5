"""ActorPool: Ray's API for sharing a fixed set of actors among many calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import nebula
from nebula.util._actor_pool import ActorPool


@pytest.fixture(scope="module", autouse=True)
def _nebula() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


class Doubler:
    def double(self, value: int) -> int:
        return 2 * value

    def slow_double(self, value: int, delay: float) -> int:
        time.sleep(delay)
        return 2 * value

    def fail(self, value: int) -> int:
        raise ValueError(f"cannot take {value}")


@pytest.fixture(scope="module")
def actors() -> list[Any]:
    # No CPU held, so the two actors leave room for anything else the module starts.
    actor_cls = nebula.remote(num_cpus=0)(Doubler)
    return [actor_cls.remote(), actor_cls.remote()]


def test_map_keeps_input_order(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    delays = [0.3, 0.0, 0.2, 0.0, 0.1]
    results = pool.map(lambda a, v: a.slow_double.remote(v[0], v[1]), enumerate(delays))
    assert list(results) == [0, 2, 4, 6, 8]
    assert not pool.has_next()


def test_map_unordered_yields_the_fast_ones_first(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    nebula.get([actor.double.remote(0) for actor in actors])  # Both up, neither starts late.
    delays = [1.0, 0.0, 0.0, 0.0]
    results = list(
        pool.map_unordered(lambda a, v: a.slow_double.remote(v[0], v[1]), enumerate(delays))
    )
    assert sorted(results) == [0, 2, 4, 6]
    assert results[-1] == 0


def test_submit_queues_when_every_actor_is_busy(actors: list[Any]) -> None:
    pool = ActorPool(actors[:1])
    for value in range(4):
        pool.submit(lambda a, v: a.double.remote(v), value)
    assert not pool.has_free()
    assert [pool.get_next(timeout=10) for _ in range(4)] == [0, 2, 4, 6]
    assert not pool.has_next()
    assert pool.has_free()
    with pytest.raises(StopIteration):
        pool.get_next()


def test_get_next_timeout(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.slow_double.remote(v, 0.5), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05)
    # Without ignore_if_timedout the call stays first in line.
    assert pool.get_next(timeout=10) == 2
    assert pool.get_next(timeout=10) == 4


def test_get_next_ignore_if_timedout_skips_the_call(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.slow_double.remote(v, 0.5), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)
    assert pool.get_next(timeout=10) == 4
    assert not pool.has_next()


def test_get_next_unordered_and_its_timeout(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.slow_double.remote(v, 0.5), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    assert pool.get_next_unordered(timeout=10) == 4
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.05)
    assert pool.get_next_unordered(timeout=10) == 2
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_errors_come_back_as_the_original_class(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.fail.remote(v), 7)
    with pytest.raises(ValueError, match="cannot take 7"):
        pool.get_next(timeout=10)
    assert pool.has_free()


def test_map_discards_results_nobody_read(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.double.remote(v), 100)
    assert list(pool.map(lambda a, v: a.double.remote(v), [1, 2])) == [2, 4]


def test_pop_idle_and_push(actors: list[Any]) -> None:
    pool = ActorPool(actors)
    assert pool.has_free()
    first = pool.pop_idle()
    second = pool.pop_idle()
    assert first is not None
    assert second is not None
    assert pool.pop_idle() is None
    assert not pool.has_free()
    pool.push(first)
    with pytest.raises(ValueError):
        pool.push(first)
    pool.submit(lambda a, v: a.double.remote(v), 5)
    assert not pool.has_free()
    # A returned actor picks up what was waiting for one.
    pool.submit(lambda a, v: a.double.remote(v), 6)
    pool.push(second)
    assert [pool.get_next(timeout=10), pool.get_next(timeout=10)] == [10, 12]
    assert pool.has_free()
