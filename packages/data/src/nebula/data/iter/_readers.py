"""Driver-side readers: the loops that pull items out of shard actors.

Each reader is a picklable callable returning a fresh generator, used as the base of a
``LocalIterator``; calling it again opens new streams, so a derived iterator starts over.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nebula.data.iter._ops import Operator
from nebula.data.iter._worker import KeyedSource

import nebula


@dataclass(frozen=True)
class ActorSet:
    """Shard actors that share one transformation chain (a union holds several sets)."""

    actors: tuple[Any, ...]
    operators: tuple[Operator, ...] = ()
    #: Upstream shard sets these actors read from (repartition). Holding their handles here
    #: keeps them alive: the runtime does not count a handle held inside another actor.
    upstream: tuple[ActorSet, ...] = ()

    def with_operators(self, *operators: Operator) -> ActorSet:
        return ActorSet(self.actors, (*self.operators, *operators), self.upstream)


Shard = tuple[Any, str]  # (actor handle, stream id)


def open_streams(actor_sets: Sequence[ActorSet], group: str, shared: bool = False) -> list[Shard]:
    """Open one stream per shard and wait for all of them, so set-up errors surface here.

    Shards of one set share the stream id ``group:set_index`` (they are distinct actors);
    an actor appearing in two sets gets two independent streams.
    """
    shards: list[Shard] = []
    refs = []
    for set_index, actor_set in enumerate(actor_sets):
        stream_id = f"{group}:{set_index}"
        for actor in actor_set.actors:
            refs.append(actor.par_iter_init.remote(stream_id, actor_set.operators, shared))
            shards.append((actor, stream_id))
    nebula.get(refs)
    return shards


@dataclass(frozen=True)
class GatherSync:
    """Deterministic round robin: one item from each live shard in turn.

    The next item of every shard is requested ahead, so shards compute in parallel while
    the order stays fixed.
    """

    actor_sets: tuple[ActorSet, ...]

    def __call__(self) -> Iterator[Any]:
        shards = open_streams(self.actor_sets, uuid.uuid4().hex)
        pending = [(actor, sid, actor.par_iter_next.remote(sid)) for actor, sid in shards]
        while pending:
            still_pending = []
            for actor, sid, ref in pending:
                has_item, item = nebula.get(ref)
                if not has_item:
                    continue
                still_pending.append((actor, sid, actor.par_iter_next.remote(sid)))
                yield item
            pending = still_pending


@dataclass(frozen=True)
class GatherAsync:
    """Items in the order shards deliver them, via ``nebula.wait``.

    Each shard keeps ``num_async`` requests in flight; requests to one shard are queued in
    order and only the oldest is waited on, so items of one shard never overtake each other.
    """

    actor_sets: tuple[ActorSet, ...]
    batch_ms: float = 0
    num_async: int = 1

    def __call__(self) -> Iterator[Any]:
        shards = open_streams(self.actor_sets, uuid.uuid4().hex)
        queues: dict[int, deque[Any]] = {}
        for index, (actor, sid) in enumerate(shards):
            queues[index] = deque(
                actor.par_iter_next_batch.remote(sid, self.batch_ms) for _ in range(self.num_async)
            )
        while queues:
            heads = {queue[0]: index for index, queue in queues.items()}
            ready, _ = nebula.wait(list(heads), num_returns=1)
            for ref in ready:
                index = heads[ref]
                queues[index].popleft()
                items, exhausted = nebula.get(ref)
                if exhausted:
                    del queues[index]  # later in-flight requests can only say "exhausted"
                else:
                    actor, sid = shards[index]
                    queues[index].append(actor.par_iter_next_batch.remote(sid, self.batch_ms))
                yield from items


@dataclass
class ShardReader:
    """Reads one shard, wherever the ``LocalIterator`` holding it was sent.

    The stream id is ``group:set_index#build``: shards from one ``shards()`` call share
    ``group``, so their first reads share upstream state (see ``RepartitionSource``).
    """

    actor: Any
    operators: tuple[Operator, ...]
    group: str
    set_index: int
    batch_ms: float = 0
    num_async: int = 1
    upstream: tuple[ActorSet, ...] = ()  # see ActorSet.upstream
    _builds: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def __call__(self) -> Iterator[Any]:
        stream_id = f"{self.group}:{self.set_index}#{next(self._builds)}"
        return self._read(stream_id)

    def _read(self, stream_id: str) -> Iterator[Any]:
        actor = self.actor
        nebula.get(actor.par_iter_init.remote(stream_id, self.operators))
        queue = deque(
            actor.par_iter_next_batch.remote(stream_id, self.batch_ms)
            for _ in range(self.num_async)
        )
        while queue:
            items, exhausted = nebula.get(queue.popleft())
            if exhausted:
                return
            queue.append(actor.par_iter_next_batch.remote(stream_id, self.batch_ms))
            yield from items

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_builds"] = None  # itertools.count does not pickle; restart numbering there
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._builds = itertools.count()


class RepartitionSource(KeyedSource):
    """Source of new shard ``index`` of ``num_partitions``: deals the parent's items out.

    New shards reading with the same stream id share one upstream stream per parent shard,
    opened idempotently; item ``p`` of each parent shard goes to new shard ``p % n``.
    """

    def __init__(self, parent_sets: tuple[ActorSet, ...], index: int, num_partitions: int):
        self.parent_sets = parent_sets
        self.index = index
        self.num_partitions = num_partitions

    def open(self, stream_id: str) -> Iterator[Any]:
        parents = open_streams(self.parent_sets, f"{stream_id}/repartition", shared=True)
        live = list(parents)
        while live:
            refs = [a.par_iter_slice.remote(s, self.num_partitions, self.index) for a, s in live]
            still_live = []
            for shard, (has_item, item) in zip(live, nebula.get(refs)):
                if has_item:
                    still_live.append(shard)
                    yield item
            live = still_live
