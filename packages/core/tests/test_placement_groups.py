"""Placement groups on a real multi-node cluster."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

import nebula
from nebula.exceptions import ActorDiedError
from nebula.testing import Cluster, wait_for_condition
from nebula.util import (
    PlacementGroup,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from nebula.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, connect=True) as cluster:
        cluster.add_node(num_cpus=2)
        yield cluster


@nebula.remote(num_cpus=1)
def node_id() -> str:
    return nebula.get_runtime_context().get_node_id()


@nebula.remote(num_cpus=1)
class Holder:
    def node(self) -> str:
        return nebula.get_runtime_context().get_node_id()


def _in(pg: PlacementGroup, index: int = -1) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)


def _free_cpus() -> float:
    return nebula.available_resources().get("CPU", 0.0)


def test_strict_spread_puts_two_bundles_on_two_nodes(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert nebula.get(pg.ready(), timeout=15) is True
    table = placement_group_table(pg)
    assert table["state"] == "CREATED"
    nodes = table["bundles_to_node_id"]
    assert len(set(nodes.values())) == 2
    for index in (0, 1):
        ran_on = nebula.get(node_id.options(scheduling_strategy=_in(pg, index)).remote())
        assert ran_on == nodes[index]
    remove_placement_group(pg)


def test_strict_pack_puts_every_bundle_on_one_node(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
    assert pg.wait(15)
    assert len(set(placement_group_table(pg)["bundles_to_node_id"].values())) == 1
    remove_placement_group(pg)


def test_a_group_that_cannot_fit_waits_until_a_node_joins(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 3}], strategy="PACK")
    assert not pg.wait(1.0)
    assert placement_group_table(pg)["state"] == "PENDING"
    big = two_nodes.add_node(num_cpus=4)
    try:
        assert pg.wait(15)
        assert placement_group_table(pg)["bundles_to_node_id"][0] == big.node_id
        ran_on = nebula.get(node_id.options(scheduling_strategy=_in(pg, 0)).remote())
        assert ran_on == big.node_id
    finally:
        remove_placement_group(pg)
        two_nodes.remove_node(big)
        two_nodes.nodes.remove(big)
        two_nodes.wait_for_nodes()


def test_tasks_in_a_bundle_never_exceed_it(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 1}])
    assert pg.wait(15)

    @nebula.remote(num_cpus=1)
    def span() -> tuple[float, float]:
        start = time.time()
        time.sleep(0.3)
        return start, time.time()

    inside = span.options(scheduling_strategy=_in(pg, 0))
    spans = sorted(nebula.get([inside.remote() for _ in range(4)], timeout=30))
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end - 0.01, f"bundle of 1 CPU ran tasks at once: {spans}"
    remove_placement_group(pg)


def test_removing_a_group_frees_its_resources_and_stops_its_actors(two_nodes: Cluster) -> None:
    before = _free_cpus()
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD")
    assert pg.wait(15)
    wait_for_condition(lambda: _free_cpus() == before - 2, timeout=10)
    holder = Holder.options(scheduling_strategy=_in(pg, 1)).remote()
    assert nebula.get(holder.node.remote()) == placement_group_table(pg)["bundles_to_node_id"][1]
    remove_placement_group(pg)
    with pytest.raises(ActorDiedError):
        nebula.get(holder.node.remote(), timeout=15)
    wait_for_condition(lambda: placement_group_table(pg)["state"] == "REMOVED", timeout=10)
    wait_for_condition(lambda: _free_cpus() == before, timeout=10)


def test_a_group_handle_passes_to_tasks(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 1}], strategy="PACK")

    @nebula.remote(num_cpus=0)
    def run_inside(group: PlacementGroup) -> str:
        nebula.get(group.ready())
        strategy = PlacementGroupSchedulingStrategy(group, 0)
        return nebula.get(node_id.options(scheduling_strategy=strategy).remote())

    assert pg.wait(15)
    assert (
        nebula.get(run_inside.remote(pg), timeout=30)
        == (placement_group_table(pg)["bundles_to_node_id"][0])
    )
    remove_placement_group(pg)


@pytest.mark.parametrize(
    ("bundles", "strategy", "error"),
    [
        ([], "PACK", ValueError),
        ([{}], "PACK", ValueError),
        ([{"CPU": -1}], "PACK", ValueError),
        ([{"CPU": 0}], "PACK", ValueError),
        ([{"CPU": 1}], "SIDEWAYS", ValueError),
        ("CPU", "PACK", ValueError),
    ],
    ids=["no-bundles", "empty-bundle", "negative", "nothing", "bad-strategy", "not-a-list"],
)
def test_bad_groups_are_rejected(
    two_nodes: Cluster, bundles: object, strategy: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        placement_group(bundles, strategy=strategy)  # type: ignore[arg-type]


def test_bad_bundle_index_and_handles_are_rejected(two_nodes: Cluster) -> None:
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(ValueError, match="out of range"):
        PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=1)
    with pytest.raises(TypeError):
        PlacementGroupSchedulingStrategy("not a group")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        remove_placement_group("not a group")  # type: ignore[arg-type]
    remove_placement_group(pg)
