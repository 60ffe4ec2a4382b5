"""``SignalActor``: order events across processes by waiting on a signal, not by sleeping.

A test that must know a task has started makes the task wait on the signal (or send one),
so the test proceeds exactly when the event happened, however slow the machine is::

    signal = SignalActor.remote()

    @nebula.remote
    def blocked(signal):
        nebula.get(signal.wait.remote())
        return "done"

    ref = blocked.remote(signal)
    nebula.get(signal.send.remote())
    assert nebula.get(ref) == "done"
"""

from __future__ import annotations

import asyncio
from typing import Any

import nebula


class SignalActor:
    """An async actor holding one event; ``wait`` calls run concurrently while it is unset."""

    def __init__(self) -> None:
        self._ready = asyncio.Event()
        self._waiters = 0

    async def send(self, clear: bool = False) -> None:
        """Release every waiter; with ``clear=True`` the next ``wait`` blocks again."""
        self._ready.set()
        if clear:
            await asyncio.sleep(0)  # let the current waiters wake before clearing
            self._ready.clear()

    async def wait(self, should_wait: bool = True) -> None:
        """Return once the signal has been sent (at once when ``should_wait`` is false)."""
        if not should_wait:
            return
        self._waiters += 1
        try:
            await self._ready.wait()
        finally:
            self._waiters -= 1

    async def cur_num_waiters(self) -> int:
        """How many ``wait`` calls are blocked right now."""
        return self._waiters

    async def clear(self) -> None:
        self._ready.clear()


SignalActor: Any = nebula.remote(num_cpus=0, max_concurrency=1000)(SignalActor)  # type: ignore[no-redef]
"""The actor class: ``SignalActor.remote()`` makes one; it takes no CPU."""


class SemaphoreActor:
    """An async counting semaphore actor, for tests that limit how many tasks proceed."""

    def __init__(self, value: int = 1) -> None:
        self._semaphore = asyncio.Semaphore(value)

    async def acquire(self) -> None:
        await self._semaphore.acquire()

    async def release(self) -> None:
        self._semaphore.release()

    async def locked(self) -> bool:
        return self._semaphore.locked()


SemaphoreActor: Any = nebula.remote(num_cpus=0, max_concurrency=1000)(SemaphoreActor)  # type: ignore[no-redef]
