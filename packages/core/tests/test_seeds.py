"""The programs from the seed articles (001 and 003), run unchanged apart from the import.

Sleeps and loop counts are shortened so each test takes a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

import nebula as ray


@pytest.fixture(scope="module", autouse=True)
def ray_with_4_cpus() -> Iterator[None]:
    ray.init(num_cpus=4)
    try:
        yield
    finally:
        ray.shutdown()


# -------------------------------------------------------------------- seed 001


@ray.remote
def f(x: int) -> int:
    time.sleep(0.5)
    return x


def test_seed_001_tasks_run_in_parallel() -> None:
    ray.get([f.remote(i) for i in range(4)])  # start the workers first
    start = time.monotonic()
    result_ids = []
    for i in range(4):
        result_ids.append(f.remote(i))
    results = ray.get(result_ids)
    assert results == [0, 1, 2, 3]
    assert time.monotonic() - start < 1.5  # 4 x 0.5 s run side by side


@ray.remote
def create_matrix(size: list[int]) -> np.ndarray:
    return np.random.normal(size=size)


@ray.remote
def multiply_matrices(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.dot(x, y)


def test_seed_001_matrix_dag() -> None:
    x_id = create_matrix.remote([1000, 1000])
    y_id = create_matrix.remote([1000, 1000])
    z_id = multiply_matrices.remote(x_id, y_id)
    z = ray.get(z_id)
    assert z.shape == (1000, 1000)
    np.testing.assert_allclose(z, np.dot(ray.get(x_id), ray.get(y_id)))


ADD_SLEEP_S = 0.3


@ray.remote
def add(x: int, y: int) -> int:
    time.sleep(ADD_SLEEP_S)
    return x + y


def _linear_explicit() -> int:
    id1 = add.remote(1, 2)
    id2 = add.remote(id1, 3)
    id3 = add.remote(id2, 4)
    id4 = add.remote(id3, 5)
    id5 = add.remote(id4, 6)
    id6 = add.remote(id5, 7)
    id7 = add.remote(id6, 8)
    return ray.get(id7)


def _tree_explicit() -> int:
    id1 = add.remote(1, 2)
    id2 = add.remote(3, 4)
    id3 = add.remote(5, 6)
    id4 = add.remote(7, 8)
    id5 = add.remote(id1, id2)
    id6 = add.remote(id3, id4)
    id7 = add.remote(id5, id6)
    return ray.get(id7)


def _linear_loop() -> int:
    values: list = [1, 2, 3, 4, 5, 6, 7, 8]
    while len(values) > 1:
        values = [add.remote(values[0], values[1]), *values[2:]]
    return ray.get(values[0])


def _tree_loop() -> int:
    values: list = [1, 2, 3, 4, 5, 6, 7, 8]
    while len(values) > 1:
        values = [*values[2:], add.remote(values[0], values[1])]
    return ray.get(values[0])


def _timed(fn: object) -> tuple[int, float]:
    assert callable(fn)
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


@pytest.mark.parametrize(
    ("linear", "tree"),
    [(_linear_explicit, _tree_explicit), (_linear_loop, _tree_loop)],
    ids=["explicit", "while-loop"],
)
def test_seed_001_tree_aggregation_beats_linear(linear: object, tree: object) -> None:
    ray.get([add.remote(0, 0) for _ in range(4)])  # start the workers first
    linear_result, linear_s = _timed(linear)
    tree_result, tree_s = _timed(tree)
    assert linear_result == tree_result == 36
    # 7 sequential steps against 3 levels.
    assert linear_s >= 7 * ADD_SLEEP_S
    assert tree_s < linear_s - 2 * ADD_SLEEP_S, (linear_s, tree_s)


@ray.remote
class Counter:
    def __init__(self) -> None:
        self.x = 0

    def inc(self) -> None:
        self.x += 1

    def get_value(self) -> int:
        return self.x


def test_seed_001_counter_actor() -> None:
    c = Counter.remote()
    assert ray.get(c.get_value.remote()) == 0
    c.inc.remote()
    c.inc.remote()
    assert ray.get(c.get_value.remote()) == 2


@ray.remote
class MessageActor:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add_message(self, message: str) -> None:
        self.messages.append(message)

    def get_and_clear_messages(self) -> list[str]:
        messages = self.messages
        self.messages = []
        return messages


MESSAGES_PER_WORKER = 5


@ray.remote
def worker(message_actor: ray.ActorHandle, j: int) -> None:
    for i in range(MESSAGES_PER_WORKER):
        time.sleep(0.1)
        message_actor.add_message.remote(f"Message {i} from worker {j}.")


def test_seed_001_message_actor_with_handles_passed_to_tasks() -> None:
    message_actor = MessageActor.remote()
    workers = [worker.remote(message_actor, j) for j in range(3)]
    batches: list[list[str]] = []
    deadline = time.monotonic() + 20
    while sum(map(len, batches)) < 3 * MESSAGES_PER_WORKER and time.monotonic() < deadline:
        batches.append(ray.get(message_actor.get_and_clear_messages.remote()))
        time.sleep(0.1)
    ray.get(workers)
    batches.append(ray.get(message_actor.get_and_clear_messages.remote()))
    received = [m for batch in batches for m in batch]
    expected = {
        f"Message {i} from worker {j}." for i in range(MESSAGES_PER_WORKER) for j in range(3)
    }
    assert sorted(received) == sorted(expected)
    # Messages arrive while the workers run, not all at the end.
    assert sum(1 for batch in batches if batch) > 1
    # Each worker's messages arrive in the order it sent them.
    for j in range(3):
        mine = [m for m in received if m.endswith(f"worker {j}.")]
        assert mine == [f"Message {i} from worker {j}." for i in range(MESSAGES_PER_WORKER)]


# -------------------------------------------------------------------- seed 003


def expensive_process(record: int) -> int:
    time.sleep(0.05 * (record % 3))
    return record * 10


@ray.remote
def slow(record: int) -> int:
    return expensive_process(record)


RECORDS = list(range(12))


def test_seed_003_wait_loop() -> None:
    futures = [slow.remote(r) for r in RECORDS]
    values = []
    while len(futures) > 0:
        finished, rest = ray.wait(futures)
        assert len(finished) == 1
        value = ray.get(finished[0])
        values.append(value)
        futures = rest
    assert sorted(values) == [r * 10 for r in RECORDS]


@ray.remote
class CountedSlows:
    def __init__(self, initial_count: int = 0) -> None:
        self.count = initial_count

    def slow(self, record: int) -> int:
        self.count += 1
        new_record = expensive_process(record)
        return new_record

    def get_count(self) -> int:
        return self.count


def test_seed_003_counted_slows() -> None:
    cs = CountedSlows.remote()
    futures = [cs.slow.remote(r) for r in RECORDS]
    values = []
    while len(futures) > 0:
        finished, rest = ray.wait(futures)
        values.append(ray.get(finished[0]))
        futures = rest
    count_future_id = cs.get_count.remote()
    assert ray.get(count_future_id) == len(RECORDS)
    assert sorted(values) == [r * 10 for r in RECORDS]


def test_seed_003_put_and_get() -> None:
    state = {"weights": np.arange(10), "step": 3}
    state_id = ray.put(state)
    got = ray.get(state_id)
    assert got["step"] == 3
    np.testing.assert_array_equal(got["weights"], np.arange(10))
