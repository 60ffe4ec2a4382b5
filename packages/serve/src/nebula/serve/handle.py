"""``DeploymentHandle``: call a deployment from Python, and the responses it returns.

A handle is cheap to copy and to pickle: it names a deployment and its call options, and
routes through the calling process's router for that deployment. ``handle.remote(...)``
sends at once and returns a :class:`DeploymentResponse` (await it, or ``.result()`` from
synchronous code); with ``options(stream=True)`` it returns a
:class:`DeploymentResponseGenerator`. A response passed as an argument to another call is
resolved in the caller before that call is sent, without blocking the code that made it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from nebula.serve import _client
from nebula.serve._common import DeploymentID
from nebula.serve.exceptions import RequestCancelledError

__all__ = ["DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator"]

_UNSET: Any = object()
_END = object()


@dataclass(frozen=True)
class _HandleOptions:
    method_name: str = "__call__"
    stream: bool = False
    multiplexed_model_id: str = ""


class DeploymentHandle:
    """Calls a deployment's replicas: ``handle.remote()``, ``handle.method.remote()``."""

    __slots__ = ("_key", "_options")

    def __init__(
        self, deployment_name: str, app_name: str = "default", *, _options: Any = None
    ) -> None:
        self._key = DeploymentID(deployment_name, app_name)
        self._options: _HandleOptions = _options or _HandleOptions()

    @property
    def deployment_name(self) -> str:
        return self._key.name

    @property
    def app_name(self) -> str:
        return self._key.app

    def options(
        self,
        *,
        method_name: str = _UNSET,
        stream: bool = _UNSET,
        multiplexed_model_id: str = _UNSET,
        use_new_handle_api: bool = _UNSET,
    ) -> DeploymentHandle:
        """A copy of this handle with other call options."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("method_name", method_name),
                ("stream", stream),
                ("multiplexed_model_id", multiplexed_model_id),
            )
            if v is not _UNSET
        }
        return DeploymentHandle(
            self._key.name, self._key.app, _options=replace(self._options, **changes)
        )

    def __getattr__(self, name: str) -> DeploymentHandle:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_handle, (self._key.name, self._key.app, self._options))

    def __repr__(self) -> str:
        return f"DeploymentHandle(deployment={self._key.name!r}, app={self._key.app!r})"

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Send a request; returns a response (or a response generator when streaming)."""
        options = self._options
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if options.stream:
            generator = DeploymentResponseGenerator(loop)
            coro = _call(self._key, options, args, kwargs, generator._push)
            generator._attach(_start(coro, loop))
            return generator
        return DeploymentResponse(_start(_call(self._key, options, args, kwargs, None), loop))


def _rebuild_handle(name: str, app: str, options: _HandleOptions) -> DeploymentHandle:
    return DeploymentHandle(name, app, _options=options)


def _start(coro: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
    if loop is not None:
        return loop.create_task(coro)
    return _client.run_in_background(coro)


async def _call(
    key: DeploymentID,
    options: _HandleOptions,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_chunk: Any,
) -> Any:
    if any(isinstance(a, DeploymentResponse) for a in args):
        args = tuple([await a if isinstance(a, DeploymentResponse) else a for a in args])
    if any(isinstance(v, DeploymentResponse) for v in kwargs.values()):
        kwargs = {k: await v if isinstance(v, DeploymentResponse) else v for k, v in kwargs.items()}
    router = _client.router_for(key)
    return await router.call(
        options.method_name, args, kwargs, stream=options.stream, on_chunk=on_chunk
    )


def _in_loop_thread(future: Any) -> bool:
    if not isinstance(future, asyncio.Future):
        return False
    try:
        return asyncio.get_running_loop() is future.get_loop()
    except RuntimeError:
        return False


class DeploymentResponse:
    """The future result of a handle call: ``await`` it, or call ``.result()``."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[Any] | concurrent.futures.Future[Any]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, Any]:
        future = self._future
        if isinstance(future, asyncio.Future) and _in_loop_thread(future):
            return (yield from future.__await__())
        return (yield from asyncio.wrap_future(future).__await__())

    def result(self, *, timeout_s: float | None = None) -> Any:
        """Block until the result is ready (``TimeoutError`` after ``timeout_s``)."""
        future = self._future
        if isinstance(future, asyncio.Future):
            if _in_loop_thread(future):
                raise RuntimeError(
                    "DeploymentResponse.result() would block the event loop it waits on; "
                    "use `await response` in async code."
                )
            future = _to_concurrent(future)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"The request did not finish within {timeout_s} s.") from None
        except concurrent.futures.CancelledError:
            raise RequestCancelledError("The request was cancelled.") from None

    def cancel(self) -> None:
        """Cancel the request; its handler in the replica sees ``asyncio.CancelledError``."""
        future = self._future
        if isinstance(future, asyncio.Future):
            future.get_loop().call_soon_threadsafe(future.cancel)
        else:
            future.cancel()

    def done(self) -> bool:
        return self._future.done()


def _to_concurrent(future: asyncio.Future[Any]) -> concurrent.futures.Future[Any]:
    async def wait() -> Any:
        return await future

    return asyncio.run_coroutine_threadsafe(wait(), future.get_loop())


class DeploymentResponseGenerator:
    """The items a streaming handle call yields: iterate it with ``for`` or ``async for``."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop or _client.background_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: Any = None

    def _attach(self, task: Any) -> None:
        self._task = task
        if isinstance(task, asyncio.Future):
            task.add_done_callback(self._finished)
        else:
            task.add_done_callback(
                lambda f: self._loop.call_soon_threadsafe(self._finished_concurrent, f)
            )

    def _push(self, items: list[Any]) -> None:
        for item in items:
            self._queue.put_nowait(item)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            self._queue.put_nowait(_Failed(RequestCancelledError("The request was cancelled.")))
        elif task.exception() is not None:
            self._queue.put_nowait(_Failed(task.exception()))  # type: ignore[arg-type]
        else:
            self._queue.put_nowait(_END)

    def _finished_concurrent(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            self._queue.put_nowait(_Failed(RequestCancelledError("The request was cancelled.")))
        elif future.exception() is not None:
            self._queue.put_nowait(_Failed(future.exception()))  # type: ignore[arg-type]
        else:
            self._queue.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if asyncio.get_running_loop() is self._loop:
            item = await self._queue.get()
        else:
            item = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop)
            )
        return _unwrap(item, StopAsyncIteration)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("Use `async for` over a streaming response inside async code.")
        item = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
        return _unwrap(item, StopIteration)

    def cancel(self) -> None:
        task = self._task
        if isinstance(task, asyncio.Future):
            task.get_loop().call_soon_threadsafe(task.cancel)
        elif task is not None:
            task.cancel()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _unwrap(item: Any, stop: type[Exception]) -> Any:
    if item is _END:
        raise stop
    if isinstance(item, _Failed):
        raise item.error
    return item
