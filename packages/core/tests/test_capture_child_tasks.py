"""placement_group_capture_child_tasks: work started inside a group stays in it.

The cluster has 4 CPUs and each test reserves 3 of them in a group, so a child that asks for
2 CPUs can only start where it is placed: inside the group when captured, outside it when
not. Libraries rely on this to reserve a job's driver and its workers up front.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import nebula
from nebula.util import get_current_placement_group, placement_group, remove_placement_group
from nebula.util.placement_group import PlacementGroup
from nebula.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=4)
    try:
        yield
    finally:
        nebula.shutdown()


@pytest.fixture
def group() -> Iterator[PlacementGroup]:
    pg = placement_group([{"CPU": 1}, {"CPU": 2}])
    assert nebula.get(pg.ready(), timeout=15) is True
    yield pg
    remove_placement_group(pg)


def _capturing(pg: PlacementGroup, index: int = 0) -> PlacementGroupSchedulingStrategy:
    return PlacementGroupSchedulingStrategy(
        pg, placement_group_bundle_index=index, placement_group_capture_child_tasks=True
    )


def _group_id() -> str | None:
    current = get_current_placement_group()
    return current.id if current is not None else None


@nebula.remote(num_cpus=2)
def where() -> str | None:
    return _group_id()


@nebula.remote(num_cpus=1)
def parent(child_cpus: int = 2, strategy: object = None) -> list[str | None]:
    """Its own group, and the group of a child started with ``strategy``."""
    child = where.options(num_cpus=child_cpus)
    if strategy is not None:
        child = child.options(scheduling_strategy=strategy)
    return [_group_id(), nebula.get(child.remote(), timeout=20)]


@nebula.remote(num_cpus=2)
class Child:
    def group(self) -> str | None:
        return _group_id()

    def grandchild_group(self) -> str | None:
        return nebula.get(where.options(num_cpus=0).remote(), timeout=20)


@nebula.remote(num_cpus=1)
class Trainer:
    """Starts its workers without naming any placement group, as library code does."""

    def __init__(self) -> None:
        self.child = Child.remote()

    def child_groups(self) -> list[str | None]:
        return nebula.get(
            [self.child.group.remote(), self.child.grandchild_group.remote()], timeout=20
        )

    def group_seen_by_thread(self) -> str | None:
        seen: list[str | None] = []
        thread = threading.Thread(target=lambda: seen.append(_group_id()))
        thread.start()
        thread.join()
        return seen[0]

    def context(self) -> tuple[str | None, bool]:
        context = nebula.get_runtime_context()
        return (
            context.get_placement_group_id(),
            context.should_capture_child_tasks_in_placement_group,
        )


def test_the_driver_is_in_no_group() -> None:
    assert get_current_placement_group() is None
    assert nebula.get_runtime_context().get_placement_group_id() is None


def test_a_capturing_task_places_its_children_in_its_group(group: PlacementGroup) -> None:
    ran = parent.options(scheduling_strategy=_capturing(group)).remote()
    assert nebula.get(ran, timeout=30) == [group.id, group.id]


def test_without_capture_children_leave_the_group(group: PlacementGroup) -> None:
    strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
    ran = parent.options(scheduling_strategy=strategy).remote(child_cpus=1)
    # The task knows its group even so; its child runs on the CPU left outside.
    assert nebula.get(ran, timeout=30) == [group.id, None]


def test_an_explicit_strategy_escapes_capture(group: PlacementGroup) -> None:
    ran = parent.options(scheduling_strategy=_capturing(group)).remote(1, "DEFAULT")
    assert nebula.get(ran, timeout=30) == [group.id, None]


def test_a_capturing_actor_places_nested_actors_and_tasks_in_its_group(
    group: PlacementGroup,
) -> None:
    trainer = Trainer.options(scheduling_strategy=_capturing(group)).remote()
    # Child needs 2 CPUs: with 1 left outside the group it can only run in bundle 1.
    assert nebula.get(trainer.child_groups.remote(), timeout=30) == [group.id, group.id]
    assert nebula.get(trainer.group_seen_by_thread.remote(), timeout=10) == group.id
    assert nebula.get(trainer.context.remote(), timeout=10) == (group.id, True)
    nebula.kill(trainer)


def test_the_group_handle_schedules_more_work_in_the_group(group: PlacementGroup) -> None:
    @nebula.remote(num_cpus=1)
    def place_explicitly() -> str | None:
        current = get_current_placement_group()
        assert current is not None
        inner = where.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(current, 1)
        ).remote()
        return nebula.get(inner, timeout=20)

    strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
    assert nebula.get(place_explicitly.options(scheduling_strategy=strategy).remote()) == group.id
