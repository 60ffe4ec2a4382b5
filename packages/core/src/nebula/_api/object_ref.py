"""``ObjectRef``: a future for a value in the object store."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any

from nebula._serialization import record_serialized_ref


class ObjectRef:
    """A reference to an object that exists, or will exist, somewhere in the cluster.

    Pass it to tasks (the task sees the value), to ``nebula.get`` (you get the value), or
    ``await`` it. While any ObjectRef to an object lives anywhere, the object is kept.
    """

    __slots__ = ("__weakref__", "_cw", "_id", "_owner")

    def __init__(self, object_id: bytes, owner_address: str) -> None:
        from nebula._api import runtime

        self._id = object_id
        self._owner = owner_address
        self._cw = runtime.core_worker_or_none()
        if self._cw is not None:
            self._cw.add_local_ref(object_id, owner_address)

    def __del__(self) -> None:
        cw = getattr(self, "_cw", None)
        if cw is not None:
            cw.release_local_ref(self._id)

    @property
    def object_id(self) -> bytes:
        return self._id

    @property
    def owner_address(self) -> str:
        return self._owner

    def hex(self) -> str:
        return self._id.hex()

    def binary(self) -> bytes:
        return self._id

    def task_id(self) -> str:
        return self._id[:16].hex()

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __reduce__(self) -> tuple[Any, ...]:
        record_serialized_ref(self)
        return (ObjectRef, (self._id, self._owner))

    def future(self) -> concurrent.futures.Future[Any]:
        """A ``concurrent.futures.Future`` that resolves to the value."""
        from nebula._api import runtime

        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def on_ready() -> None:
            try:
                future.set_result(runtime.get(self))
            except BaseException as exc:
                future.set_exception(exc)

        def schedule() -> None:
            # Runs under the core worker's lock; read the value on another thread.
            import threading

            threading.Thread(target=on_ready, daemon=True).start()

        runtime.require_core_worker().on_ready_async(self, schedule)
        return future

    def __await__(self) -> Generator[Any, None, Any]:
        return self._as_asyncio_future().__await__()

    def _as_asyncio_future(self) -> asyncio.Future[Any]:
        from nebula._api import runtime

        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_ready() -> None:
            try:
                loop.call_soon_threadsafe(_resolve, ready)
            except RuntimeError:
                pass  # the loop closed while the value was on its way: nobody awaits it

        runtime.require_core_worker().on_ready_async(self, on_ready)

        async def value() -> Any:
            await ready
            return runtime.get(self)

        return asyncio.ensure_future(value())


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
