"""``@serve.batch``: calls made one at a time reach the method as lists.

A caller passes one item and gets one result; the decorated ``async`` method receives up
to ``max_batch_size`` items (waiting at most ``batch_wait_timeout_s`` after the first for
more) and returns one result per item, in order. Both settings can change while serving::

    self.predict.set_max_batch_size(32)
    self.predict.set_batch_wait_timeout_s(0.05)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["batch"]


class _Settings:
    def __init__(self, max_batch_size: int, batch_wait_timeout_s: float) -> None:
        _check(max_batch_size, batch_wait_timeout_s)
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s


def _check(max_batch_size: int, batch_wait_timeout_s: float) -> None:
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an integer of 1 or more, got {max_batch_size!r}.")
    if batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be 0 or more, got {batch_wait_timeout_s!r}.")


class _BatchQueue:
    """Collects calls on one event loop and runs the function on each batch."""

    def __init__(self, func: Callable[..., Any], owner: Any, settings: _Settings) -> None:
        self._func = func
        self._owner = owner
        self._settings = settings
        self._items: asyncio.Queue[tuple[tuple[Any, ...], asyncio.Future[Any]]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._items.put_nowait((args, future))
        return future

    async def _collect(self) -> list[tuple[tuple[Any, ...], asyncio.Future[Any]]]:
        batch = [await self._items.get()]
        settings = self._settings
        deadline = asyncio.get_running_loop().time() + settings.batch_wait_timeout_s
        while len(batch) < settings.max_batch_size:
            while not self._items.empty() and len(batch) < settings.max_batch_size:
                batch.append(self._items.get_nowait())
            remaining = deadline - asyncio.get_running_loop().time()
            if len(batch) >= settings.max_batch_size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._items.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            batch = [(args, f) for args, f in batch if not f.done()]
            if not batch:
                continue
            columns = [list(column) for column in zip(*(args for args, _ in batch))]
            try:
                if self._owner is not None:
                    results = await self._func(self._owner, *columns)
                else:
                    results = await self._func(*columns)
                if not isinstance(results, (list, tuple)) or len(results) != len(batch):
                    raise TypeError(
                        f"A @serve.batch function must return a list with one result per "
                        f"input: it got {len(batch)} inputs and returned {_describe(results)}."
                    )
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)


def _describe(results: Any) -> str:
    if isinstance(results, (list, tuple)):
        return f"{len(results)} results"
    return f"a {type(results).__name__}"


def batch(
    _func: Callable[..., Any] | None = None,
    *,
    max_batch_size: int = 10,
    batch_wait_timeout_s: float = 0.01,
    max_concurrent_batches: int = 1,
) -> Any:
    """Batch the calls of an ``async`` function or method (see the module's docstring)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError("@serve.batch goes on an `async def` function or method.")
        params = list(inspect.signature(func).parameters)
        is_method = bool(params) and params[0] == "self"
        settings = _Settings(max_batch_size, batch_wait_timeout_s)
        queues: dict[tuple[int, int], _BatchQueue] = {}

        def queue_for(owner: Any) -> _BatchQueue:
            key = (id(owner), id(asyncio.get_running_loop()))
            queue = queues.get(key)
            if queue is None:
                queue = queues[key] = _BatchQueue(func, owner, settings)
            return queue

        @functools.wraps(func)
        async def wrapper(*args: Any) -> Any:
            if is_method:
                owner, items = args[0], args[1:]
            else:
                owner, items = None, args
            return await queue_for(owner).submit(items)

        def set_max_batch_size(value: int) -> None:
            _check(value, settings.batch_wait_timeout_s)
            settings.max_batch_size = value

        def set_batch_wait_timeout_s(value: float) -> None:
            _check(settings.max_batch_size, value)
            settings.batch_wait_timeout_s = value

        wrapper.set_max_batch_size = set_max_batch_size  # type: ignore[attr-defined]
        wrapper.set_batch_wait_timeout_s = set_batch_wait_timeout_s  # type: ignore[attr-defined]
        wrapper.get_max_batch_size = lambda: settings.max_batch_size  # type: ignore[attr-defined]
        wrapper.get_batch_wait_timeout_s = (  # type: ignore[attr-defined]
            lambda: settings.batch_wait_timeout_s
        )
        wrapper._serve_batch_settings = settings  # type: ignore[attr-defined]
        return wrapper

    if _func is not None:
        return decorate(_func)
    return decorate
