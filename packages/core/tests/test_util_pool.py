"""The multiprocessing.Pool drop-in: the standard library's behaviour, on actors."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing.pool import RemoteTraceback  # type: ignore[attr-defined]
from typing import Any

import pytest

import nebula
from nebula.util.multiprocessing import TimeoutError as PoolTimeoutError
from nebula.util.multiprocessing.pool import Pool

# Set by the pool's initializer in each worker; read back by the tasks below.
_worker_token: str | None = None
_init_calls = 0


@pytest.fixture(scope="module", autouse=True)
def _nebula() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@pytest.fixture
def pool() -> Iterator[Pool]:
    with Pool(2) as p:
        yield p


def square(x: int) -> int:
    return x * x


def add(a: int, b: int, c: int = 0) -> int:
    return a + b + c


def sleep_then_return(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def raise_key_error() -> None:
    raise KeyError("missing")


def remember_worker(tag: str) -> None:
    global _worker_token, _init_calls
    _worker_token = f"{tag}-{os.getpid()}-{uuid.uuid4().hex}"
    _init_calls += 1


def worker_identity(_: Any = None) -> tuple[int, str | None, int]:
    return os.getpid(), _worker_token, _init_calls


def test_apply_and_apply_async(pool: Pool) -> None:
    assert pool.apply(add, (1, 2), {"c": 3}) == 6
    result = pool.apply_async(square, (7,))
    assert result.get(timeout=10) == 49
    assert result.ready()
    assert result.successful()


def test_map_starmap_and_their_async_forms(pool: Pool) -> None:
    assert pool.map(square, range(10)) == [x * x for x in range(10)]
    assert pool.map(square, []) == []
    assert pool.map(square, iter(range(5)), chunksize=2) == [0, 1, 4, 9, 16]
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.map_async(square, range(4)).get(timeout=10) == [0, 1, 4, 9]
    assert pool.starmap_async(add, [(1, 1, 1)]).get(timeout=10) == [3]


def test_callbacks_run_before_get_returns(pool: Pool) -> None:
    seen: list[Any] = []
    errors: list[BaseException] = []
    pool.apply_async(square, (3,), callback=seen.append).get(timeout=10)
    pool.map_async(square, [1, 2], callback=seen.append).get(timeout=10)
    failed = pool.apply_async(raise_key_error, error_callback=errors.append)
    failed.wait(timeout=10)
    assert seen == [9, [1, 4]]
    assert len(errors) == 1
    assert isinstance(errors[0], KeyError)
    assert not failed.successful()


def test_callback_runs_without_anyone_calling_get(pool: Pool) -> None:
    called = threading.Event()
    pool.apply_async(square, (2,), callback=lambda _: called.set())
    assert called.wait(timeout=10)


def test_errors_come_back_as_the_original_class(pool: Pool) -> None:
    with pytest.raises(KeyError) as info:
        pool.apply(raise_key_error)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "raise_key_error" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="bad item 3"):
        pool.map(fail_on_three, range(6), chunksize=2)
    with pytest.raises(ValueError, match="bad item 3"):
        pool.map_async(fail_on_three, range(6)).get(timeout=10)
    with pytest.raises(ValueError, match="bad item 3"):
        pool.starmap(fail_on_three, [(3,)])


def test_imap_keeps_order_and_reports_errors_in_place(pool: Pool) -> None:
    delays = [0.4, 0.0, 0.2, 0.0, 0.1]
    assert list(pool.imap(sleep_then_return, delays)) == delays
    assert list(pool.imap(square, range(7), chunksize=3)) == [x * x for x in range(7)]
    results = pool.imap(fail_on_three, range(5))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError):
        next(results)
    assert list(results) == [4]


def test_imap_yields_before_the_whole_input_is_done(pool: Pool) -> None:
    results = pool.imap(sleep_then_return, [0.0, 5.0])
    assert results.next(timeout=30) == 0.0
    with pytest.raises(PoolTimeoutError):
        results.next(timeout=0.05)


def test_imap_reads_an_endless_input_lazily(pool: Pool) -> None:
    def naturals() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    results = pool.imap(square, naturals())
    assert [next(results) for _ in range(20)] == [x * x for x in range(20)]


def test_imap_unordered_yields_in_completion_order(pool: Pool) -> None:
    pool.map(square, range(2), chunksize=1)  # Both actors up, so neither starts late.
    delays = [1.0, 0.0, 0.0, 0.0]
    results = list(pool.imap_unordered(sleep_then_return, delays))
    assert sorted(results) == sorted(delays)
    assert results[-1] == 1.0
    assert sorted(pool.imap_unordered(square, range(9), chunksize=2)) == sorted(
        x * x for x in range(9)
    )


def test_chunks_run_as_one_call_in_one_worker(pool: Pool) -> None:
    identities = pool.map(worker_identity, range(8), chunksize=4)
    assert len({identity[:2] for identity in identities[:4]}) == 1
    assert len({identity[:2] for identity in identities[4:]}) == 1
    with pytest.raises(ValueError):
        pool.map(square, range(3), chunksize=0)
    with pytest.raises(ValueError):
        pool.imap(square, range(3), chunksize=0)


def test_async_result_api(pool: Pool) -> None:
    result = pool.apply_async(sleep_then_return, (0.5,))
    with pytest.raises(ValueError):
        result.successful()
    assert not result.ready()
    assert PoolTimeoutError is multiprocessing.TimeoutError
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.05)
    result.wait(timeout=10)
    assert result.ready()
    assert result.successful()
    assert result.get() == 0.5


def test_initializer_runs_once_in_each_worker() -> None:
    with Pool(2, initializer=remember_worker, initargs=("w",)) as pool:
        identities = pool.map(worker_identity, range(40), chunksize=1)
    by_pid: dict[int, set[str | None]] = {}
    for pid, token, init_calls in identities:
        assert token is not None
        assert token.startswith(f"w-{pid}-")
        assert init_calls == 1
        by_pid.setdefault(pid, set()).add(token)
    assert 1 <= len(by_pid) <= 2
    assert all(len(tokens) == 1 for tokens in by_pid.values())
    assert pid != os.getpid()


def test_maxtasksperchild_restarts_the_worker() -> None:
    with Pool(1, initializer=remember_worker, initargs=("m",), maxtasksperchild=2) as pool:
        identities = pool.map(worker_identity, range(6), chunksize=1)
    tokens = [token for _, token, _ in identities]
    assert len(set(tokens)) == 3
    assert all(tokens.count(token) == 2 for token in tokens)


def test_default_size_is_the_cluster_cpu_count() -> None:
    with Pool() as pool:
        assert "pool_size=2" in repr(pool)
        assert pool.map(square, range(3)) == [0, 1, 4]


def test_closed_pool_refuses_work_and_joins() -> None:
    pool = Pool(2)
    result = pool.map_async(sleep_then_return, [0.2, 0.2])
    with pytest.raises(ValueError, match="Pool is still running"):
        pool.join()
    pool.close()
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply(square, (1,))
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(square, [1])
    with pytest.raises(ValueError, match="Pool not running"):
        pool.imap_unordered(square, [1])
    pool.join()
    assert result.get(timeout=0) == [0.2, 0.2]


def test_context_manager_terminates() -> None:
    with Pool(2) as pool:
        slow = pool.apply_async(sleep_then_return, (30.0,))
        assert pool.apply(square, (4,)) == 16
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply(square, (1,))
    with pytest.raises(ValueError):
        slow.get(timeout=10)
    pool.join()
    with pytest.raises(ValueError, match="Pool not running"):
        pool.__enter__()


def test_invalid_arguments_and_pickling() -> None:
    with pytest.raises(ValueError):
        Pool(0)
    with pytest.raises(ValueError):
        Pool(1, maxtasksperchild=0)
    with pytest.raises(TypeError):
        Pool(1, initializer=42)  # type: ignore[arg-type]
    with Pool(1) as pool, pytest.raises(NotImplementedError):
        pickle.dumps(pool)
