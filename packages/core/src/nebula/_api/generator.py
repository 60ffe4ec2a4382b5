"""Generator tasks: a remote function or actor method that ``yield``s returns an
``ObjectRefGenerator``.

Each item goes to the caller as soon as it is yielded (see ``_worker/streams.py``), as an
object owned by the caller, so the loop over the generator runs while the task still
produces. An exception in the generator reaches the caller after the items yielded before
it.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ObjectRefGenerator:
    """The ``ObjectRef``s of a generator task's items, in the order they were yielded.

    Iterate it (``for ref in gen`` or ``async for ref in gen``): each step waits for the
    next item, not for the whole task. ``completed()`` is a reference that is ready when
    the task has ended (its value: the number of items).
    """

    def __init__(self, completion: Any, task_id: bytes) -> None:
        from nebula._api import runtime

        self._completion = completion
        self._task_id = task_id
        self._index = 0
        self._finished = False
        self._cw = runtime.require_core_worker()

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_id.hex()})"

    def __reduce__(self) -> Any:
        raise TypeError(
            "an ObjectRefGenerator stays with the process that called the task; pass the "
            "ObjectRefs it yields instead."
        )

    def completed(self) -> Any:
        return self._completion

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> Any:
        ref = self._next_ref(None)
        if ref is None:
            raise StopIteration
        return ref

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> Any:
        if not self._finished and not self._cw.streams.has(self._task_id, self._index):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._wait, None)
        ref = self._next_ref(None)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def _done(self) -> bool:
        entry = self._cw.refs.get(self._completion.object_id)
        return entry is None or entry.value is not None

    def _wait(self, deadline: float | None) -> None:
        """Until the next item arrived or the task ended."""
        cw, task_id, index = self._cw, self._task_id, self._index
        cw.wait_until(lambda: cw.streams.has(task_id, index) or self._done(), deadline)

    def _next_ref(self, deadline: float | None) -> Any:
        """The next item's ObjectRef; None once every item was handed out."""
        from nebula._api import runtime
        from nebula._api.object_ref import ObjectRef

        if self._finished:
            return None
        self._wait(deadline)
        cw = self._cw
        with cw.lock:
            object_id = cw.streams.take(self._task_id, self._index)
            if object_id is not None:
                ref = ObjectRef(object_id, cw.address)
                cw.streams.release(object_id)
                self._index += 1
                return ref
        # The task ended without item ``index``: its items, in order, arrived before its
        # end (one connection), so there are no more. A failed task raises here.
        self._finished = True
        self._close()
        runtime.get(self._completion)
        return None

    def _close(self) -> None:
        cw = getattr(self, "_cw", None)
        if cw is not None:
            cw.release_stream(self._task_id)

    def __del__(self) -> None:
        self._close()
