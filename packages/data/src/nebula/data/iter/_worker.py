"""The shard side of a parallel iterator: ``ParallelIteratorWorker`` and its stream table.

Every shard of a ``ParallelIterator`` is an actor implementing this class. A reader (a
``gather_*`` loop, a shard read inside a task, a repartition consumer) opens a *stream* on
the actor with the transformation chain to apply, then pulls items from it. Streams are
keyed so that two iterators derived from the same source, or a union that reuses the same
actors, never steal each other's items. The table is bounded: abandoned streams (a
``take()`` on an infinite iterator) are evicted oldest first.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nebula.data.iter._ops import Operator, apply_all

#: How many open streams one shard keeps before evicting the least recently used one.
MAX_STREAMS = 64


class KeyedSource:
    """A shard source that needs the reader's stream id to open (used by ``repartition``).

    Subclasses implement ``open(stream_id)``; streams opened with the same id by sibling
    shards can then share upstream state.
    """

    def open(self, stream_id: str) -> Iterator[Any]:
        raise NotImplementedError


def _is_one_shot(source: object) -> bool:
    """True for iterators (``iter(x) is x``), which cannot be replayed for ``repeat``."""
    return isinstance(source, Iterator)


def _cycle(make: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """Repeat a re-openable source forever; stop if one pass is empty rather than spin."""
    while True:
        produced = False
        for item in make():
            produced = True
            yield item
        if not produced:
            return


@dataclass
class _Stream:
    """One reader's view of this shard: the built iterator, and slice buffers if sliced."""

    iterator: Iterator[Any] | None
    slices: list[deque[Any]] = field(default_factory=list)
    produced: int = 0


class ParallelIteratorWorker:
    """Base class for actors that serve a shard of a ``ParallelIterator``.

    ``item_generator`` is a callable returning an iterable, or an iterable; it is re-opened
    each time a reader starts a new stream (so ``take`` then a derived iterator both start
    from the beginning), and cycled forever when ``repeat`` is true. Subclass it in an actor
    class and pass the handles to ``from_actors``.
    """

    def __init__(self, item_generator: Any, repeat: bool = False) -> None:
        if not isinstance(item_generator, (KeyedSource, Iterable)) and not callable(item_generator):
            raise TypeError(
                "item_generator must be a callable returning an iterable, or an iterable; "
                f"got {type(item_generator).__name__}."
            )
        if repeat and _is_one_shot(item_generator):
            raise ValueError(
                "repeat=True cannot replay a one-shot iterator; pass a re-iterable "
                "(a list, a range) or a function returning a fresh iterator instead."
            )
        self._item_generator = item_generator
        self._repeat = repeat
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    # -- methods called remotely by readers --------------------------------------------

    def par_iter_init(
        self, stream_id: str, operators: tuple[Operator, ...], shared: bool = False
    ) -> None:
        """Open (or, unless ``shared``, restart) the stream ``stream_id``.

        ``shared`` makes the call idempotent, so several consumers of the same upstream
        stream (repartition) can each "open" it without resetting the others.
        """
        if shared and stream_id in self._streams:
            self._streams.move_to_end(stream_id)
            return
        self._streams[stream_id] = _Stream(apply_all(self._open(stream_id), operators))
        self._streams.move_to_end(stream_id)
        while len(self._streams) > MAX_STREAMS:
            self._streams.popitem(last=False)

    def par_iter_next(self, stream_id: str) -> tuple[bool, Any]:
        """Return ``(True, item)``, or ``(False, None)`` once the stream is exhausted."""
        stream = self._stream(stream_id)
        return self._pull(stream)

    def par_iter_next_batch(self, stream_id: str, batch_ms: float = 0) -> tuple[list[Any], bool]:
        """Return ``(items, exhausted)``: one item, or as many as arrive within ``batch_ms``.

        Batching amortises the per-call round trip when items are cheap to produce.
        """
        stream = self._stream(stream_id)
        deadline = time.monotonic() + batch_ms / 1000.0
        items: list[Any] = []
        while True:
            has_item, item = self._pull(stream)
            if not has_item:
                return items, True
            items.append(item)
            if time.monotonic() >= deadline:
                return items, False

    def par_iter_slice(self, stream_id: str, step: int, start: int) -> tuple[bool, Any]:
        """Next item whose position ``p`` in the stream has ``p % step == start``.

        Items for the other slices are buffered here until their consumer asks for them,
        which is how ``repartition`` deals a shard out to ``step`` new shards.
        """
        stream = self._stream(stream_id)
        if not stream.slices:
            stream.slices = [deque() for _ in range(step)]
        buffer = stream.slices[start]
        while not buffer:
            position = stream.produced
            has_item, item = self._pull(stream)
            if not has_item:
                return False, None
            stream.slices[position % step].append(item)
        return True, buffer.popleft()

    def par_iter_close(self, stream_id: str) -> None:
        """Forget a stream early, releasing its buffers."""
        self._streams.pop(stream_id, None)

    # -- internals ----------------------------------------------------------------------

    def _open(self, stream_id: str) -> Iterator[Any]:
        source = self._item_generator
        if isinstance(source, KeyedSource):
            return source.open(stream_id)

        def make() -> Iterable[Any]:
            made: Iterable[Any] = source() if callable(source) else source
            return made

        if self._repeat:
            return _cycle(make)
        return iter(make())

    def _stream(self, stream_id: str) -> _Stream:
        try:
            stream = self._streams[stream_id]
        except KeyError:
            raise RuntimeError(
                f"Stream {stream_id!r} is not open on this shard: it was never started or "
                f"was evicted after {MAX_STREAMS} newer readers; re-create the iterator."
            ) from None
        self._streams.move_to_end(stream_id)
        return stream

    @staticmethod
    def _pull(stream: _Stream) -> tuple[bool, Any]:
        if stream.iterator is None:
            return False, None
        try:
            item = next(stream.iterator)
        except StopIteration:
            stream.iterator = None  # drop the generator (and what it holds) right away
            return False, None
        except BaseException:
            stream.iterator = None  # a generator that raised is finished; say so next time
            raise
        stream.produced += 1
        return True, item


class ShardWorker(ParallelIteratorWorker):
    """The actor class behind ``from_items``/``from_range``/``from_iterators``/``repartition``."""

    def __init__(self, item_generator: Any, repeat: bool = False) -> None:
        super().__init__(item_generator, repeat)
