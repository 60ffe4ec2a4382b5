"""Objects lost with their node are rebuilt from lineage, within the retry budget."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import nebula
from nebula.exceptions import ObjectLostError
from nebula.testing import Cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as c:
        yield c


@nebula.remote(resources={"spot": 0.1})
def make(value: int) -> np.ndarray:
    return np.full(500_000, value)


@nebula.remote(resources={"spot": 0.1})
def plus_one(array: np.ndarray) -> np.ndarray:
    return array + 1


def _lose_the_spot_node(cluster: Cluster) -> None:
    spot = next(n for n in cluster.nodes if n.resources.get("spot"))
    cluster.remove_node(spot)
    cluster.nodes.remove(spot)
    cluster.add_node(num_cpus=1, resources={"spot": 1})


def test_a_lost_chain_of_results_is_rebuilt(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1, resources={"spot": 1})
    first = make.remote(41)
    second = plus_one.remote(first)
    assert nebula.get(second)[0] == 42  # both values now live only on the spot node
    _lose_the_spot_node(cluster)
    assert nebula.get(second, timeout=60)[-1] == 42
    assert nebula.get(first, timeout=60)[0] == 41


def test_without_retries_a_lost_result_says_why(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1, resources={"spot": 1})
    ref = make.options(max_retries=0).remote(1)
    assert nebula.wait([ref], timeout=30)[0]  # done, but no copy pulled to the driver's node
    _lose_the_spot_node(cluster)
    with pytest.raises(ObjectLostError, match="max_retries"):
        nebula.get(ref, timeout=60)


def test_a_copy_on_another_node_survives_the_loss(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1, resources={"spot": 1})
    ref = make.options(max_retries=0).remote(5)
    assert nebula.get(ref)[0] == 5  # the driver's node now holds a copy
    _lose_the_spot_node(cluster)
    assert nebula.get(ref, timeout=60)[-1] == 5


def test_a_lost_put_value_says_it_cannot_be_rebuilt(cluster: Cluster) -> None:
    cluster.add_node(num_cpus=1, resources={"spot": 1})

    @nebula.remote(resources={"spot": 0.1})
    def copy_to_this_node(array: np.ndarray) -> np.ndarray:
        return array.copy()

    # A put stays on the driver's node; losing another node does not touch it.
    kept = nebula.put(np.arange(500_000))
    copied = copy_to_this_node.options(max_retries=0).remote(kept)
    assert nebula.wait([copied], timeout=30)[0]
    _lose_the_spot_node(cluster)
    assert nebula.get(kept)[9] == 9
    with pytest.raises(ObjectLostError, match="max_retries"):
        nebula.get(copied, timeout=60)
