"""A tour of Nebula's core: tasks, objects and actors on a local cluster of real processes."""

from __future__ import annotations

import os
import time

import numpy as np

import nebula


@nebula.remote
def slow_square(x: int) -> int:
    time.sleep(0.5)
    return x * x


@nebula.remote
def create_matrix(size: int) -> np.ndarray:
    return np.random.default_rng(size).normal(size=(size, size))


@nebula.remote
def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b


@nebula.remote
def add(x: int, y: int) -> int:
    time.sleep(0.2)
    return x + y


@nebula.remote
class Counter:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> int:
        self.value += 1
        return self.value


@nebula.remote
def bump(counter: nebula.ActorHandle, times: int) -> int:
    return nebula.get([counter.increment.remote() for _ in range(times)])[-1]


def main() -> None:
    started = time.perf_counter()
    nebula.init(num_cpus=4)
    print(
        f"Started a local cluster in {time.perf_counter() - started:.2f}s: "
        f"{nebula.cluster_resources()['CPU']:g} CPUs, pid {os.getpid()} is the driver"
    )

    # Wait for the four worker processes to finish starting, so the timing below is the
    # tasks' own.
    nebula.get([add.options(num_cpus=1).remote(0, 0) for _ in range(4)])
    t0 = time.perf_counter()
    squares = nebula.get([slow_square.remote(i) for i in range(4)])
    print(
        f"tasks:   4 x 0.5 s tasks ran in parallel in {time.perf_counter() - t0:.2f}s -> {squares}"
    )

    x, y = create_matrix.remote(300), create_matrix.remote(300)
    z = nebula.get(multiply.remote(x, y))
    print(f"DAG:     multiply(create_matrix(), create_matrix()) -> shape {z.shape}")

    values = [1, 2, 3, 4, 5, 6, 7, 8]
    t0 = time.perf_counter()
    while len(values) > 1:
        values = [*values[2:], add.remote(values[0], values[1])]
    print(
        f"tree:    sum of 1..8 by tree aggregation = {nebula.get(values[0])} "
        f"in {time.perf_counter() - t0:.2f}s"
    )

    array = np.arange(10_000_000, dtype=np.float64)
    ref = nebula.put(array)
    view = nebula.get(ref)
    print(
        f"objects: put {array.nbytes / 2**20:.0f} MiB; get returns a read-only zero-copy view "
        f"(writeable={view.flags.writeable}), sum={view.sum():.0f}"
    )

    counter = Counter.remote()
    totals = nebula.get([bump.remote(counter, 25) for _ in range(4)])
    final = nebula.get(counter.increment.remote()) - 1
    print(
        f"actors:  4 tasks shared one Counter actor through its handle -> {final} increments "
        f"(last values seen by tasks: {sorted(totals)})"
    )

    nebula.shutdown()
    print(f"Shut down cleanly; the whole tour took {time.perf_counter() - started:.2f}s.")


if __name__ == "__main__":
    main()
