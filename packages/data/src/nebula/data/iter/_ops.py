"""Iterator-to-iterator operators shared by local iterators and shard workers.

Each operator is a small frozen dataclass rather than a closure so that a chain of them
pickles cleanly (the class by reference, only the user's function by value) when a
transform list is shipped to a shard actor or a ``LocalIterator`` travels into a task.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: An operator turns the upstream item iterator into the downstream one, lazily.
Operator = Callable[[Iterator[Any]], Iterator[Any]]


def check_callable(fn: object, method: str) -> None:
    """Fail at call time, not deep inside a worker, when a transform is not callable."""
    if not callable(fn):
        raise TypeError(f"{method}() needs a callable, got {type(fn).__name__}: {fn!r}.")


def check_positive(value: object, what: str) -> int:
    """Validate a count argument (batch size, buffer size, shard count) eagerly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}.")
    return value


@dataclass(frozen=True)
class Map:
    """Apply ``fn`` to every item."""

    fn: Callable[[Any], Any]

    def __call__(self, items: Iterator[Any]) -> Iterator[Any]:
        fn = self.fn
        for item in items:
            yield fn(item)


@dataclass(frozen=True)
class Filter:
    """Keep the items for which ``fn`` is truthy."""

    fn: Callable[[Any], Any]

    def __call__(self, items: Iterator[Any]) -> Iterator[Any]:
        fn = self.fn
        for item in items:
            if fn(item):
                yield item


@dataclass(frozen=True)
class Batch:
    """Group items into lists of ``size``; the last list may be shorter."""

    size: int

    def __call__(self, items: Iterator[Any]) -> Iterator[Any]:
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= self.size:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass(frozen=True)
class Flatten:
    """Yield the elements of each (iterable) item in turn."""

    def __call__(self, items: Iterator[Iterable[Any]]) -> Iterator[Any]:
        for item in items:
            yield from item


@dataclass(frozen=True)
class Shuffle:
    """Shuffle within a sliding buffer, so infinite streams can be shuffled in bounded memory.

    Once the buffer holds ``buffer_size`` items, each new item evicts a random one; at the
    end the remaining buffer is emitted in random order.
    """

    buffer_size: int
    seed: int | None = None

    def __call__(self, items: Iterator[Any]) -> Iterator[Any]:
        rng = random.Random(self.seed)
        buffer: list[Any] = []
        for item in items:
            buffer.append(item)
            if len(buffer) >= self.buffer_size:
                index = rng.randrange(len(buffer))
                buffer[index], buffer[-1] = buffer[-1], buffer[index]
                yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer


def apply_all(items: Iterable[Any], operators: Iterable[Operator]) -> Iterator[Any]:
    """Chain ``operators`` over ``items`` in order; nothing runs until the result is pulled."""
    iterator: Iterator[Any] = iter(items)
    for operator in operators:
        iterator = operator(iterator)
    return iterator


def check_union_parts(others: tuple[Any, ...], kind: type) -> None:
    """``union`` takes one or more iterators of the same kind as the one it is called on."""
    if not others:
        raise ValueError(f"union() needs at least one other {kind.__name__}.")
    for other in others:
        if not isinstance(other, kind):
            raise TypeError(f"union() takes {kind.__name__}s, got {type(other).__name__}.")
