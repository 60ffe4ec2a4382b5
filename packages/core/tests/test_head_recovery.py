"""A restarted head (control store) recovers its tables from SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import nebula
from nebula.testing import Cluster, wait_for_condition


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, connect=True) as c:
        yield c


@nebula.remote
class Greeter:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}"


@nebula.remote
def square(x: int) -> int:
    return x * x


def test_named_and_detached_actors_survive_a_head_restart(cluster: Cluster) -> None:
    detached = Greeter.options(name="door", lifetime="detached").remote("hello")
    named = Greeter.options(name="desk", namespace="office").remote("hi")
    assert nebula.get(detached.greet.remote("a")) == "hello, a"
    assert nebula.get(named.greet.remote("b")) == "hi, b"
    before = {n["NodeID"] for n in nebula.nodes() if n["Alive"]}

    cluster.restart_control_store()

    # The driver carries on: its actors, tasks, and look-ups by name.
    assert nebula.get(detached.greet.remote("c"), timeout=30) == "hello, c"
    assert nebula.get(square.remote(7), timeout=30) == 49
    found = nebula.get_actor("desk", namespace="office")
    assert nebula.get(found.greet.remote("d"), timeout=30) == "hi, d"
    assert {n["NodeID"] for n in nebula.nodes() if n["Alive"]} == before
    fresh = Greeter.remote("hey")
    assert nebula.get(fresh.greet.remote("e"), timeout=30) == "hey, e"

    # A new driver connects and finds the detached actor.
    script = textwrap.dedent(
        f"""
        import nebula
        nebula.init(address="{cluster.address}", _cluster_token="{cluster.token}")
        door = nebula.get_actor("door", namespace="{nebula.get_runtime_context().namespace}")
        print(nebula.get(door.greet.remote("new driver")))
        nebula.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello, new driver"
    nebula.kill(detached)


def test_a_node_that_dies_after_the_restart_is_still_noticed(cluster: Cluster) -> None:
    extra = cluster.add_node(num_cpus=1)
    cluster.restart_control_store()
    # The driver reconnected and the new control store knows the node as alive.
    wait_for_condition(
        lambda: any(n["NodeID"] == extra.node_id and n["Alive"] for n in nebula.nodes()),
        timeout=20,
    )
    cluster.remove_node(extra)
    wait_for_condition(
        lambda: any(n["NodeID"] == extra.node_id and not n["Alive"] for n in nebula.nodes()),
        timeout=20,
    )
