"""The single-machine scale workloads, written once for Nebula and for Ray.

Each workload is what Ray's single-node release test runs (``test_single_node.py``), with
the sizes as arguments so the same code runs at full size in the benchmark and small in a
quick check. ``lib`` is the imported module (``nebula`` or ``ray``); both have the same API.
Run one workload in a fresh interpreter::

    python benchmarks/scale/workloads.py --lib nebula --workload many_args --size 10000

It prints one JSON line: the workload, its size, the seconds it took and, where it applies,
the peak memory of the driver.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np
import psutil


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def many_args(lib: ModuleType, size: int) -> dict[str, Any]:
    """One task with ``size`` arguments, each a list of 10,000 ints passed by value."""

    @lib.remote
    def sum_args(*args: list[int]) -> int:
        return sum(sum(arg) for arg in args)

    args = [[1 for _ in range(10000)] for _ in range(size)]
    start = time.perf_counter()
    assert lib.get(sum_args.remote(*args)) == size * 10000
    return {"seconds": time.perf_counter() - start}


def many_ref_args(lib: ModuleType, size: int) -> dict[str, Any]:
    """One task with ``size`` ObjectRef arguments (each a put list of 10,000 ints)."""

    @lib.remote
    def sum_args(*args: list[int]) -> int:
        return sum(sum(arg) for arg in args)

    start = time.perf_counter()
    refs = [lib.put([1] * 10000) for _ in range(size)]
    assert lib.get(sum_args.remote(*refs)) == size * 10000
    return {"seconds": time.perf_counter() - start}


def many_returns(lib: ModuleType, size: int) -> dict[str, Any]:
    """One task returning ``size`` values (num_returns), each list(range(10000))."""

    @lib.remote(num_returns=size)
    def f() -> tuple[list[int], ...]:
        return tuple(list(range(10000)) for _ in range(size))

    start = time.perf_counter()
    refs = f.remote()
    assert len(refs) == size
    expected = list(range(10000))
    for ref in refs:
        assert lib.get(ref) == expected
    return {"seconds": time.perf_counter() - start}


def many_returns_floor(lib: ModuleType, size: int) -> dict[str, Any]:
    """The work of ``many_returns`` in one process, no framework: build the values, pickle
    each, unpickle each and compare. Neither library can return them faster than this."""
    import pickle

    start = time.perf_counter()
    values = tuple(list(range(10000)) for _ in range(size))
    built = time.perf_counter()
    blobs = [pickle.dumps(value, protocol=5) for value in values]
    pickled = time.perf_counter()
    expected = list(range(10000))
    for blob in blobs:
        assert pickle.loads(blob) == expected
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "build_s": built - start,
        "pickle_s": pickled - built,
        "unpickle_s": end - pickled,
    }


def get_many(lib: ModuleType, size: int) -> dict[str, Any]:
    """``size`` puts of list(range(10000)) then one get of them all; then the same with
    numpy arrays (zero-copy reads)."""
    start = time.perf_counter()
    refs = [lib.put(list(range(10000))) for _ in range(size)]
    results = lib.get(refs)
    expected = list(range(10000))
    assert len(results) == size and all(obj == expected for obj in results)
    lists_s = time.perf_counter() - start
    del refs, results
    start = time.perf_counter()
    refs = [lib.put(np.arange(10000)) for _ in range(size)]
    arrays = lib.get(refs)
    assert len(arrays) == size and all(int(a[-1]) == 9999 for a in arrays)
    arrays_s = time.perf_counter() - start
    return {"seconds": lists_s + arrays_s, "lists_s": lists_s, "arrays_s": arrays_s}


def queued_tasks(lib: ModuleType, size: int) -> dict[str, Any]:
    """Every CPU blocked on a semaphore, ``size`` tasks queued behind them, then drained.

    Reports the driver's memory growth per queued task (RSS after queueing minus before).
    """

    @lib.remote(num_cpus=0)
    class Semaphore:
        def __init__(self) -> None:
            self.value = 0

        def release(self) -> None:
            self.value += 1

        def acquire(self) -> bool:
            if self.value > 0:
                self.value -= 1
                return True
            return False

    sema = Semaphore.remote()

    @lib.remote(num_cpus=1)
    def block(s: Any) -> None:
        while not lib.get(s.acquire.remote()):
            time.sleep(0.01)

    @lib.remote(num_cpus=1)
    def f() -> None:
        return None

    num_cpus = int(lib.cluster_resources()["CPU"])
    lib.get(sema.release.remote())  # the actor is up before timing starts
    lib.get(sema.acquire.remote())
    blocked = [block.remote(sema) for _ in range(num_cpus)]
    time.sleep(1.0)
    before = _rss()
    start = time.perf_counter()
    pending = [f.remote() for _ in range(size)]
    submit_s = time.perf_counter() - start
    queued_rss = _rss()
    for _ in range(num_cpus):
        sema.release.remote()
    lib.get(blocked)
    drain_start = time.perf_counter()
    for ref in pending:
        assert lib.get(ref) is None
    drain_s = time.perf_counter() - drain_start
    return {
        "seconds": time.perf_counter() - start,
        "submit_s": submit_s,
        "drain_s": drain_s,
        "bytes_per_task": (queued_rss - before) / size,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def large_object(lib: ModuleType, size: int) -> dict[str, Any]:
    """A ``size``-GiB int8 array of zeros through put then get (Ray's test_large_object)."""
    obj = np.zeros(size * 2**30, dtype=np.int8)
    start = time.perf_counter()
    ref = lib.put(obj)
    put_s = time.perf_counter() - start
    del obj
    big = lib.get(ref)
    assert big[0] == 0 and big[-1] == 0 and big.nbytes == size * 2**30
    return {"seconds": time.perf_counter() - start, "put_s": put_s}


def large_object_spilled(lib: ModuleType, size: int) -> dict[str, Any]:
    """The same array through put and get with a store of half its size: it cannot be
    held in memory, so it goes to disk (Ray's fallback allocation) and is read back."""
    return large_object(lib, size)


WORKLOADS = {
    "many_args": many_args,
    "many_ref_args": many_ref_args,
    "many_returns": many_returns,
    "many_returns_floor": many_returns_floor,
    "get_many": get_many,
    "queued_tasks": queued_tasks,
    "large_object": large_object,
    "large_object_spilled": large_object_spilled,
}


def _init(lib: ModuleType, name: str, workload: str, size: int, num_cpus: int) -> None:
    kwargs: dict[str, Any] = {"num_cpus": num_cpus}
    gib = 2**30
    if workload == "large_object":
        kwargs["object_store_memory"] = (size + 1) * gib
    elif workload == "large_object_spilled":
        kwargs["object_store_memory"] = size * gib // 2
    if name == "ray":
        kwargs["include_dashboard"] = False
    lib.init(**kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", choices=["nebula", "ray"], required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    lib = importlib.import_module(args.lib)
    _init(lib, args.lib, args.workload, args.size, args.num_cpus)
    try:
        result = WORKLOADS[args.workload](lib, args.size)
    finally:
        lib.shutdown()
    print(json.dumps({"workload": args.workload, "size": args.size, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
