"""The routing state without sockets: replica choice, pauses, and a replica's load count."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from nebula.serve import _wire
from nebula.serve._replica import Replica
from nebula.serve._routing import FULL_BACKOFF_S, ReplicaChooser, ReplicaInfo


def _infos(count: int, max_ongoing: int = 2) -> list[ReplicaInfo]:
    return [ReplicaInfo(f"r{i}", "127.0.0.1", 1000 + i, max_ongoing) for i in range(count)]


def test_chooser_prefers_the_less_loaded_and_respects_the_limit() -> None:
    chooser = ReplicaChooser(random.Random(0))
    chooser.update(_infos(2))
    chooser.slots["r0"].ongoing = 1
    assert chooser.choose(now=0.0) is chooser.slots["r1"]
    chooser.slots["r1"].ongoing = 2
    assert chooser.choose(now=0.0) is chooser.slots["r0"]
    chooser.slots["r0"].ongoing = 2
    assert chooser.choose(now=0.0) is None


def test_a_replica_that_turned_a_request_away_pauses_and_says_when_it_resumes() -> None:
    chooser = ReplicaChooser(random.Random(0))
    chooser.update(_infos(1))
    assert chooser.backoff_ends(now=5.0) is None
    chooser.mark_full("r0", now=5.0)
    assert chooser.choose(now=5.0) is None
    assert chooser.backoff_ends(now=5.0) == 5.0 + FULL_BACKOFF_S
    assert chooser.choose(now=5.0 + FULL_BACKOFF_S) is chooser.slots["r0"]
    # Full of our own requests, it needs no timer: their answers free the room.
    chooser.slots["r0"].ongoing = 2
    assert chooser.backoff_ends(now=5.0) is None


class _FakeConnection:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


def test_a_request_cancelled_before_it_starts_frees_its_place_in_the_replica() -> None:
    async def scenario() -> None:
        replica = Replica("r0", "app")
        replica.max_ongoing = 1
        connection: Any = _FakeConnection()
        request = _wire.Request(7, "__call__", (), {}, False, "id", "/")
        replica.on_request(connection, request)
        assert replica.ongoing == 1
        replica.on_cancel(connection, 7)  # arrives in the same read as the request
        await asyncio.sleep(0.01)
        assert replica.ongoing == 0
        assert not replica._tasks
        replica.on_request(connection, request._replace(rid=8))
        assert not any(isinstance(m, _wire.Rejected) for m in connection.sent)
        replica.on_cancel(connection, 8)
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
