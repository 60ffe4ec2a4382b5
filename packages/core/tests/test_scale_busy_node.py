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


def test_scale_a_slow_burst_in_the_inbox_does_not_hold_off_the_tick() -> None:
    """The receive loop's tick (which sends heartbeats) runs while a burst of slow
    messages is still queued, instead of after the whole burst."""
    import time

    from nebula import _protocol as p
    from nebula._transport import Endpoint

    receiver = Endpoint(token=None)
    sender = Endpoint(token=None)
    try:
        for i in range(100):
            sender.send(receiver.address, p.Ping(i, ""))
        handled: list[int] = []
        ticks: list[int] = []  # messages handled when each tick ran

        def handle(msg: p.Message) -> None:
            time.sleep(0.01)  # 100 messages: a second of work
            handled.append(1)

        deadline = time.monotonic() + 10
        receiver.serve(
            handle,
            should_stop=lambda: len(handled) >= 100 or time.monotonic() > deadline,
            on_tick=lambda: ticks.append(len(handled)),
            tick_s=0.05,
        )
        assert len(handled) == 100
        assert any(0 < count < 100 for count in ticks), ticks
    finally:
        sender.close()
        receiver.close()
