"""What a process that calls deployments keeps: the controller's handle and its routers.

Routers live on event loops. A call made from inside a running loop (a replica, the proxy,
an async driver) is routed on that loop; a call from synchronous code goes to one background
loop thread per process, which ``DeploymentResponse.result()`` waits on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from nebula.serve._common import CONTROLLER_NAME, SERVE_NAMESPACE, DeploymentID
from nebula.serve._router import Router

import nebula

T = TypeVar("T")

_lock = threading.Lock()
_controller: Any = None
_routers: dict[tuple[int, DeploymentID], Router] = {}
_background: asyncio.AbstractEventLoop | None = None


def get_controller() -> Any:
    """The controller's actor handle (looked up once per process)."""
    global _controller
    if _controller is None:
        try:
            _controller = nebula.get_actor(CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        except ValueError:
            from nebula.serve.exceptions import ServeError

            raise ServeError(
                "Serve is not running on this cluster: start it with serve.run() or serve.start()."
            ) from None
    return _controller


def set_controller(handle: Any) -> None:
    global _controller
    _controller = handle


def router_for(key: DeploymentID) -> Router:
    """The running loop's router for ``key`` (call from inside that loop)."""
    loop = asyncio.get_running_loop()
    router = _routers.get((id(loop), key))
    if router is None or router._loop is not loop:
        forget_closed_loops()
        router = Router(key, get_controller)
        _routers[(id(loop), key)] = router
    return router


def forget_closed_loops() -> None:
    for key, router in list(_routers.items()):
        if router._loop.is_closed():
            del _routers[key]


def background_loop() -> asyncio.AbstractEventLoop:
    global _background
    with _lock:
        if _background is None or _background.is_closed():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="nebula-serve-handles", daemon=True).start()
            started.wait()
            _background = loop
        return _background


def run_in_background(coro: Coroutine[Any, Any, T]) -> Any:
    """Schedule ``coro`` on the background loop; returns a ``concurrent.futures.Future``."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


def reset() -> None:
    """Forget the controller and close every router (after serve.shutdown())."""
    global _controller
    _controller = None
    routers = list(_routers.values())
    _routers.clear()
    for router in routers:
        loop = router._loop
        if loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            router.close()
        else:
            loop.call_soon_threadsafe(router.close)
