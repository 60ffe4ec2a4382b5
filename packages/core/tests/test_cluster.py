"""Several nodes on one machine: where work lands, how objects move, what node loss does.

Each test gets a fresh ``cluster`` (a 1-CPU head with a connected driver) and adds the nodes
it needs; every node is its own node manager process with its own workers and store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import nebula
from nebula.exceptions import ActorDiedError, NodeDiedError, WorkerCrashedError
from nebula.testing import Cluster, ClusterNode, pytest_plugin, wait_for_condition
from nebula.util.scheduling_strategies import NodeAffinitySchedulingStrategy

# The plugin's ``cluster`` fixture: a 1-CPU head with a connected driver, fresh per test.
cluster = pytest_plugin.cluster

GET_TIMEOUT_S = 20


@nebula.remote
def node_of(delay_s: float = 0.0) -> str:
    time.sleep(delay_s)
    return nebula.get_runtime_context().get_node_id()


@nebula.remote(num_cpus=0.25)
def quarter_cpu_node_of(delay_s: float) -> str:
    time.sleep(delay_s)
    return nebula.get_runtime_context().get_node_id()


@nebula.remote(num_gpus=1)
def gpu_view(delay_s: float) -> dict[str, object]:
    started = time.time()
    time.sleep(delay_s)
    return {
        "node": nebula.get_runtime_context().get_node_id(),
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "ids": list(nebula.get_gpu_ids()),
        "started": started,
        "ended": time.time(),
    }


@nebula.remote
def make_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@nebula.remote
def summarize(array: np.ndarray) -> tuple[str, int, float]:
    return nebula.get_runtime_context().get_node_id(), int(array.size), float(array.sum())


@nebula.remote
class Where:
    def node(self) -> str:
        return nebula.get_runtime_context().get_node_id()


def _pinned(node_id: str, *, soft: bool = False) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id, soft=soft)


def _until_the_head_knows(node: ClusterNode) -> None:
    """Wait until the head's node manager has ``node`` in its cluster view.

    Views refresh with heartbeats, so a node that just joined is not yet a spill target;
    a task pinned to it completes only once the head has seen it. The probe takes no CPU, so
    the lease it leaves idle for a moment holds nothing a later test counts on.
    """
    ref = node_of.options(num_cpus=0, scheduling_strategy=_pinned(node.node_id)).remote()
    assert nebula.get(ref, timeout=GET_TIMEOUT_S) == node.node_id


def _alive_by_id() -> dict[str, bool]:
    return {node["NodeID"]: node["Alive"] for node in nebula.nodes()}


# ------------------------------------------------------------------ placement


def test_tasks_overflow_to_a_second_node_when_the_head_is_busy(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None

    nodes = nebula.get([node_of.remote(0.3) for _ in range(8)], timeout=GET_TIMEOUT_S)

    assert set(nodes) == {cluster.head_node.node_id, other.node_id}


def test_a_task_needing_a_custom_resource_runs_on_the_node_that_has_it(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1)
    gizmo_node = cluster.add_node(num_cpus=1, resources={"gizmo": 1})

    refs = [node_of.options(resources={"gizmo": 1}).remote() for _ in range(3)]

    assert nebula.get(refs, timeout=GET_TIMEOUT_S) == [gizmo_node.node_id] * 3


def test_gpu_tasks_run_on_the_gpu_node_and_get_distinct_devices(cluster: Cluster) -> None:
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=2)

    alone = nebula.get(gpu_view.remote(0.0), timeout=GET_TIMEOUT_S)
    assert alone["node"] == gpu_node.node_id
    assert len(alone["ids"]) == 1
    assert alone["visible"].split(",") == [str(i) for i in alone["ids"]]

    both = nebula.get([gpu_view.remote(1.0), gpu_view.remote(1.0)], timeout=GET_TIMEOUT_S)
    assert [view["node"] for view in both] == [gpu_node.node_id] * 2
    first, second = both
    assert first["started"] < second["ended"] and second["started"] < first["ended"]
    assert first["ids"] != second["ids"]
    assert first["visible"] != second["visible"]


def test_hard_node_affinity_runs_on_the_named_node(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None

    for target in (other.node_id, cluster.head_node.node_id, other.node_id):
        ref = node_of.options(scheduling_strategy=_pinned(target)).remote()
        assert nebula.get(ref, timeout=GET_TIMEOUT_S) == target


def test_soft_node_affinity_to_a_removed_node_runs_elsewhere(cluster: Cluster) -> None:
    doomed = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None
    warm = node_of.options(scheduling_strategy=_pinned(doomed.node_id)).remote()
    assert nebula.get(warm, timeout=GET_TIMEOUT_S) == doomed.node_id

    cluster.remove_node(doomed)
    ref = node_of.options(scheduling_strategy=_pinned(doomed.node_id, soft=True)).remote()

    assert nebula.get(ref, timeout=12) == cluster.head_node.node_id


def test_soft_node_affinity_waits_for_a_busy_node_unless_told_to_spill(cluster: Cluster) -> None:
    # As Ray's: soft only runs elsewhere when the node is gone or could never fit the work.
    busy = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None
    _until_the_head_knows(busy)
    holding = node_of.options(scheduling_strategy=_pinned(busy.node_id)).remote(4.0)
    time.sleep(1.5)  # the node's one CPU is taken, and the head has heard so
    waits = node_of.options(scheduling_strategy=_pinned(busy.node_id, soft=True)).remote()
    spills = node_of.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(
            busy.node_id, soft=True, _spill_on_unavailable=True
        )
    ).remote()

    assert nebula.get(spills, timeout=GET_TIMEOUT_S) == cluster.head_node.node_id
    assert nebula.get([holding, waits], timeout=GET_TIMEOUT_S) == [busy.node_id] * 2


@nebula.remote
def numbered_arrays(index: int, rows: int) -> dict[str, np.ndarray]:
    """Two arrays whose lengths differ from one index to the next."""
    ids = np.arange(index * rows, (index + 1) * rows)
    return {"id": ids, "digits": np.frombuffer("".join(map(str, ids)).encode(), np.uint8)}


@nebula.remote
def array_sums(*values: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    return [(int(v["id"].sum()), int(v["digits"].sum())) for v in values]


def test_objects_pulled_at_once_by_two_workers_arrive_intact(cluster: Cluster) -> None:
    # Both workers of the reading node pull the same objects together. Once freed files
    # were kept for reuse (after the first round), the second puller's reservation moved
    # one over the first's file: a value then mixed two objects' bytes.
    reader = cluster.add_node(num_cpus=2)
    assert cluster.head_node is not None
    _until_the_head_knows(reader)
    rows = 100_000  # 1.5 MB objects: freed files of 1 MB and more are kept for reuse
    expected = nebula.get([array_sums.remote(numbered_arrays.remote(i, rows)) for i in range(8)])
    expected = [sums[0] for sums in expected]
    for _ in range(8):
        made = [
            numbered_arrays.options(scheduling_strategy=_pinned(cluster.head_node.node_id)).remote(
                index, rows
            )
            for index in range(8)
        ]
        nebula.wait(made, num_returns=len(made), timeout=GET_TIMEOUT_S)
        sums = [
            array_sums.options(scheduling_strategy=_pinned(reader.node_id)).remote(*made)
            for _ in range(4)
        ]
        assert nebula.get(sums, timeout=GET_TIMEOUT_S) == [expected] * 4
        del made, sums


def test_work_for_a_node_that_just_joined_is_placed_without_a_warning(
    cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)

    assert nebula.get(gpu_view.remote(0.0), timeout=GET_TIMEOUT_S)["node"] == gpu_node.node_id

    assert "Warning" not in capfd.readouterr().err


def test_hard_node_affinity_to_an_unknown_node_waits_and_warns(
    cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    nowhere = "ab" * 16

    ref = node_of.options(scheduling_strategy=_pinned(nowhere)).remote()
    ready, not_ready = nebula.wait([ref], timeout=2)

    assert ready == [] and not_ready == [ref]
    wait_for_condition(lambda: "Warning" in capfd.readouterr().err, timeout=5)


def test_spread_puts_concurrent_tasks_on_both_nodes(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None
    _until_the_head_knows(other)

    # Either node could hold all four quarter-CPU tasks at once, so only SPREAD splits them.
    spread = quarter_cpu_node_of.options(scheduling_strategy="SPREAD")
    nodes = nebula.get([spread.remote(0.5) for _ in range(4)], timeout=GET_TIMEOUT_S)

    assert set(nodes) == {cluster.head_node.node_id, other.node_id}


def test_default_keeps_tasks_on_the_local_node_while_they_fit(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None

    nodes = nebula.get([quarter_cpu_node_of.remote(0.5) for _ in range(4)], timeout=GET_TIMEOUT_S)

    assert set(nodes) == {cluster.head_node.node_id}


def test_a_request_no_node_can_run_waits_then_runs_on_a_node_that_joins(
    cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    ref = node_of.options(resources={"nothing": 1}).remote()
    ready, _ = nebula.wait([ref], timeout=1.5)
    assert ready == []
    wait_for_condition(lambda: "Warning" in capfd.readouterr().err, timeout=5)

    joined = cluster.add_node(num_cpus=1, resources={"nothing": 1})

    assert nebula.get(ref, timeout=GET_TIMEOUT_S) == joined.node_id


# -------------------------------------------------------------------- objects


def test_a_large_array_made_on_one_node_is_read_on_another_and_by_the_driver(
    cluster: Cluster,
) -> None:
    maker = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None
    size = 20_000_000 // 8

    ref = make_array.options(scheduling_strategy=_pinned(maker.node_id)).remote(size)
    on_driver = nebula.get(ref, timeout=GET_TIMEOUT_S)
    reader = summarize.options(scheduling_strategy=_pinned(cluster.head_node.node_id))
    node, count, total = nebula.get(reader.remote(ref), timeout=GET_TIMEOUT_S)

    np.testing.assert_array_equal(on_driver, np.arange(size, dtype=np.float64))
    assert not on_driver.flags.writeable
    assert (node, count, total) == (cluster.head_node.node_id, size, float(size * (size - 1) // 2))


def test_a_value_put_by_the_driver_is_read_by_a_task_on_another_node(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=1)
    values = np.full(3_000_000, 2.0)

    ref = nebula.put(values)
    reader = summarize.options(scheduling_strategy=_pinned(other.node_id))

    assert nebula.get(reader.remote(ref), timeout=GET_TIMEOUT_S) == (
        other.node_id,
        values.size,
        float(values.sum()),
    )


# ------------------------------------------------------------------ node loss


def test_nodes_lists_every_node_and_reports_a_removed_one_dead(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=2, resources={"gizmo": 3})
    assert cluster.head_node is not None

    listed = {node["NodeID"]: node for node in nebula.nodes()}
    assert set(listed) == {cluster.head_node.node_id, other.node_id}
    assert all(node["Alive"] for node in listed.values())
    assert listed[other.node_id]["Resources"]["gizmo"] == 3
    assert listed[other.node_id]["Resources"]["CPU"] == 2
    assert listed[cluster.head_node.node_id]["Resources"]["CPU"] == 1
    assert nebula.cluster_resources()["CPU"] == 3
    assert nebula.cluster_resources()["gizmo"] == 3

    cluster.remove_node(other)

    wait_for_condition(lambda: _alive_by_id().get(other.node_id) is False, timeout=10)
    assert _alive_by_id()[cluster.head_node.node_id] is True
    wait_for_condition(lambda: nebula.cluster_resources().get("CPU") == 1, timeout=10)


def test_nodes_offer_ray_style_node_resources(cluster: Cluster) -> None:
    other = cluster.add_node(num_cpus=1)
    assert cluster.head_node is not None
    listed = {node["NodeID"]: node["Resources"] for node in nebula.nodes()}
    assert listed[cluster.head_node.node_id]["node:__internal_head__"] == 1
    assert "node:__internal_head__" not in listed[other.node_id]
    assert listed[other.node_id]["node:127.0.0.1"] == 1
    total, free = nebula.cluster_resources(), nebula.available_resources()
    assert total["node:127.0.0.1"] == 2 and total["node:__internal_head__"] == 1
    assert 0 < free["object_store_memory"] <= total["object_store_memory"]
    # The idiom for pinning work to a machine, and to the head.
    on_host = node_of.options(resources={"node:127.0.0.1": 0.01}).remote()
    on_head = node_of.options(resources={"node:__internal_head__": 0.01}).remote()
    assert nebula.get(on_head, timeout=GET_TIMEOUT_S) == cluster.head_node.node_id
    assert nebula.get(on_host, timeout=GET_TIMEOUT_S) in (cluster.head_node.node_id, other.node_id)


def test_an_actor_on_a_removed_node_raises_actor_died_promptly(cluster: Cluster) -> None:
    doomed = cluster.add_node(num_cpus=1)
    actor = Where.options(scheduling_strategy=_pinned(doomed.node_id)).remote()
    assert nebula.get(actor.node.remote(), timeout=GET_TIMEOUT_S) == doomed.node_id

    cluster.remove_node(doomed)
    started = time.monotonic()
    with pytest.raises(ActorDiedError):
        nebula.get(actor.node.remote(), timeout=15)

    assert time.monotonic() - started < 10


@nebula.remote(resources={"spot": 1})
def record_node_then_sleep(marker: str) -> str:
    """Write where the first attempt runs, then hang there; a retry returns at once."""
    node = nebula.get_runtime_context().get_node_id()
    if not os.path.exists(marker):
        Path(marker).write_text(node)
        time.sleep(60)
    return node


def _start_on_a_spot_node(cluster: Cluster, marker: Path, max_retries: int) -> tuple[object, str]:
    spot_nodes = [cluster.add_node(num_cpus=1, resources={"spot": 1}) for _ in range(2)]
    ref = record_node_then_sleep.options(max_retries=max_retries).remote(str(marker))
    wait_for_condition(lambda: marker.exists() and marker.read_text() != "", timeout=10)
    first = next(node for node in spot_nodes if node.node_id == marker.read_text())
    cluster.remove_node(first)
    return ref, first.node_id


def test_a_task_on_a_removed_node_is_retried_on_another(cluster: Cluster, tmp_path: Path) -> None:
    ref, lost_node = _start_on_a_spot_node(cluster, tmp_path / "first", max_retries=1)

    ran_on = nebula.get(ref, timeout=12)

    assert ran_on != lost_node
    assert _alive_by_id()[ran_on] is True


def test_a_task_without_retries_on_a_removed_node_fails(cluster: Cluster, tmp_path: Path) -> None:
    ref, _ = _start_on_a_spot_node(cluster, tmp_path / "first", max_retries=0)

    with pytest.raises((NodeDiedError, WorkerCrashedError)):
        nebula.get(ref, timeout=15)


# ------------------------------------------------------------------ bad input


def test_an_unknown_strategy_name_is_rejected(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="NOWHERE"):
        node_of.options(scheduling_strategy="NOWHERE").remote()


def test_node_affinity_needs_a_hex_node_id() -> None:
    with pytest.raises(ValueError, match="not-hex"):
        NodeAffinitySchedulingStrategy("not-hex")


@pytest.mark.parametrize(
    "options",
    [{"num_cpus": -1}, {"num_gpus": -0.5}, {"resources": {"gizmo": -1}}],
    ids=["cpus", "gpus", "custom"],
)
def test_negative_resources_are_rejected(cluster: Cluster, options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        node_of.options(**options).remote()
