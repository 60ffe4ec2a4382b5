"""The HTTP proxy actor: uvicorn serving a small ASGI app that forwards to ingress replicas.

Routing is by longest route prefix. The request (scope and body) goes to a replica of the
application's ingress deployment through this process's router, and the ASGI messages the
replica sends back are passed on, streaming ones as they come. The proxy owns the request's
fate: a client that disconnects, or a request over ``request_timeout_s``, cancels it in the
replica (408 for the timeout); a full queue is a 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from typing import Any

from nebula.serve import _client
from nebula.serve._common import (
    HTTP_METHOD,
    REQUEST_ID_HEADER,
    Route,
    RouteTableUpdate,
)
from nebula.serve._http_server import coalescing_protocol
from nebula.serve._metrics import ProxyMetrics
from nebula.serve.config import HTTPOptions
from nebula.serve.exceptions import BackPressureError, DeploymentUnavailableError

from nebula.util import get_node_ip_address

logger = logging.getLogger("nebula.serve")

_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "headers",
    "client",
    "server",
)


class ProxyActor:
    def __init__(self, http_options: HTTPOptions) -> None:
        self.options = http_options
        self.routes: list[Route] = []
        self.metrics = ProxyMetrics()
        self._server: Any = None
        self._serve_task: asyncio.Task[None] | None = None
        self._routes_task: asyncio.Task[None] | None = None
        self._routes_ready: asyncio.Event | None = None
        self._address = ""

    async def ready(self) -> str:
        """Start listening; returns ``host:port`` (raises if the port cannot be bound)."""
        import uvicorn

        if self._server is not None:
            return self._address
        host = listen_host(self.options.host, get_node_ip_address())
        self._address = f"{host}:{self.options.port}"
        self._routes_ready = asyncio.Event()
        self._routes_task = asyncio.get_running_loop().create_task(self._follow_routes())
        config = uvicorn.Config(
            self.app,
            host=host,
            port=self.options.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            http=coalescing_protocol(),
            timeout_keep_alive=int(self.options.keep_alive_timeout_s),
        )
        try:
            listener = _bind(host, self.options.port)
        except OSError:
            self._routes_task.cancel()
            raise
        server = uvicorn.Server(config)
        self._server = server
        self._serve_task = asyncio.get_running_loop().create_task(_serve(server, listener))
        while not server.started:
            if self._serve_task.done():
                self._server = None
                error = self._serve_task.exception()
                raise OSError(
                    f"The HTTP proxy could not listen on {self._address}: "
                    f"{error or 'the address is in use'}."
                )
            await asyncio.sleep(0.02)
        await asyncio.wait_for(self._routes_ready.wait(), 30)
        return self._address

    async def stop(self) -> None:
        """Stop accepting connections and let the requests in flight finish."""
        if self._server is not None:
            self._server.should_exit = True
            if self._serve_task is not None:
                try:
                    await asyncio.wait_for(self._serve_task, 10)
                except Exception:
                    pass
        if self._routes_task is not None:
            self._routes_task.cancel()

    async def _follow_routes(self) -> None:
        version = -1
        while True:
            try:
                update: RouteTableUpdate = await _client.get_controller().listen_for_routes.remote(
                    version
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)
                continue
            version = update.version
            self.routes = sorted(update.routes, key=lambda r: len(r.prefix), reverse=True)
            assert self._routes_ready is not None
            self._routes_ready.set()

    def _match(self, path: str) -> Route | None:
        for route in self.routes:
            prefix = route.prefix
            if prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return route
        return None

    # ------------------------------------------------------------------ ASGI

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/-/"):
            await self._builtin(path, send)
            return
        route = self._match(path)
        if route is None:
            await _plain(send, 404, b"Not Found: no application serves this path.")
            return
        request_id = _header(scope, REQUEST_ID_HEADER.encode()) or uuid.uuid4().hex
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        forwarded = {k: scope[k] for k in _SCOPE_KEYS if k in scope}
        if route.prefix != "/":
            forwarded["root_path"] = scope.get("root_path", "") + route.prefix.rstrip("/")
        else:
            forwarded["root_path"] = scope.get("root_path", "")
        forwarded["state"] = {}
        await self._forward(route, forwarded, body, request_id, receive, send)

    async def _forward(
        self,
        route: Route,
        scope: dict[str, Any],
        body: bytes,
        request_id: str,
        receive: Any,
        send: Any,
    ) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        sender = _ResponseSender(send, request_id)
        metrics = self.metrics
        name = route.ingress.name
        metrics.ongoing(name, 1)
        router = _client.router_for(route.ingress)
        call = router.submit(
            HTTP_METHOD,
            (scope, body),
            {},
            on_chunk=sender.forward_soon,
            request_id=request_id,
            route=route.prefix,
        )
        # The client leaving, or the timeout, withdraws the request (cancelling its handler)
        # through callbacks: awaiting the call alone costs no task or wait per request.
        stopped_with = 0

        def stop(status: int) -> None:
            nonlocal stopped_with
            if not call.future.done():
                stopped_with = status
                router.cancel(call)

        disconnect = loop.create_task(receive())
        disconnect.add_done_callback(lambda _: stop(499))
        timeout = self.options.request_timeout_s
        timer = loop.call_later(timeout, stop, 408) if timeout else None
        status = 500
        try:
            messages = await call.future
            await sender.flush()
            for message in messages:
                await sender.send(message)
            status = sender.status
        except asyncio.CancelledError:
            if not stopped_with:
                router.cancel(call)
                raise
            status = stopped_with
            if status == 408:
                await sender.error(408, b"Request timed out.")
        except BackPressureError as exc:
            status = 503
            await sender.error(503, str(exc).encode())
        except DeploymentUnavailableError as exc:
            status = 404
            await sender.error(404, str(exc).encode())
        except Exception as exc:
            logger.error("request %s to %s failed: %s", request_id, route.prefix, exc)
            status = 500
            await sender.error(500, b"Internal Server Error")
        finally:
            if timer is not None:
                timer.cancel()
            disconnect.cancel()
            metrics.ongoing(name, -1)
            metrics.finished(name, route.prefix, status, time.perf_counter() - started)

    async def _builtin(self, path: str, send: Any) -> None:
        if path == "/-/healthz":
            await _plain(send, 200, b"success")
        elif path == "/-/routes":
            table = {r.prefix: r.app for r in self.routes}
            await _plain(send, 200, json.dumps(table).encode(), b"application/json")
        elif path == "/-/metrics":
            for route in self.routes:
                router = _client.router_for(route.ingress)
                self.metrics.set_queued(route.ingress.name, router.queued)
            body, kind = self.metrics.exposition()
            await _plain(send, 200, body, kind.encode())
        else:
            await _plain(send, 404, b"Not Found")


class _ResponseSender:
    """Passes the replica's ASGI messages on, with the request id header added."""

    def __init__(self, send: Any, request_id: str) -> None:
        self._send = send
        self._request_id = request_id.encode()
        self.status = 500
        self.started = False
        self._pending: list[asyncio.Task[None]] = []

    def forward_soon(self, messages: list[dict[str, Any]]) -> None:
        previous = self._pending[-1] if self._pending else None
        self._pending.append(asyncio.ensure_future(self._forward(previous, messages)))

    async def _forward(self, previous: Any, messages: list[dict[str, Any]]) -> None:
        if previous is not None:
            await previous
        for message in messages:
            await self.send(message)

    async def flush(self) -> None:
        if self._pending:
            await self._pending[-1]

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            headers.append((REQUEST_ID_HEADER.encode(), self._request_id))
            message = {**message, "headers": headers}
        await self._send(message)

    async def error(self, status: int, body: bytes) -> None:
        if self.started:
            return
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await self._send({"type": "http.response.body", "body": body})


async def _plain(send: Any, status: int, body: bytes, kind: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def listen_host(configured: str, node_address: str) -> str:
    """Where a proxy listens: the configured host, except on a cluster simulated on one
    machine (the node's own address is a loopback address other than the configured
    loopback host), where each node's proxy takes its node's address so that they do not
    all claim the same port."""
    if _is_loopback(configured) and _is_loopback(node_address) and configured != node_address:
        return node_address
    return configured


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The proxy's listening socket, bound here so that a port in use is a clear error
    (uvicorn binding it itself would exit the process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise OSError(
            exc.errno,
            f"The HTTP proxy could not listen on {host}:{port}: {exc.strerror}. Stop what "
            "uses that port or choose another with serve.start(http_options={'port': ...}).",
        ) from None
    return listener


async def _serve(server: Any, listener: socket.socket) -> None:
    try:
        await server.serve(sockets=[listener])
    except SystemExit as exc:  # uvicorn exits when it cannot start: keep the actor alive
        raise OSError(f"the HTTP server stopped at start-up (exit status {exc.code})") from None
    finally:
        listener.close()
