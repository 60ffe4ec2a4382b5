"""Generator tasks: a remote function that ``yield``s returns an ``ObjectRefGenerator``.

The task runs the generator to its end in the worker and sends back what it yielded; the
caller then puts each item in the object store as an object of its own, so every item is a
separate ``ObjectRef`` owned by the caller (as a task's return value is). Iterating waits
for the whole task: items arrive together when the generator finishes, and an exception
raised by the generator is raised by the first ``next`` (the items yielded before it are
not returned).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any


class GeneratorCollector:
    """Runs in the worker: calls the generator function and returns its items as a list."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.__name__ = getattr(function, "__name__", "generator")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        produced = self.function(*args, **kwargs)
        if inspect.isasyncgen(produced):
            return asyncio.run(drain_async_generator(produced))
        return list(produced)


async def drain_async_generator(produced: Any) -> list[Any]:
    return [item async for item in produced]


class ObjectRefGenerator:
    """The ``ObjectRef``s of a generator task's items, in the order they were yielded.

    Iterate it (``for ref in gen`` or ``async for ref in gen``) and ``nebula.get`` each
    reference, as with any task result.
    """

    def __init__(self, task_ref: Any) -> None:
        self._task_ref = task_ref
        self._refs: Iterator[Any] | None = None
        self._repr = f"ObjectRefGenerator({task_ref!r})"

    def __repr__(self) -> str:
        return self._repr

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> Any:
        if self._refs is None:
            from nebula._api import runtime

            self._refs = self._put_all(runtime.get(self._task_ref))
        return next(self._refs)

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> Any:
        if self._refs is None:
            self._refs = self._put_all(await self._task_ref)
        try:
            return next(self._refs)
        except StopIteration:
            raise StopAsyncIteration from None

    def _put_all(self, items: list[Any]) -> Iterator[Any]:
        from nebula._api import runtime

        self._task_ref = None  # the list is no longer needed once its items are objects
        return iter([runtime.put(item) for item in items])
