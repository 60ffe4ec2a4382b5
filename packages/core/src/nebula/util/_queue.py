"""A FIFO queue shared by the driver, tasks and actors, with the standard library's API.

The items live in an async actor holding an ``asyncio.Queue``: a blocked ``get`` or ``put``
is a suspended coroutine there, not an occupied thread, so any number of callers can wait
at once while others keep the queue moving. The :class:`Queue` object itself holds only
the actor's handle, which is why it can be passed to tasks and actors like any value.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable, Mapping
from typing import Any

import nebula

__all__ = ["Empty", "Full", "Queue"]


class Empty(queue.Empty):
    """Raised by a non-blocking or timed-out ``get`` on an empty queue."""


class Full(queue.Full):
    """Raised by a non-blocking or timed-out ``put`` on a full queue."""


class _QueueActor:
    """Holds the items. Replies are flags, not raised errors, so callers raise cleanly."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    async def qsize(self) -> int:
        return self.queue.qsize()

    async def put(self, item: Any, timeout: float | None = None) -> bool:
        try:
            # Try without waiting first: wait_for with a zero timeout gives up before the
            # coroutine even runs, even when there is room.
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self.queue.put(item), timeout)
            except asyncio.TimeoutError:
                return False
        return True

    async def get(self, timeout: float | None = None) -> tuple[bool, Any]:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    async def put_nowait(self, item: Any) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def put_nowait_batch(self, items: list[Any]) -> bool:
        # All or nothing: a batch that does not fit must leave the queue untouched.
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            return False
        for item in items:
            self.queue.put_nowait(item)
        return True

    async def get_nowait(self) -> tuple[bool, Any]:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    async def get_nowait_batch(self, num_items: int) -> tuple[bool, Any]:
        if num_items > self.queue.qsize():
            return False, self.queue.qsize()
        return True, [self.queue.get_nowait() for _ in range(num_items)]


class Queue:
    """A first-in, first-out queue usable from the driver, tasks and actors.

    ``maxsize <= 0`` means unbounded. ``actor_options`` are passed to the actor holding the
    items (``num_cpus=0`` by default: it waits, it does not compute).
    """

    def __init__(self, maxsize: int = 0, actor_options: Mapping[str, Any] | None = None) -> None:
        self.maxsize = maxsize
        options = {"num_cpus": 0, "max_concurrency": 1000, **(actor_options or {})}
        actor_cls = nebula.remote(**options)(_QueueActor)
        self.actor: Any = actor_cls.remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        return self.qsize()

    def qsize(self) -> int:
        """The number of items now; stale as soon as it returns, as with any shared queue."""
        return int(nebula.get(self._handle().qsize.remote()))

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an item, waiting for room if ``block`` (up to ``timeout`` seconds).

        Raises :class:`Full` if there is no room in time (at once when not blocking).
        """
        if not block:
            self.put_nowait(item)
            return
        _check_timeout(timeout)
        if not nebula.get(self._handle().put.remote(item, timeout)):
            raise Full

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """:meth:`put` for coroutines: waits without blocking the caller's event loop."""
        if not block:
            if not await self._handle().put_nowait.remote(item):
                raise Full
            return
        _check_timeout(timeout)
        if not await self._handle().put.remote(item, timeout):
            raise Full

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item, waiting for one if ``block`` (up to ``timeout``).

        Raises :class:`Empty` if none arrives in time (at once when not blocking).
        """
        if not block:
            return self.get_nowait()
        _check_timeout(timeout)
        found, item = nebula.get(self._handle().get.remote(timeout))
        if not found:
            raise Empty
        return item

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """:meth:`get` for coroutines: waits without blocking the caller's event loop."""
        if block:
            _check_timeout(timeout)
            found, item = await self._handle().get.remote(timeout)
        else:
            found, item = await self._handle().get_nowait.remote()
        if not found:
            raise Empty
        return item

    def put_nowait(self, item: Any) -> None:
        if not nebula.get(self._handle().put_nowait.remote(item)):
            raise Full

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all of ``items`` at once, or none (raising :class:`Full`) if they do not fit."""
        batch = list(items)
        if not nebula.get(self._handle().put_nowait_batch.remote(batch)):
            raise Full(
                f"Cannot add {len(batch)} items to a queue of maxsize {self.maxsize}; "
                "get some items out first or put fewer at a time."
            )

    def get_nowait(self) -> Any:
        found, item = nebula.get(self._handle().get_nowait.remote())
        if not found:
            raise Empty
        return item

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Remove and return ``num_items`` items at once, or none (raising :class:`Empty`)."""
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        found, items = nebula.get(self._handle().get_nowait_batch.remote(num_items))
        if not found:
            raise Empty(f"Cannot get {num_items} items from a queue holding {items}")
        return list(items)

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """Destroy the actor holding the items; the queue is unusable afterwards.

        Unless ``force``, calls already sent to it get up to ``grace_period_s`` seconds to
        finish first.
        """
        actor, self.actor = self.actor, None
        if actor is None:
            return
        if not force:
            nebula.wait([actor.qsize.remote()], num_returns=1, timeout=grace_period_s)
        nebula.kill(actor)

    def _handle(self) -> Any:
        if self.actor is None:
            raise RuntimeError("This Queue was shut down; create a new one.")
        return self.actor


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
