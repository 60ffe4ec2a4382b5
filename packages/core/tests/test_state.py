"""``nebula.util.state``: the cluster's actors, nodes and placement groups as records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import nebula
from nebula.testing import wait_for_condition
from nebula.util.placement_group import placement_group, remove_placement_group
from nebula.util.state import get_actor, list_actors, list_nodes, list_placement_groups


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


@nebula.remote
class Worker:
    def pid(self) -> int:
        import os

        return os.getpid()


def test_list_actors_shows_live_and_dead_actors() -> None:
    named = Worker.options(name="listed").remote()
    doomed = Worker.remote()
    pids = nebula.get([named.pid.remote(), doomed.pid.remote()])
    nebula.kill(doomed)

    def states() -> dict[str, str]:
        return {record.actor_id: record.state for record in list_actors()}

    wait_for_condition(lambda: states().get(doomed.object_id.hex()) == "DEAD")
    alive = list_actors(filters=[("state", "=", "ALIVE")])
    record = next(r for r in alive if r["name"] == "listed")
    assert record.class_name == "Worker" and record.pid == pids[0]
    assert record.node_id == list_nodes()[0].node_id
    dead = get_actor(doomed.object_id.hex())
    assert dead is not None and dead.state == "DEAD" and "nebula.kill" in dead.death_cause
    assert len(list_actors(limit=1)) == 1
    assert get_actor("00" * 16) is None
    nebula.kill(named)


def test_list_nodes_and_placement_groups() -> None:
    (node,) = list_nodes()
    assert node.state == "ALIVE" and node.resources_total["CPU"] == 2
    group = placement_group([{"CPU": 1}], name="listed-group")
    nebula.get(group.ready(), timeout=30)
    groups = list_placement_groups(filters=[("name", "=", "listed-group")])
    assert [g.state for g in groups] == ["CREATED"]
    remove_placement_group(group)


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValueError, match="a filter is"):
        list_actors(filters=[("state", "~", "ALIVE")])
    with pytest.raises(ValueError, match="cannot filter on 'colour'"):
        list_nodes(filters=[("colour", "=", "red")])
    with pytest.raises(ValueError, match="limit"):
        list_actors(limit=0)
