"""``nebula.util.joblib``: joblib.Parallel running its batches on the cluster's actors."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import nebula

joblib = pytest.importorskip("joblib")
from nebula.util.joblib import register_nebula, register_ray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    register_nebula()
    yield
    nebula.shutdown()


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"no {x}")
    return x


def test_parallel_runs_in_other_processes_and_keeps_order() -> None:
    with joblib.parallel_backend("nebula"):
        out = joblib.Parallel(n_jobs=-1)(joblib.delayed(square_and_pid)(i) for i in range(40))
    assert [value for value, _ in out] == [i * i for i in range(40)]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # n_jobs=-1: the cluster's 2 CPUs


def test_errors_reach_the_caller_and_the_ray_name_works() -> None:
    with joblib.parallel_backend("nebula"), pytest.raises(ValueError, match="no 3"):
        joblib.Parallel(n_jobs=2)(joblib.delayed(fail_on_three)(i) for i in range(6))
    register_ray()
    with joblib.parallel_backend("ray", n_jobs=2):
        assert joblib.Parallel()(joblib.delayed(fail_on_three)(i) for i in range(3)) == [0, 1, 2]
