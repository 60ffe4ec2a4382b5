"""``ParallelIterator``: a lazy, sharded iterator whose transformations run in shard actors.

A parallel iterator is immutable: each transformation returns a new iterator sharing the
same shard actors with a longer operator chain. The chain is shipped to the actors only when
a reader opens a stream (``gather_sync``, ``gather_async``, ``shards``, ``take``...), so
building a pipeline costs nothing and infinite sources are fine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NoReturn, TypeVar

from nebula.data.iter._local import LocalIterator
from nebula.data.iter._ops import (
    Batch,
    Filter,
    Flatten,
    Map,
    Operator,
    Shuffle,
    check_callable,
    check_positive,
    check_union_parts,
)
from nebula.data.iter._readers import (
    ActorSet,
    GatherAsync,
    GatherSync,
    RepartitionSource,
    ShardReader,
)

T = TypeVar("T")
U = TypeVar("U")


class ParallelIterator(Generic[T]):
    """A sharded, lazy iterator; each shard is produced by one worker actor.

    Build one with ``from_items``, ``from_range``, ``from_iterators`` or ``from_actors``;
    read it through ``gather_sync()``/``gather_async()`` (a ``LocalIterator`` here) or
    ``shards()`` (one ``LocalIterator`` per shard, to hand to tasks or actors).
    """

    def __init__(self, actor_sets: Sequence[ActorSet], name: str, suffix: str = "") -> None:
        self._actor_sets = tuple(actor_sets)
        self.name = name
        self._suffix = suffix

    # -- lazy transformations, run inside the shard actors ---------------------------------

    def for_each(self, fn: Callable[[T], U]) -> ParallelIterator[U]:
        """Apply ``fn`` to each item, in parallel on the shards."""
        check_callable(fn, "for_each")
        return self._derive(".for_each()", Map(fn))

    def filter(self, fn: Callable[[T], Any]) -> ParallelIterator[T]:
        """Keep only items for which ``fn`` is truthy, evaluated on the shards."""
        check_callable(fn, "filter")
        return self._derive(".filter()", Filter(fn))

    def batch(self, n: int) -> ParallelIterator[list[T]]:
        """Group each shard's items into lists of ``n`` (the last may be shorter)."""
        check_positive(n, "batch size")
        return self._derive(f".batch({n})", Batch(n))

    def flatten(self) -> ParallelIterator[Any]:
        """Turn each shard's stream of iterables into a stream of their elements."""
        return self._derive(".flatten()", Flatten())

    def combine(self, fn: Callable[[T], Iterable[U]]) -> ParallelIterator[U]:
        """``for_each(fn).flatten()``: ``fn`` may return any number of items per input."""
        check_callable(fn, "combine")
        return self._derive(".combine()", Map(fn), Flatten())

    def local_shuffle(
        self, shuffle_buffer_size: int, seed: int | None = None
    ) -> ParallelIterator[T]:
        """Shuffle each shard within a buffer of ``shuffle_buffer_size`` items.

        Items never move between shards; use ``repartition`` first for a wider mix.
        """
        check_positive(shuffle_buffer_size, "shuffle_buffer_size")
        return self._derive(
            f".local_shuffle(shuffle_buffer_size={shuffle_buffer_size}, seed={seed})",
            Shuffle(shuffle_buffer_size, seed),
        )

    # -- reshaping -----------------------------------------------------------------------

    def repartition(self, num_partitions: int) -> ParallelIterator[T]:
        """Deal this iterator's items out to ``num_partitions`` new shards (new actors).

        Item ``p`` of every current shard goes to new shard ``p % num_partitions``; the
        current chain still runs on the current shards.
        """
        check_positive(num_partitions, "num_partitions")
        from nebula.data.iter._create import shard_actor_class

        worker = shard_actor_class()
        actors = tuple(
            worker.remote(RepartitionSource(self._actor_sets, index, num_partitions))
            for index in range(num_partitions)
        )
        return ParallelIterator(
            [ActorSet(actors, upstream=self._actor_sets)],
            f"{self!r}.repartition[num_partitions={num_partitions}]",
        )

    def union(self, *others: ParallelIterator[T]) -> ParallelIterator[T]:
        """All shards of this iterator followed by those of ``others``, each with its chain."""
        check_union_parts(others, ParallelIterator)
        sets = [s for it in (self, *others) for s in it._actor_sets]
        name = f"ParallelUnion[{', '.join(repr(it) for it in (self, *others))}]"
        return ParallelIterator(sets, name)

    def select_shards(self, shards_to_keep: Sequence[int]) -> ParallelIterator[T]:
        """Keep only the shards at ``shards_to_keep`` (indices into ``shards()``)."""
        count = self.num_shards()
        indices = list(shards_to_keep)
        if not indices:
            raise ValueError("select_shards() needs at least one shard index.")
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise ValueError(f"Shard index {index!r} is out of range for {count} shards.")
        flat = self._flat_shards()
        kept = [flat[index] for index in indices]
        sets = [ActorSet((actor,), owner.operators, owner.upstream) for actor, owner, _ in kept]
        suffix = f"{self._suffix}.select_shards({len(sets)} total)"
        return ParallelIterator(sets, self.name, suffix)

    def num_shards(self) -> int:
        """How many shards (worker actors) produce this iterator."""
        return sum(len(s.actors) for s in self._actor_sets)

    # -- reading -------------------------------------------------------------------------

    def gather_sync(self) -> LocalIterator[T]:
        """Read all shards round robin, one item at a time: deterministic order."""
        return LocalIterator(GatherSync(self._actor_sets), f"{self!r}.gather_sync()")

    def gather_async(self, batch_ms: float = 0, num_async: int = 1) -> LocalIterator[T]:
        """Read items in whatever order shards produce them: faster, not deterministic.

        ``batch_ms`` lets a shard return everything it makes within that many milliseconds
        per call; ``num_async`` is how many requests to keep in flight per shard.
        """
        _check_batch_ms(batch_ms)
        check_positive(num_async, "num_async")
        reader = GatherAsync(self._actor_sets, batch_ms, num_async)
        return LocalIterator(reader, f"{self!r}.gather_async()")

    def shards(self, batch_ms: float = 0, num_async: int = 2) -> list[LocalIterator[T]]:
        """One ``LocalIterator`` per shard; each may be passed to a task and read there.

        A shard should be read by one process at a time: readers share its stream. Two
        requests stay in flight by default so the shard computes the next item while the
        current one travels, which roughly halves the read time of cheap items.
        """
        _check_batch_ms(batch_ms)
        check_positive(num_async, "num_async")
        group = uuid.uuid4().hex
        return [
            self._shard_iterator(i, group, batch_ms, num_async) for i in range(self.num_shards())
        ]

    def get_shard(
        self, shard_index: int, batch_ms: float = 0, num_async: int = 2
    ) -> LocalIterator[T]:
        """A ``LocalIterator`` over shard ``shard_index`` alone (see ``shards`` for the knobs)."""
        count = self.num_shards()
        if isinstance(shard_index, bool) or not isinstance(shard_index, int):
            raise TypeError(f"shard_index must be an int, got {type(shard_index).__name__}.")
        if not 0 <= shard_index < count:
            raise ValueError(f"Shard index {shard_index} is out of range for {count} shards.")
        _check_batch_ms(batch_ms)
        check_positive(num_async, "num_async")
        return self._shard_iterator(shard_index, uuid.uuid4().hex, batch_ms, num_async)

    def take(self, n: int) -> list[T]:
        """The first ``n`` items in ``gather_sync`` order (a new read each call)."""
        return self.gather_sync().take(n)

    def show(self, n: int = 20) -> None:
        """Print the first ``n`` items in ``gather_sync`` order."""
        self.gather_sync().show(n)

    def __iter__(self) -> NoReturn:
        raise TypeError(
            "A ParallelIterator cannot be iterated directly; call .gather_sync() or "
            ".gather_async() to get a LocalIterator (or .shards() for one per shard)."
        )

    def __repr__(self) -> str:
        return f"ParallelIterator[{self.name}]{self._suffix}"

    # -- plumbing ------------------------------------------------------------------------

    def _derive(self, suffix: str, *operators: Operator) -> ParallelIterator[Any]:
        sets = [s.with_operators(*operators) for s in self._actor_sets]
        return ParallelIterator(sets, self.name, self._suffix + suffix)

    def _flat_shards(self) -> list[tuple[Any, ActorSet, int]]:
        return [
            (actor, actor_set, set_index)
            for set_index, actor_set in enumerate(self._actor_sets)
            for actor in actor_set.actors
        ]

    def _shard_iterator(
        self, index: int, group: str, batch_ms: float = 0, num_async: int = 1
    ) -> LocalIterator[T]:
        actor, actor_set, set_index = self._flat_shards()[index]
        reader = ShardReader(
            actor, actor_set.operators, group, set_index, batch_ms, num_async, actor_set.upstream
        )
        return LocalIterator(reader, f"{self.name}{self._suffix}.shard[{index}]")


def _check_batch_ms(batch_ms: float) -> None:
    if isinstance(batch_ms, bool) or not isinstance(batch_ms, (int, float)) or batch_ms < 0:
        raise ValueError(f"batch_ms must be a non-negative number, got {batch_ms!r}.")
