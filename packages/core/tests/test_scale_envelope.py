"""The scale envelope's workloads at small sizes, so that a regression fails here.

``benchmarks/scale/`` runs them at full size beside Ray (10,000 arguments, 10,000 returns,
1,000,000 queued tasks, 1,000 placement groups and actors); this module runs the same code,
imported from there, at sizes that take seconds. Each workload asserts its own results.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import nebula

SCALE = Path(__file__).resolve().parents[3] / "benchmarks" / "scale"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scale_{name}", SCALE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.skipif(
    not (SCALE / "workloads.py").exists(), reason="benchmarks/scale is not in this checkout"
)


@pytest.fixture(scope="module")
def workloads() -> Iterator[ModuleType]:
    nebula.init(num_cpus=2, resources={"slot": 100})
    try:
        yield _load("workloads")
    finally:
        nebula.shutdown()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("workload", "size"),
    [
        ("many_args", 300),
        ("many_ref_args", 1000),
        ("many_returns", 300),
        ("get_many", 1000),
    ],
)
def test_scale_single_node_workload_at_small_size(
    workloads: ModuleType, workload: str, size: int
) -> None:
    result = workloads.WORKLOADS[workload](nebula, size)
    assert result["seconds"] > 0


@pytest.mark.timeout(90)
def test_scale_queued_tasks_drain_and_cost_little_driver_memory(workloads: ModuleType) -> None:
    result = workloads.queued_tasks(nebula, 20_000)
    # The full-size run measured about 2 KB per queued task; a regression to many times
    # that (a copy of the arguments per task, say) fails here.
    assert result["bytes_per_task"] < 20_000, result


@pytest.mark.timeout(60)
def test_scale_placement_groups_are_created_ready_and_removed(workloads: ModuleType) -> None:
    result = _load("many").placement_groups(nebula, 100)
    assert nebula.available_resources().get("slot") == 100, result


@pytest.mark.timeout(60)
def test_scale_many_idle_actors_without_cpus(workloads: ModuleType) -> None:
    @nebula.remote(num_cpus=0)
    class Idle:
        def ping(self) -> int:
            return 1

    handles = [Idle.remote() for _ in range(30)]
    assert sum(nebula.get([h.ping.remote() for h in handles], timeout=50)) == 30
    for handle in handles:
        nebula.kill(handle)
