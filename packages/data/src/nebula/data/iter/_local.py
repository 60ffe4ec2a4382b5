"""``LocalIterator``: a lazy, chainable iterator that runs in the process that reads it.

A local iterator is a *recipe*: a callable that opens the base stream plus a tuple of
operators. Nothing runs until the first ``next()``; deriving a new iterator (``for_each``,
``filter``, ...) copies the recipe and so re-opens the base stream when it is read. That is
what lets an unread iterator be pickled into a task and read there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nebula.data.iter._ops import (
    Batch,
    Filter,
    Flatten,
    Map,
    Operator,
    Shuffle,
    apply_all,
    check_callable,
    check_positive,
    check_union_parts,
)

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class _IterableSource:
    """Re-open a plain iterable (a list, a range) each time the iterator is built."""

    iterable: Iterable[Any]

    def __call__(self) -> Iterator[Any]:
        return iter(self.iterable)


@dataclass(frozen=True)
class _UnionSource:
    """Interleave several local iterators round robin, one item from each in turn.

    Round robin (rather than chaining) keeps a union over infinite iterators fair.
    """

    parts: tuple[LocalIterator[Any], ...]

    def __call__(self) -> Iterator[Any]:
        active = [part._fresh() for part in self.parts]
        while active:
            still_active = []
            for part in active:
                try:
                    item = next(part)
                except StopIteration:
                    continue
                still_active.append(part)
                yield item
            active = still_active


class LocalIterator(Generic[T]):
    """An iterator whose transformations run in the current process.

    Obtained from ``ParallelIterator.gather_sync()``, ``gather_async()``, ``shards()`` or
    ``get_shard()``; can also wrap any callable returning an iterable (or an iterable that
    can be iterated repeatedly). An unread ``LocalIterator`` is picklable, so it can be
    passed to a remote function and read there.
    """

    def __init__(
        self,
        base_iterator: Callable[[], Iterable[T]] | Iterable[T],
        name: str = "unknown",
        operators: tuple[Operator, ...] = (),
    ) -> None:
        if callable(base_iterator):
            self._base: Callable[[], Iterable[Any]] = base_iterator
        elif isinstance(base_iterator, Iterable):
            self._base = _IterableSource(base_iterator)
        else:
            raise TypeError(
                "LocalIterator needs a callable returning an iterable, or an iterable; "
                f"got {type(base_iterator).__name__}."
            )
        self.name = name
        self._operators = operators
        self._built: Iterator[T] | None = None

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> LocalIterator[T]:
        return self

    def __next__(self) -> T:
        if self._built is None:
            self._built = apply_all(self._base(), self._operators)
        return next(self._built)

    def take(self, n: int) -> list[T]:
        """Read up to ``n`` more items; later reads continue where this one stopped."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"take() needs a non-negative int, got {n!r}.")
        items: list[T] = []
        while len(items) < n:
            try:
                items.append(next(self))
            except StopIteration:
                break
        return items

    def show(self, n: int = 20) -> None:
        """Print up to ``n`` items, one per line: a quick look at a stream while building it."""
        for item in self.take(n):
            print(item)

    # -- lazy transformations --------------------------------------------------------------

    def for_each(self, fn: Callable[[T], U]) -> LocalIterator[U]:
        """Apply ``fn`` to each item, in this process."""
        check_callable(fn, "for_each")
        return self._derive(Map(fn), ".for_each()")

    def filter(self, fn: Callable[[T], Any]) -> LocalIterator[T]:
        """Keep only the items for which ``fn`` returns a truthy value."""
        check_callable(fn, "filter")
        return self._derive(Filter(fn), ".filter()")

    def batch(self, n: int) -> LocalIterator[list[T]]:
        """Group items into lists of ``n`` (the last one may be shorter)."""
        check_positive(n, "batch size")
        return self._derive(Batch(n), f".batch({n})")

    def flatten(self) -> LocalIterator[Any]:
        """Turn a stream of iterables into a stream of their elements."""
        return self._derive(Flatten(), ".flatten()")

    def combine(self, fn: Callable[[T], Iterable[U]]) -> LocalIterator[U]:
        """``for_each(fn).flatten()``: ``fn`` may return any number of items per input."""
        check_callable(fn, "combine")
        return LocalIterator(
            self._base, self.name + ".combine()", (*self._operators, Map(fn), Flatten())
        )

    def shuffle(self, shuffle_buffer_size: int, seed: int | None = None) -> LocalIterator[T]:
        """Shuffle within a buffer of ``shuffle_buffer_size`` items (bounded memory)."""
        check_positive(shuffle_buffer_size, "shuffle_buffer_size")
        return self._derive(
            Shuffle(shuffle_buffer_size, seed),
            f".shuffle(shuffle_buffer_size={shuffle_buffer_size}, seed={seed})",
        )

    def union(self, *others: LocalIterator[T]) -> LocalIterator[T]:
        """Interleave this iterator with ``others`` round robin until all are exhausted."""
        check_union_parts(others, LocalIterator)
        parts = (self, *others)
        return LocalIterator(_UnionSource(parts), f"LocalUnion[{', '.join(map(repr, parts))}]")

    # -- plumbing ------------------------------------------------------------------------

    def _derive(self, operator: Operator, suffix: str) -> LocalIterator[Any]:
        return LocalIterator(self._base, self.name + suffix, (*self._operators, operator))

    def _fresh(self) -> LocalIterator[T]:
        """An unread copy of this recipe, so composing never steals another reader's items."""
        return LocalIterator(self._base, self.name, self._operators)

    def __getstate__(self) -> dict[str, Any]:
        if self._built is not None:
            raise TypeError(
                f"{self!r} has already started iterating and cannot be pickled; "
                "pass an unread iterator (e.g. a fresh shard from shards()) instead."
            )
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return f"LocalIterator[{self.name}]"
