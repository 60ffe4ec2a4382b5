"""Constructors: ``from_items``, ``from_range``, ``from_iterators`` and ``from_actors``.

Each starts one worker actor per shard. The actors take no CPU (``num_cpus=0``) because
they mostly wait for readers, and reserving a CPU each would starve the tasks reading them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from nebula.data.iter._ops import check_positive
from nebula.data.iter._parallel import ParallelIterator
from nebula.data.iter._readers import ActorSet
from nebula.data.iter._worker import ShardWorker

import nebula

T = TypeVar("T")


@functools.cache
def shard_actor_class() -> Any:
    """The remote actor class for built-in shards, made once on first use."""
    return nebula.remote(num_cpus=0)(ShardWorker)


def _repeat_suffix(repeat: bool) -> str:
    return ", repeat=True" if repeat else ""


def _start(sources: Sequence[Any], repeat: bool) -> tuple[Any, ...]:
    worker = shard_actor_class()
    return tuple(worker.remote(source, repeat) for source in sources)


def from_items(
    items: Sequence[T], num_shards: int = 2, repeat: bool = False
) -> ParallelIterator[T]:
    """A parallel iterator over ``items``, dealt round robin to ``num_shards`` shards."""
    check_positive(num_shards, "num_shards")
    items = list(items)
    shards = [items[index::num_shards] for index in range(num_shards)]
    kind = type(items[0]).__name__ if items else "None"
    name = f"from_items[{kind}, {len(items)}, shards={num_shards}{_repeat_suffix(repeat)}]"
    return ParallelIterator([ActorSet(_start(shards, repeat))], name)


def from_range(n: int, num_shards: int = 2, repeat: bool = False) -> ParallelIterator[int]:
    """A parallel iterator over ``range(n)``, split into ``num_shards`` contiguous ranges.

    The last shard takes the remainder, so shards differ in length by less than
    ``num_shards`` items.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"from_range() needs a non-negative int, got {n!r}.")
    check_positive(num_shards, "num_shards")
    step = n // num_shards
    bounds = [(i * step, n if i == num_shards - 1 else (i + 1) * step) for i in range(num_shards)]
    name = f"from_range[{n}, shards={num_shards}{_repeat_suffix(repeat)}]"
    return ParallelIterator([ActorSet(_start([range(a, b) for a, b in bounds], repeat))], name)


def from_iterators(
    generators: Sequence[Callable[[], Iterable[T]] | Iterable[T]],
    repeat: bool = False,
    name: str | None = None,
) -> ParallelIterator[T]:
    """One shard per entry of ``generators``: a function returning an iterable, or an iterable.

    Generator *objects* cannot travel to an actor, so pass the generator function (or a
    lambda calling it) instead; with ``repeat=True`` each pass calls it again.
    """
    generators = list(generators)
    if not generators:
        raise ValueError("from_iterators() needs at least one generator.")
    for gen in generators:
        if inspect.isgenerator(gen):
            raise TypeError(
                "from_iterators() cannot ship a generator object to a shard actor; "
                "pass the generator function (or lambda: gen_fn(...)) instead."
            )
        if not callable(gen) and not isinstance(gen, Iterable):
            raise TypeError(
                "from_iterators() takes callables returning iterables, or iterables; "
                f"got {type(gen).__name__}."
            )
        if repeat and not callable(gen) and iter(gen) is gen:
            raise ValueError(
                "repeat=True cannot replay a one-shot iterator; pass a re-iterable or a "
                "function returning a fresh iterator instead."
            )
    if name is None:
        name = f"from_iterators[shards={len(generators)}{_repeat_suffix(repeat)}]"
    return ParallelIterator([ActorSet(_start(generators, repeat))], name)


def from_actors(actors: Sequence[Any], name: str | None = None) -> ParallelIterator[Any]:
    """A parallel iterator over existing actors that subclass ``ParallelIteratorWorker``."""
    actors = tuple(actors)
    if not actors:
        raise ValueError("from_actors() needs at least one actor.")
    for actor in actors:
        if not isinstance(actor, nebula.ActorHandle):
            raise TypeError(
                f"from_actors() takes actor handles, got {type(actor).__name__}; create them "
                "with an @nebula.remote class that subclasses ParallelIteratorWorker."
            )
    if name is None:
        name = f"from_actors[shards={len(actors)}]"
    return ParallelIterator([ActorSet(actors)], name)
