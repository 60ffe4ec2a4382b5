"""A node manager busy with a burst of work (hundreds of actors created at once) keeps
heartbeating: it is not declared dead while it works through its inbox."""

from __future__ import annotations

import pytest

import nebula
from nebula.testing import Cluster


@nebula.remote(num_cpus=0)
class Idle:
    def ping(self) -> int:
        return 1


@pytest.mark.timeout(180)
def test_scale_a_burst_of_actor_creations_does_not_silence_the_node() -> None:
    with Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, node_timeout_s=2.0
    ) as cluster:
        cluster.connect()
        handles = [Idle.remote() for _ in range(150)]
        assert sum(nebula.get([h.ping.remote() for h in handles], timeout=150)) == 150
        del handles
        nebula.shutdown()
