"""Exchanges larger than the store on a cluster of two nodes (two node managers, each with
its own object store): each block is split into a piece per output on the node that made
it, so it is not moved whole only to be cut, and each row moves once, to its reduce.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import nebula.data as nd
import numpy as np
import pytest
from _data_tasks import tasks_named

from nebula.testing import Cluster
from nebula.util.state import list_tasks

ROWS, BLOCKS = 400_000, 8
STORE = 10 << 20  # two stores of 10 MB: the 12 MB of data is more than half of them


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[Cluster]:
    head = {"num_cpus": 2, "object_store_memory": STORE}
    context = nd.DataContext.get_current()
    target = context.target_max_block_size
    context.target_max_block_size = 2 << 20  # several outputs of 12 MB
    try:
        with Cluster(initialize_head=True, head_node_args=head, connect=True) as c:
            c.add_node(num_cpus=2, object_store_memory=STORE)
            yield c
    finally:
        context.target_max_block_size = target


def add_x(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(batch["id"][0]))
    batch["x"] = rng.random(len(batch["id"]))
    batch["text"] = np.array([f"row {i}" for i in batch["id"]], dtype=object)
    return batch


def dataset() -> nd.Dataset:
    return nd.range(ROWS, override_num_blocks=BLOCKS).map_batches(add_x)


class Placements:
    """The nodes the tasks started since it was made ran on, by task name."""

    def __init__(self) -> None:
        self._before = {task["task_id"] for task in list_tasks(limit=100_000)}

    def nodes(self, name: str) -> list[str]:
        """Where the new tasks of that name ran, once every one of them is reported done."""
        deadline = time.monotonic() + 20
        while True:
            tasks = list_tasks(filters=[("name", "=", name)], limit=100_000)
            new = [task for task in tasks if task["task_id"] not in self._before]
            if all(task["state"] == "FINISHED" for task in new) or time.monotonic() > deadline:
                return sorted(str(task["node_id"]) for task in new)
            time.sleep(0.2)


def test_a_sort_splits_each_block_on_its_own_node() -> None:
    placements = Placements()
    reduces = tasks_named("_sorted_blocks_reduce")
    rows = dataset().sort("x").take_all()
    assert [row["x"] for row in rows] == sorted(row["x"] for row in rows)
    assert sorted(row["id"] for row in rows) == list(range(ROWS))
    assert all(row["text"] == f"row {row['id']}" for row in rows)
    # Split as they came (the stream), or all at the end (when the stream had not seen
    # enough to decide): either way each block once, where it was made.
    tasks_named("_split_counted", settled=True)
    tasks_named("_split_sorted", settled=True)
    made = placements.nodes("map_task")  # each made, and sorted, one block
    assert len(made) == BLOCKS
    split = sorted(placements.nodes("_split_counted") + placements.nodes("_split_sorted"))
    assert split == made
    assert tasks_named("_sorted_blocks_reduce") == reduces  # no reduce took whole blocks


def test_a_random_shuffle_splits_blocks_and_keeps_its_seed() -> None:
    placements = Placements()
    reduces = tasks_named("_keyed_shuffle_reduce")
    first = [row["id"] for row in dataset().random_shuffle(seed=7).take_all()]
    again = [row["id"] for row in dataset().random_shuffle(seed=7).take_all()]
    assert sorted(first) == list(range(ROWS))
    assert first != list(range(ROWS))
    assert again == first
    tasks_named("_split_keyed", settled=True)
    made = placements.nodes("map_task")
    assert len(made) == 2 * BLOCKS
    assert placements.nodes("_split_keyed") == made
    assert tasks_named("_keyed_shuffle_reduce") == reduces


def test_a_materialized_dataset_is_keyed_and_split_where_it_is() -> None:
    placements = Placements()
    stored = dataset().materialize()
    rows = stored.random_shuffle(seed=3).take_all()
    assert sorted(row["id"] for row in rows) == list(range(ROWS))
    tasks_named("_key_and_split", settled=True)
    made = placements.nodes("map_task")
    assert len(made) == BLOCKS
    assert placements.nodes("_key_and_split") == made
