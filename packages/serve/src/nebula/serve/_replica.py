"""The replica actor: runs a deployment's code and serves requests on its request channel.

The controller creates one actor per replica and talks to it over actor calls (initialize,
health, reconfigure, drain). Requests arrive on the replica's own port (:mod:`._wire`); each
runs as a task on the actor's event loop, so a caller's cancel reaches the handler as
``asyncio.CancelledError``. A replica over ``max_ongoing_requests`` or draining turns a
request away unstarted and the caller sends it elsewhere.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import time
import traceback
from typing import Any

import cloudpickle
from nebula.serve import _context, _http, _logs, _wire
from nebula.serve._checkpoint import ReplicaDescription
from nebula.serve._common import HTTP_METHOD, DeploymentSpec
from nebula.serve._deployment_state import replica_version
from nebula.serve._routing import ReplicaInfo
from nebula.serve.exceptions import RequestCancelledError

import nebula
from nebula.exceptions import TaskError, ensure_picklable_cause
from nebula.util import get_node_ip_address

logger = logging.getLogger("nebula.serve")


class Replica:
    """One copy of a deployment (wrapped by ``nebula.remote`` when the controller starts it)."""

    def __init__(self, replica_id: str, app_name: str) -> None:
        self.replica_id = replica_id
        self.app_name = app_name
        self.callable: Any = None
        self.spec: DeploymentSpec | None = None
        self.ongoing = 0
        self.draining = False
        self.max_ongoing = 1
        self._tasks: dict[tuple[int, int], asyncio.Task[None]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._last_request = 0.0
        self._http_app: Any = None
        self._info: ReplicaInfo | None = None
        self._access_log: logging.Logger | None = None
        self._user_config: Any = None

    async def initialize(self, spec: DeploymentSpec, token: bytes) -> tuple[str, int, str]:
        """Build the user's object and open the request port; returns (host, port, node)."""
        self.spec = spec
        self.max_ongoing = spec.config.max_ongoing_requests
        target = cloudpickle.loads(spec.serialized_callable)
        args, kwargs = cloudpickle.loads(spec.serialized_init_args)
        context = _context.ReplicaContext(self.app_name, spec.name, self.replica_id, None)
        _context.set_replica_context(context)
        _context.install_log_record_factory()
        self._access_log = _logs.configure(context, spec.config.logging_config)
        if spec.is_function:
            self.callable = target
        else:
            instance = target.__new__(target)
            context.servable_object = instance
            result = instance.__init__(*args, **kwargs)
            if inspect.isawaitable(result):
                await result
            self.callable = instance
            self._http_app = _http.bound_ingress_app(target, instance)
            if spec.config.user_config is not None:
                await self.reconfigure(spec.config.user_config)
        loop = asyncio.get_running_loop()
        host = get_node_ip_address()
        self._server = await loop.create_server(
            lambda: _Connection(self, token), host=host, port=0, reuse_address=True
        )
        port = self._server.sockets[0].getsockname()[1]
        node_id = nebula.get_runtime_context().get_node_id()
        self._info = ReplicaInfo(self.replica_id, host, port, self.max_ongoing, node_id)
        return host, port, node_id

    async def describe(self) -> ReplicaDescription:
        """What this replica runs, for a restarted controller that adopts it."""
        assert self.spec is not None
        return ReplicaDescription(
            self.app_name,
            self.spec.name,
            self.replica_id,
            replica_version(self.spec),
            self._info,
            self.draining,
            self._user_config,
        )

    async def check_health(self) -> None:
        check = getattr(self.callable, "check_health", None)
        if check is not None:
            result = check()
            if inspect.isawaitable(result):
                await result

    async def reconfigure(self, user_config: Any) -> None:
        method = getattr(self.callable, "reconfigure", None)
        if method is None:
            raise AttributeError(
                "The deployment has a user_config but no reconfigure(self, config) method."
            )
        result = method(user_config)
        if inspect.isawaitable(result):
            await result
        self._user_config = user_config

    async def num_ongoing_requests(self) -> int:
        return self.ongoing

    async def drain(self, wait_loop_s: float, timeout_s: float) -> None:
        """Stop taking requests and wait (up to ``timeout_s``) for those running to finish."""
        self.draining = True
        deadline = time.monotonic() + timeout_s
        # Callers may still send a request or two before they hear of the change.
        quiet_for = min(wait_loop_s, 0.5)
        while time.monotonic() < deadline:
            if self.ongoing == 0 and time.monotonic() - self._last_request >= quiet_for:
                break
            await asyncio.sleep(0.05)
        shutdown = getattr(self.callable, "__del__", None)
        if shutdown is not None:
            try:
                result = shutdown()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("The deployment's __del__ raised")

    # -------------------------------------------------------------- requests

    def on_request(self, connection: _Connection, request: _wire.Request) -> None:
        self._last_request = time.monotonic()
        if self.draining or self.ongoing >= self.max_ongoing:
            connection.send(_wire.Rejected(request.rid, self.ongoing))
            return
        self.ongoing += 1
        key = (id(connection), request.rid)
        task = asyncio.get_running_loop().create_task(self._run(connection, request))
        self._tasks[key] = task

    def on_cancel(self, connection: _Connection, rid: int) -> None:
        self.cancel_task((id(connection), rid))

    def cancel_task(self, key: tuple[int, int]) -> None:
        task = self._tasks.get(key)
        if task is None:
            return
        coro = task.get_coro()
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            # Cancelled before its first step, the handler's body never runs, and neither
            # does the bookkeeping in it: the request ends here, unanswered (its caller
            # withdrew it, or is gone).
            del self._tasks[key]
            self.ongoing -= 1
        task.cancel()

    async def _run(self, connection: _Connection, request: _wire.Request) -> None:
        _context.request_id.set(request.request_id)
        started = time.perf_counter()
        http = request.method == HTTP_METHOD
        outcome = _http.Outcome()
        reply: Any
        try:
            if http:
                value = await _http.handle(self, connection, request, outcome)
            else:
                value = await self._call_method(connection, request)
            self.ongoing -= 1
            reply = _wire.Result(request.rid, value, self.ongoing)
            status: int | str = outcome.status if http else "OK"
        except asyncio.CancelledError:
            self.ongoing -= 1
            error = RequestCancelledError("The request was cancelled.")
            reply = _wire.Failure(request.rid, error, str(error), self.ongoing)
            status = 499 if http else "CANCELLED"
        except BaseException as exc:
            self.ongoing -= 1
            reply = self._failure(request, exc)
            status = 500 if http else "ERROR"
        finally:
            self._tasks.pop((id(connection), request.rid), None)
        connection.send(reply)
        if self._access_log is not None:
            if http:
                method, route = outcome.method, outcome.route or request.route
            else:
                method, route = "CALL", request.method
            # Logged once the reply is on its way (its write was scheduled first), in this
            # request's context so that the line carries its id.
            asyncio.get_running_loop().call_soon(
                _logs.log_access,
                self._access_log,
                method,
                route,
                status,
                time.perf_counter() - started,
                context=contextvars.copy_context(),
            )

    async def _call_method(self, connection: _Connection, request: _wire.Request) -> Any:
        method = self._method(request.method)
        result = method(*request.args, **request.kwargs)
        if inspect.isawaitable(result):
            result = await result
        if request.stream:
            await _stream(result, connection, request.rid)
            return None
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            raise TypeError(
                f"Method {request.method!r} returned a generator: call it through "
                "handle.options(stream=True)."
            )
        return result

    def _method(self, name: str) -> Any:
        assert self.spec is not None
        if self.spec.is_function:
            if name != "__call__":
                raise AttributeError(
                    f"Deployment {self.spec.name!r} is a function; it has no method {name!r}."
                )
            return self.callable
        method = getattr(self.callable, name, None)
        if method is None or not callable(method):
            raise AttributeError(f"Deployment {self.spec.name!r} has no method {name!r}.")
        return method

    def _failure(self, request: _wire.Request, exc: BaseException) -> _wire.Failure:
        assert self.spec is not None
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        logger.error(
            "request %s to %s#%s.%s failed:\n%s",
            request.request_id or request.rid,
            self.app_name,
            self.spec.name,
            request.method,
            text,
        )
        name = f"{self.spec.name}.{request.method}"
        cause = exc if isinstance(exc, TaskError) else ensure_picklable_cause(exc)
        error = TaskError(name, text, cause, os.getpid(), None)
        try:
            _wire.dumps(error)
        except Exception:
            return _wire.Failure(request.rid, None, text, self.ongoing)
        return _wire.Failure(request.rid, error, text, self.ongoing)

    @property
    def http_app(self) -> Any:
        return self._http_app


async def _stream(result: Any, connection: _Connection, rid: int) -> None:
    if inspect.isasyncgen(result):
        async for item in result:
            connection.send(_wire.Chunk(rid, [item]))
    elif inspect.isgenerator(result):
        for item in result:
            connection.send(_wire.Chunk(rid, [item]))
            await asyncio.sleep(0)
    else:
        raise TypeError("A streaming call must go to a method that returns a generator.")


class _Connection(_wire.FrameProtocol):
    """One caller's connection to this replica."""

    def __init__(self, replica: Replica, token: bytes) -> None:
        super().__init__(self._dispatch, expect_token=token, on_lost=self._on_lost)
        self._replica = replica
        self._rids: set[int] = set()

    def _dispatch(self, message: Any) -> None:
        kind = type(message)
        if kind is _wire.Request:
            self._replica.on_request(self, message)
        elif kind is _wire.Cancel:
            self._replica.on_cancel(self, message.rid)

    def _on_lost(self, exc: BaseException | None) -> None:
        # The caller is gone (a proxy whose client disconnected closes nothing; a dead
        # caller process does): cancel what it was waiting for.
        for key in list(self._replica._tasks):
            if key[0] == id(self):
                self._replica.cancel_task(key)
